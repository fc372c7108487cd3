"""Budget-increase requests and their decisions (CC6.3, CC8.1)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from audit.period import Period
from audit.reports.common import CHUNK, FAIL, NA, PASS, email_of, iso, money, within
from budgets.models import BudgetIncreaseRequest

INCREASE_COLUMNS = (
    "increase_id", "budget_id", "budget_scope", "team", "requested_by", "requested_at", "amount", "until",
    "justification", "status", "decided_by", "decided_at", "decision_note", "amount_before", "amount_after",
    "reverted_at", "check_decider_not_requester",
)  # fmt: skip


def increases_queryset(period: Period, team_ids: list[int] | None = None) -> QuerySet[BudgetIncreaseRequest]:
    qs = BudgetIncreaseRequest.objects.filter(within("created_at", period) | within("decided_at", period))
    return qs.filter(budget__team_id__in=team_ids) if team_ids else qs


def increase_rows(period: Period, team_ids: list[int] | None = None) -> Iterator[dict]:
    qs = (
        increases_queryset(period, team_ids)
        .select_related("budget__team", "budget__user", "budget__key", "requested_by", "decided_by")
        .order_by("pk")
    )
    for inc in qs.iterator(chunk_size=CHUNK):
        check = NA if inc.decided_by_id is None else (FAIL if inc.decided_by_id == inc.requested_by_id else PASS)
        yield {
            "increase_id": inc.pk,
            "budget_id": inc.budget_id,
            "budget_scope": inc.budget.scope_label,
            "team": inc.budget.team.name,
            "requested_by": inc.requested_by.email,
            "requested_at": iso(inc.created_at),
            "amount": money(inc.amount),
            "until": iso(inc.until),
            "justification": inc.justification,
            "status": inc.status,
            "decided_by": email_of(inc.decided_by),
            "decided_at": iso(inc.decided_at),
            "decision_note": inc.decision_note,
            "amount_before": money(inc.amount_before),
            "amount_after": money(inc.amount_after),
            "reverted_at": iso(inc.reverted_at),
            "check_decider_not_requester": check,
        }
