"""Key lifecycle (CC6.2, CC6.3): keys and requests with an event in the period, with the creation checks."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Q, QuerySet

from audit.period import Period
from audit.reports.common import (
    CHUNK,
    NA,
    approval_text,
    approves,
    creation_checks,
    email_of,
    iso,
    with_approvals,
    within,
)
from keys.models import Approval, KeyRequest, VirtualKey


def lifecycle_keys(period: Period, team_ids: list[int] | None = None) -> QuerySet[VirtualKey]:
    """Keys requested, approved, created, provisioned, rotated, revoked or expired in the period."""
    qs = VirtualKey.objects.filter(
        within("created_at", period)
        | within("provisioned_at", period)
        | within("revoke_requested_at", period)
        | within("revoked_at", period)
        | within("request__created_at", period)
        | within("request__decided_at", period)
        | (Q(status=VirtualKey.Status.EXPIRED) & within("expires_at", period))
    )
    return qs.filter(team_id__in=team_ids) if team_ids else qs


def lifecycle_requests_without_key(period: Period, team_ids: list[int] | None = None) -> QuerySet[KeyRequest]:
    """Requests made or decided in the period that never produced a key (rejected, cancelled, pending)."""
    qs = KeyRequest.objects.filter(within("created_at", period) | within("decided_at", period)).filter(
        keys__isnull=True
    )
    return qs.filter(team_id__in=team_ids) if team_ids else qs


LIFECYCLE_COLUMNS = (
    "request_id", "key_id", "key_alias", "kind", "service_name", "team", "owner", "requested_by", "requested_at",
    "justification", "request_status", "decided_at", "approvals", "rejected_by", "approved_by_policy",
    "decision_note", "key_created_at", "provisioned_at", "rotated_from", "rotated_to", "revoke_requested_at",
    "revoked_at", "revoked_by", "revoke_reason", "expired_at", "key_status_now",
    "check_approver_not_requester", "check_approved_before_created", "check_detail",
)  # fmt: skip


def _request_part(request: KeyRequest | None, approvals: list[Approval]) -> dict:
    if request is None:
        return dict.fromkeys(
            ("request_id", "requested_by", "requested_at", "justification", "request_status", "decided_at"), None
        ) | {"approvals": [], "rejected_by": None, "approved_by_policy": None, "decision_note": None}
    rejects = [a for a in approvals if a.decision == Approval.Decision.REJECT]
    return {
        "request_id": request.pk,
        "requested_by": request.requested_by.email,
        "requested_at": iso(request.created_at),
        "justification": request.purpose,
        "request_status": request.status,
        "decided_at": iso(request.decided_at),
        "approvals": [approval_text(a) for a in approvals if a.decision == Approval.Decision.APPROVE],
        "rejected_by": ", ".join(email_of(a.approver) or "?" for a in rejects) or None,
        "approved_by_policy": request.approved_by_policy,
        "decision_note": request.decision_note,
    }


def lifecycle_rows(period: Period, team_ids: list[int] | None = None) -> Iterator[dict]:
    keys = (
        lifecycle_keys(period, team_ids)
        .select_related("owner", "team", "revoked_by", "rotated_from", "rotated_to", "request__requested_by")
        .order_by("pk")
    )
    for key, approvals in with_approvals(keys.iterator(chunk_size=CHUNK), lambda key: key.request_id):
        request = key.request
        checks = creation_checks(key, request, approves(approvals))
        rotated_to = getattr(key, "rotated_to", None)
        yield {
            **_request_part(request, approvals),
            "key_id": key.pk,
            "key_alias": key.alias,
            "kind": key.kind,
            "service_name": key.service_name,
            "team": key.team.name,
            "owner": key.owner.email,
            "key_created_at": iso(key.created_at),
            "provisioned_at": iso(key.provisioned_at),
            "rotated_from": key.rotated_from.alias if key.rotated_from else None,
            "rotated_to": rotated_to.alias if rotated_to else None,
            "revoke_requested_at": iso(key.revoke_requested_at),
            "revoked_at": iso(key.revoked_at),
            "revoked_by": email_of(key.revoked_by) or ("system" if key.revoke_requested_at else None),
            "revoke_reason": key.revoke_reason,
            "expired_at": iso(key.expires_at) if key.status == VirtualKey.Status.EXPIRED else None,
            "key_status_now": key.status,
            "check_approver_not_requester": checks.approver_not_requester,
            "check_approved_before_created": checks.approved_before_created,
            "check_detail": checks.detail,
        }
    requests = (
        lifecycle_requests_without_key(period, team_ids).select_related("owner", "team", "requested_by").order_by("pk")
    )
    for request, approvals in with_approvals(requests.iterator(chunk_size=CHUNK), lambda request: request.pk):
        yield {
            **_request_part(request, approvals),
            "key_id": None,
            "key_alias": None,
            "kind": request.kind,
            "service_name": request.service_name,
            "team": request.team.name,
            "owner": request.owner.email,
            "key_created_at": None,
            "provisioned_at": None,
            "rotated_from": None,
            "rotated_to": None,
            "revoke_requested_at": None,
            "revoked_at": None,
            "revoked_by": None,
            "revoke_reason": None,
            "expired_at": None,
            "key_status_now": None,
            "check_approver_not_requester": NA,
            "check_approved_before_created": NA,
            "check_detail": f"no key was created (request {request.status})",
        }


def lifecycle_count(period: Period, team_ids: list[int] | None = None) -> int:
    return lifecycle_keys(period, team_ids).count() + lifecycle_requests_without_key(period, team_ids).count()
