"""The evidence reports: each a read over one period, yielding flat rows an auditor can open as CSV.

Every report is streamed: querysets are read with `.iterator(chunk_size=...)`, related rows are
fetched a chunk at a time, and nothing holds a whole table in memory. Rows carry only JSON-native
values (datetimes as ISO 8601 UTC strings, money as decimal strings) so the CSV and the JSON file of
a report say exactly the same thing. A column named `check_*` holds PASS, FAIL or N/A; the bundle
counts every FAIL and lists them first in its summary.

The pages (leaver report, sample page, campaign report) read the same functions.

One module per report family; `common` holds what they share. Callers import from here.
"""

from audit.reports.access_reviews import (
    REVIEW_COLUMNS,
    review_item_row,
    review_item_rows,
    review_items,
    reviews_closed_in,
)
from audit.reports.access_roles import ROLE_COLUMNS, role_count, role_rows
from audit.reports.budget_increases import INCREASE_COLUMNS, increase_rows, increases_queryset
from audit.reports.catalogue import REPORT_NAMES, ReportSpec, evidence_reports, in_report_order
from audit.reports.common import (
    CHUNK,
    FAIL,
    KEY_TARGET,
    NA,
    PASS,
    REQUEST_TARGET,
    USER_TARGET,
    CreationChecks,
    approval_text,
    approvals_prefetch,
    approves,
    chunks,
    creation_checks,
    email_of,
    hours_between,
    iso,
    money,
    team_names,
    with_approvals,
    within,
)
from audit.reports.events import BUDGET_ACTIONS, EVENT_COLUMNS, POLICY_AND_ROLE_ACTIONS, event_rows, events_in
from audit.reports.inventory import (
    INVENTORY_COLUMNS,
    grants_before_later_reductions,
    inventory_queryset,
    inventory_rows,
    status_at,
)
from audit.reports.leavers import LEAVER_COLUMNS, Leaver, leaver_rows, leaver_sla, leavers
from audit.reports.lifecycle import (
    LIFECYCLE_COLUMNS,
    lifecycle_count,
    lifecycle_keys,
    lifecycle_requests_without_key,
    lifecycle_rows,
)
from audit.reports.samples import SAMPLE_COLUMNS, draw_sample, sample_population, sample_rows
from audit.reports.spend import SPEND_COLUMNS, spend_queryset, spend_rows

__all__ = [
    "BUDGET_ACTIONS",
    "CHUNK",
    "CreationChecks",
    "EVENT_COLUMNS",
    "FAIL",
    "INCREASE_COLUMNS",
    "INVENTORY_COLUMNS",
    "KEY_TARGET",
    "LEAVER_COLUMNS",
    "LIFECYCLE_COLUMNS",
    "Leaver",
    "NA",
    "PASS",
    "POLICY_AND_ROLE_ACTIONS",
    "REPORT_NAMES",
    "REQUEST_TARGET",
    "REVIEW_COLUMNS",
    "ROLE_COLUMNS",
    "ReportSpec",
    "SAMPLE_COLUMNS",
    "SPEND_COLUMNS",
    "USER_TARGET",
    "approval_text",
    "approvals_prefetch",
    "approves",
    "chunks",
    "creation_checks",
    "draw_sample",
    "email_of",
    "event_rows",
    "events_in",
    "evidence_reports",
    "grants_before_later_reductions",
    "hours_between",
    "in_report_order",
    "increase_rows",
    "increases_queryset",
    "inventory_queryset",
    "inventory_rows",
    "iso",
    "leaver_rows",
    "leaver_sla",
    "leavers",
    "lifecycle_count",
    "lifecycle_keys",
    "lifecycle_requests_without_key",
    "lifecycle_rows",
    "money",
    "review_item_row",
    "review_item_rows",
    "review_items",
    "reviews_closed_in",
    "role_count",
    "role_rows",
    "sample_population",
    "sample_rows",
    "spend_queryset",
    "spend_rows",
    "status_at",
    "team_names",
    "with_approvals",
    "within",
]
