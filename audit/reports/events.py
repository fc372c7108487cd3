"""Audit log extracts (CC7.2, CC8.1): the events of a period, optionally only some families of actions."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from audit.period import Period
from audit.reports.common import CHUNK, iso, team_names

EVENT_COLUMNS = (
    "seq", "created_at", "actor", "action", "target_type", "target_id", "target_label", "team", "data", "ip",
    "user_agent", "request_id", "prev_hash", "hash",
)  # fmt: skip
_EVENT_FIELDS = (
    "seq", "created_at", "actor_label", "action", "target_type", "target_id", "target_label", "team_id", "data",
    "ip", "user_agent", "request_id", "prev_hash", "hash",
)  # fmt: skip

BUDGET_ACTIONS = ("budget.", "budget_increase.")
POLICY_AND_ROLE_ACTIONS = (
    "model_policy.", "data_classification.", "team.", "membership.", "user.created", "user.deactivated",
    "user.reactivated", "user.org_role_", "sso_mapping.", "scim_group.", "scim_token.", "api_token.created",
    "api_token.revoked", "admin.", "ingest_token.", "access_review.", "evidence.", "ledger.",
)  # fmt: skip


def events_in(period: Period, prefixes: tuple[str, ...] | None = None) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(created_at__gte=period.start_at, created_at__lt=period.end_before)
    if prefixes:
        condition = Q()
        for prefix in prefixes:
            condition |= Q(action__startswith=prefix)
        qs = qs.filter(condition)
    return qs


def event_rows(qs: QuerySet[AuditEvent], teams: dict[int, str] | None = None) -> Iterator[dict]:
    teams = teams if teams is not None else team_names()
    for values in qs.order_by("seq").values_list(*_EVENT_FIELDS).iterator(chunk_size=CHUNK):
        row = dict(zip(EVENT_COLUMNS, values, strict=True))
        row["created_at"] = iso(row["created_at"])
        row["team"] = teams.get(row["team"]) if row["team"] else None
        yield row
