"""RQ entry points for the ledger and budgets: thin, load by id and call a service. Safe to run twice."""

from __future__ import annotations

from budgets import alerts, anomalies, completeness, partitions, pull, retention, services
from budgets.finops import exports as finops_exports


def pull_spend_logs() -> dict:
    """Every minute: read new spend rows from the gateway into the ledger."""
    return vars(pull.spend_pull_run())


def check_spend_completeness() -> dict:
    """Every LEDGER_COMPLETENESS_INTERVAL_MINUTES: re-read the trailing hours and each whole day once."""
    result = completeness.spend_completeness_run()
    return {"inserted": result.inserted, "days": result.days, "skipped": result.skipped}


def deliver_alert(delivery_id: int) -> str:
    return alerts.alert_delivery_send(delivery_id=delivery_id)


def retry_alert_deliveries() -> int:
    """Every minute: send again what failed (after its back-off) and what the queue lost."""
    return alerts.alert_deliveries_sweep()


def evaluate_budget(budget_id: int) -> int:
    return alerts.budget_evaluate(budget_id=budget_id)


def evaluate_budgets() -> dict:
    """Every five minutes: lift blocks of periods that ended, then evaluate every active budget."""
    lifted = alerts.budget_periods_roll()
    return {"blocks_lifted": lifted, "alerts": alerts.evaluate_all()}


def revert_temporary_increases() -> int:
    """Hourly: temporary increases whose last day has passed go back."""
    return services.budget_increases_revert_due()


def scan_anomalies() -> int:
    """Every fifteen minutes: keys spending far above their trailing rate."""
    return anomalies.anomaly_scan()


def prune_ledger() -> int:
    """Daily: raw ledger months past LEDGER_RETENTION_MONTHS go whole; the daily rollups stay."""
    return retention.ledger_prune()


def build_focus_export(export_id: int) -> str:
    """One FOCUS file (on commit of its request, or its schedule's run; again after a failure's back-off)."""
    return finops_exports.focus_export_build(export_id=export_id)


def run_focus_schedules() -> int:
    """Hourly: each active FOCUS schedule's due period (yesterday, or last month), made once."""
    return finops_exports.focus_schedules_run()


def sweep_focus_exports() -> int:
    """Every five minutes: FOCUS exports whose retry is due, that the queue lost, or whose worker died."""
    return finops_exports.focus_exports_sweep()


def ensure_ledger_partitions() -> list[str]:
    """Daily: the ledger's partitions of this month and LEDGER_PARTITIONS_AHEAD_MONTHS ahead (PostgreSQL)."""
    return partitions.ledger_partitions_ensure()
