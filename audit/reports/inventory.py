"""The key inventory at the end of a period (CC6.1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Max, QuerySet

from audit.models import AuditEvent
from audit.period import Period
from audit.reports.common import CHUNK, KEY_TARGET, approval_text, approves, email_of, iso, money, with_approvals
from budgets.models import DailyRollup
from keys.models import VirtualKey


def status_at(key: VirtualKey, at: datetime) -> str:
    """What the key was at an instant, from its timestamps (the status column is only today's)."""
    if key.revoked_at and key.revoked_at < at:
        return VirtualKey.Status.REVOKED
    if key.revoke_requested_at and key.revoke_requested_at < at:
        return VirtualKey.Status.REVOKING
    if key.expires_at <= at:
        return VirtualKey.Status.EXPIRED
    provisioned = key.provisioned_at or (
        key.created_at if key.status not in (VirtualKey.Status.PROVISIONING, VirtualKey.Status.FAILED) else None
    )
    if provisioned and provisioned < at:
        return VirtualKey.Status.ACTIVE
    return VirtualKey.Status.FAILED if key.status == VirtualKey.Status.FAILED else VirtualKey.Status.PROVISIONING


def inventory_queryset(period: Period, team_ids: list[int] | None = None) -> QuerySet[VirtualKey]:
    """Every key that existed at the period's end and was not already gone before it started."""
    qs = (
        VirtualKey.objects.filter(created_at__lt=period.end_before)
        .exclude(revoked_at__lt=period.start_at)
        .exclude(status=VirtualKey.Status.EXPIRED, expires_at__lt=period.start_at)
    )
    if team_ids:
        qs = qs.filter(team_id__in=team_ids)
    return qs


INVENTORY_COLUMNS = (
    "key_id", "alias", "kind", "service_name", "owner", "owner_active", "team", "data_classification",
    "created_by", "created_at", "request_id", "approvers", "approved_by_policy", "expires_at", "models",
    "monthly_budget", "budget_duration", "rpm_limit", "tpm_limit", "last_used_at", "last_used_day",
    "status_at_period_end", "status_now", "revoke_requested_at", "revoked_at", "revoke_reason",
)  # fmt: skip


def grants_before_later_reductions(period: Period) -> dict[int, dict]:
    """{key id: {"models": [...], "max_budget": "..."}} as they were when the period ended, for the keys
    whose grants were reduced after it (the only change made to a key's models or budget after it is
    created is an access-review reduction, and its audit event keeps what the key had before)."""
    found: dict[int, dict] = {}
    reductions = AuditEvent.objects.filter(
        action="key.reduced", target_type=KEY_TARGET, created_at__gte=period.end_before
    ).order_by("seq")
    for target_id, data in reductions.values_list("target_id", "data").iterator(chunk_size=CHUNK):
        if target_id.isdigit() and int(target_id) not in found:
            data = data or {}
            found[int(target_id)] = {
                "models": (data.get("models") or {}).get("before"),
                "max_budget": (data.get("max_budget") or {}).get("before"),
            }
    return found


def inventory_rows(period: Period, team_ids: list[int] | None = None) -> Iterator[dict]:
    earlier_grants = grants_before_later_reductions(period)
    last_day = dict(
        DailyRollup.objects.filter(day__lte=period.end, key__isnull=False, requests__gt=0)
        .values("key_id")
        .annotate(last=Max("day"))
        .values_list("key_id", "last")
    )
    qs = (
        inventory_queryset(period, team_ids)
        .select_related("owner", "team", "request__requested_by", "request__data_classification")
        .order_by("pk")
    )
    for key, approvals in with_approvals(qs.iterator(chunk_size=CHUNK), lambda key: key.request_id):
        request = key.request
        then = earlier_grants.get(key.pk, {})
        models = then.get("models")
        budget = then.get("max_budget")
        yield {
            "key_id": key.pk,
            "alias": key.alias,
            "kind": key.kind,
            "service_name": key.service_name,
            "owner": key.owner.email,
            "owner_active": key.owner.is_active,
            "team": key.team.name,
            "data_classification": request.data_classification.label if request else None,
            "created_by": email_of(request.requested_by) if request else None,
            "created_at": iso(key.created_at),
            "request_id": key.request_id,
            "approvers": [approval_text(a) for a in approves(approvals)],
            "approved_by_policy": request.approved_by_policy if request else None,
            "expires_at": iso(key.expires_at),
            "models": list(models) if models is not None else list(key.allowed_models),
            "monthly_budget": str(budget) if budget is not None else money(key.max_budget),
            "budget_duration": key.budget_duration,
            "rpm_limit": key.rpm_limit,
            "tpm_limit": key.tpm_limit,
            "last_used_at": iso(key.last_used_at),
            "last_used_day": iso(last_day.get(key.pk)),
            "status_at_period_end": status_at(key, period.end_before),
            "status_now": key.status,
            "revoke_requested_at": iso(key.revoke_requested_at),
            "revoked_at": iso(key.revoked_at),
            "revoke_reason": key.revoke_reason,
        }
