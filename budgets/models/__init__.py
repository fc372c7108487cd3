"""The spend ledger, its daily rollups, budgets, alerts, increase requests and ingest tokens.

Money is Decimal (USD; nine places in the ledger, only display rounds), time is timezone-aware UTC. The ledger is the
truth for cost (docs/ARCHITECTURE.md, decision 3); pages read the rollups, never the raw ledger.
"""

from budgets.models.budgets import (  # noqa: F401
    DEFAULT_THRESHOLDS,
    AlertDelivery,
    AnomalyAlert,
    Budget,
    BudgetAlert,
    BudgetBlock,
    BudgetIncreaseRequest,
    Notice,
    default_thresholds,
)
from budgets.models.finops import (  # noqa: F401, E402
    ChargebackClose,
    ChargebackLine,
    FocusExport,
    FocusFormat,
    FocusSchedule,
)
from budgets.models.ledger import (  # noqa: F401
    ClientTool,
    CostDisagreement,
    CostSource,
    DailyRollup,
    ErrorType,
    IngestSource,
    IngestToken,
    PullState,
    QuarantinedRow,
    SpendRecord,
)
