"""The catalogue of evidence reports: names, order, and each report's title, controls, query and columns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from audit.period import Period
from audit.reports.access_reviews import REVIEW_COLUMNS, review_item_rows, review_items, reviews_closed_in
from audit.reports.access_roles import ROLE_COLUMNS, role_count, role_rows
from audit.reports.budget_increases import INCREASE_COLUMNS, increase_rows, increases_queryset
from audit.reports.common import iso
from audit.reports.events import BUDGET_ACTIONS, EVENT_COLUMNS, POLICY_AND_ROLE_ACTIONS, event_rows, events_in
from audit.reports.inventory import INVENTORY_COLUMNS, inventory_queryset, inventory_rows
from audit.reports.leavers import LEAVER_COLUMNS, leaver_rows, leaver_sla, leavers
from audit.reports.lifecycle import LIFECYCLE_COLUMNS, lifecycle_count, lifecycle_rows
from audit.reports.samples import SAMPLE_COLUMNS, sample_rows
from audit.reports.spend import SPEND_COLUMNS, spend_queryset, spend_rows

REPORT_NAMES = (
    "key_inventory",
    "key_lifecycle",
    "samples",
    "leavers",
    "access_reviews",
    "budget_increases",
    "budget_changes",
    "policy_and_role_changes",
    "access_roles",
    "spend_by_key",
    "audit_log",
)


def in_report_order(row_counts: dict) -> list[tuple[str, int]]:
    """Row counts as the bundle lists its reports (a JSON column keeps its own key order)."""
    known = [(name, row_counts[name]) for name in REPORT_NAMES if name in row_counts]
    return known + sorted((name, rows) for name, rows in row_counts.items() if name not in REPORT_NAMES)


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    controls: tuple[str, ...]
    description: str
    query: str
    columns: tuple[str, ...]
    key_column: str
    count: Callable[[], int]
    rows: Callable[[], Iterator[dict]]
    team_filtered: bool = True


def evidence_reports(
    period: Period, team_ids: list[int] | None, *, sample_ids: list[int], spend_source: str
) -> list[ReportSpec]:
    p = f"[{iso(period.start_at)}, {iso(period.end_before)})"
    teams = " and team in the filter" if team_ids else ""
    closed = reviews_closed_in(period)
    return [
        ReportSpec(
            "key_inventory",
            "Key inventory at the end of the period",
            ("CC6.1",),
            "Every key that existed when the period ended (and was not gone before it began): owner, team, data "
            "class, who created and approved it, expiry, models, budget, limits, last use and status at period end. "
            "Models and budget are as at period end: a reduction made after it (an access-review decision, the only "
            "change made to a key's grants) is undone from its key.reduced audit event; rate limits never change.",
            f"keys.VirtualKey created_at < {iso(period.end_before)}, not revoked or expired before "
            f"{iso(period.start_at)}{teams}; ordered by id",
            INVENTORY_COLUMNS,
            "alias",
            lambda: inventory_queryset(period, team_ids).count(),
            lambda: inventory_rows(period, team_ids),
        ),
        ReportSpec(
            "key_lifecycle",
            "Keys requested, approved, rejected, created, rotated, revoked or expired in the period",
            ("CC6.2", "CC6.3"),
            "One row per key (and per request that produced no key) with an event in the period, its actors and "
            "times, and per key the checks 'approver is not the requester' and 'approved before created'.",
            f"keys whose request was made or decided, or which were created, provisioned, revoked or expired in {p}"
            f"{teams}; then requests made or decided in the period without a key",
            LIFECYCLE_COLUMNS,
            "key_alias",
            lambda: lifecycle_count(period, team_ids),
            lambda: lifecycle_rows(period, team_ids),
        ),
        ReportSpec(
            "samples",
            "Sample of key creations",
            ("CC6.2",),
            "The keys drawn at random from those created in the period (see manifest: seed and algorithm), each "
            "with its request, justification, decisions and provisioning events.",
            f"random.Random(seed).sample(ids of keys created in {p}{teams}, ascending, N)",
            SAMPLE_COLUMNS,
            "key_alias",
            lambda: len(sample_ids),
            lambda: sample_rows(sample_ids),
        ),
        ReportSpec(
            "leavers",
            "Leavers and the revocation of their keys",
            ("CC6.3",),
            "Every person deactivated in the period with each key they held: when it was revoked (the gateway "
            f"confirmed the deletion) and the delay. The check fails past {leaver_sla()} or while a key is live.",
            f"audit events user.deactivated in {p}, plus users whose deactivated_at is in the period; their keys "
            f"created before and still live at deactivation{teams}",
            LEAVER_COLUMNS,
            "person",
            lambda: sum(1 for _ in leavers(period)),
            lambda: leaver_rows(period, team_ids),
        ),
        ReportSpec(
            "access_reviews",
            "Access reviews signed off in the period",
            ("CC6.3",),
            "Every snapshot row of the campaigns signed off in the period: the key as it was at the opening, the "
            "decision, reviewer, time and rationale, proof of revocation (revoked_at and the key.deleted_in_gateway "
            "event) and the sign-off. Self-review is refused by the service; the check shows it held.",
            f"audit.AccessReview status=closed, signed_off_at in {p}; their items{teams}",
            REVIEW_COLUMNS,
            "key_alias",
            lambda: review_items(closed, team_ids).count(),
            lambda: review_item_rows(review_items(closed, team_ids)),
        ),
        ReportSpec(
            "budget_increases",
            "Budget-increase requests and decisions",
            ("CC6.3", "CC8.1"),
            "Every budget-increase request made or decided in the period, with its decider and the check "
            "'decider is not the requester'.",
            f"budgets.BudgetIncreaseRequest created_at or decided_at in {p}{teams}",
            INCREASE_COLUMNS,
            "increase_id",
            lambda: increases_queryset(period, team_ids).count(),
            lambda: increase_rows(period, team_ids),
        ),
        ReportSpec(
            "budget_changes",
            "Budget changes, alerts and blocks",
            ("CC7.2", "CC8.1"),
            "Audit events of budgets and budget increases in the period (created, changed, thresholds crossed, "
            "keys blocked and unblocked, increases requested, decided and reverted).",
            f"audit events with action starting {', '.join(BUDGET_ACTIONS)} in {p}",
            EVENT_COLUMNS,
            "seq",
            lambda: events_in(period, BUDGET_ACTIONS).count(),
            lambda: event_rows(events_in(period, BUDGET_ACTIONS)),
            team_filtered=False,
        ),
        ReportSpec(
            "policy_and_role_changes",
            "Model policy, team, membership and role changes",
            ("CC6.1", "CC8.1"),
            "Audit events of model policy, data classes, teams, memberships, org roles, SSO mappings, SCIM groups "
            "and tokens, API tokens, Django admin edits, ingest tokens, access reviews, evidence exports and ledger "
            "retention in the period.",
            f"audit events with action starting {', '.join(POLICY_AND_ROLE_ACTIONS)} in {p}",
            EVENT_COLUMNS,
            "seq",
            lambda: events_in(period, POLICY_AND_ROLE_ACTIONS).count(),
            lambda: event_rows(events_in(period, POLICY_AND_ROLE_ACTIONS)),
            team_filtered=False,
        ),
        ReportSpec(
            "access_roles",
            "Who holds which role (at the time of the export)",
            ("CC6.1",),
            "Org roles and team memberships as they are when the bundle is built, with what each role may do.",
            f"accounts.OrgRoleGrant, accounts.Membership{teams}",
            ROLE_COLUMNS,
            "person",
            lambda: role_count(team_ids),
            lambda: role_rows(team_ids),
        ),
        ReportSpec(
            "spend_by_key",
            "Spend per key in the period",
            ("CC7.2",),
            "Requests and ledger cost per team and key over the period, from the daily rollups.",
            f"budgets.DailyRollup day in [{period.start}, {period.end}]{teams}, summed per team and key",
            SPEND_COLUMNS,
            "key_alias",
            lambda: spend_queryset(period, team_ids).count(),
            lambda: spend_rows(period, team_ids, spend_source),
        ),
        ReportSpec(
            "audit_log",
            "Audit log extract",
            ("CC7.2", "CC8.1"),
            "Every audit event of the period with its hash and the hash it links to. audit_verify.txt holds the "
            "result of walking the whole chain when the bundle was built.",
            f"audit.AuditEvent created_at in {p}, ordered by seq",
            EVENT_COLUMNS,
            "seq",
            lambda: events_in(period).count(),
            lambda: event_rows(events_in(period)),
            team_filtered=False,
        ),
    ]
