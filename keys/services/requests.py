"""Key requests: asked for, cancelled, approved (by people or a team's auto-approve rule), rejected.
An approval complete makes the key (keys.services.lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.errors import InvalidTransition
from keys import notifications
from keys.models import Approval, DataClassification, KeyKind, KeyRequest, ModelPolicy, VirtualKey
from keys.services.lifecycle import key_create
from keys.services.policy import MAX_MONTHLY_BUDGET, team_key_policy


@dataclass
class KeyRequestInput:
    team: Team
    kind: str
    purpose: str
    data_classification: DataClassification
    models: list[ModelPolicy]
    monthly_budget: Decimal
    expiry_days: int
    service_name: str = ""
    owner: User | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None


def key_request_validate(*, requester: User, data: KeyRequestInput) -> None:
    """Every rule a key request must meet, as field errors (the form and the API show them)."""
    errors: dict[str, str] = {}
    if not permissions.can_request_key(requester, data.team):
        errors["team"] = "You can only ask for keys in a team you belong to."
    errors.update(key_policy_errors(data))
    if errors:
        raise ValidationError(errors)


def key_policy_errors(data: KeyRequestInput) -> dict[str, str]:
    """The rules of the policy asked for (kind, purpose, models, data class, budget, expiry, limits), by field:
    a key request's and a rollout's."""
    errors: dict[str, str] = {}
    if not (data.purpose or "").strip():
        errors["purpose"] = "Say what the key is for; approvers decide on it."
    if data.kind not in KeyKind.values:
        errors["kind"] = f"Unknown kind {data.kind!r}."
    elif data.kind == KeyKind.SERVICE:
        if not (data.service_name or "").strip():
            errors["service_name"] = "Name the service or project this key is for."
        if data.owner is None:
            errors["owner"] = "Every service key needs a named person who answers for it."
        elif not data.owner.is_active or not permissions.is_member_of(data.owner, data.team):
            errors["owner"] = "The owner must be an active member of the team."
    if not data.models:
        errors["models"] = "Choose at least one model."
    else:
        refused = [m.name for m in data.models if not m.is_active]
        too_sensitive = [m.name for m in data.models if m.max_classification.level < data.data_classification.level]
        if refused:
            errors["models"] = f"Not available: {', '.join(refused)}."
        elif too_sensitive:
            errors["models"] = f"Not allowed for {data.data_classification.label} data: {', '.join(too_sensitive)}."
    if data.monthly_budget is None or data.monthly_budget <= 0:
        errors["monthly_budget"] = "The monthly budget must be more than $0."
    elif data.monthly_budget > MAX_MONTHLY_BUDGET:
        errors["monthly_budget"] = f"The monthly budget can be at most ${MAX_MONTHLY_BUDGET:,.0f}."
    max_days = team_key_policy(data.team).max_expiry_days
    if data.expiry_days is None or data.expiry_days < 1:
        errors["expiry_days"] = "A key must live at least one day."
    elif data.expiry_days > max_days:
        errors["expiry_days"] = f"{data.team.name} allows keys for at most {max_days} days."
    for field in ("rpm_limit", "tpm_limit"):
        value = getattr(data, field)
        if value is not None and value < 1:
            errors[field] = "Leave it empty for no limit, or give a positive number."
    return errors


@transaction.atomic(durable=True)
def key_request_create(*, requester: User, data: KeyRequestInput) -> KeyRequest:
    key_request_validate(requester=requester, data=data)
    owner = data.owner if data.kind == KeyKind.SERVICE else requester
    key_request = KeyRequest.objects.create(
        requested_by=requester,
        team=data.team,
        kind=data.kind,
        service_name=data.service_name.strip() if data.kind == KeyKind.SERVICE else "",
        owner=owner,
        purpose=data.purpose.strip(),
        data_classification=data.data_classification,
        monthly_budget=data.monthly_budget,
        rpm_limit=data.rpm_limit,
        tpm_limit=data.tpm_limit,
        expiry_days=data.expiry_days,
        needs_admin_approval=any(m.is_restricted for m in data.models),
    )
    key_request.requested_models.set(data.models)
    audit.record(
        actor=requester,
        action="key_request.created",
        target=key_request,
        team=data.team,
        data={
            "kind": key_request.kind,
            "owner": owner.email,
            "service_name": key_request.service_name,
            "models": sorted(m.name for m in data.models),
            "classification": data.data_classification.key,
            "monthly_budget": str(data.monthly_budget),
            "expiry_days": data.expiry_days,
            "rpm_limit": data.rpm_limit,
            "tpm_limit": data.tpm_limit,
        },
    )
    policy = team_key_policy(data.team)
    if (
        policy.auto_approve
        and not key_request.needs_admin_approval
        and data.monthly_budget <= policy.auto_approve_max_budget
    ):
        Approval.objects.create(
            request=key_request, decision=Approval.Decision.APPROVE, by_policy=True, note="Team auto-approve rule"
        )
        _approve(key_request, actor=None, by_policy=True)
    else:
        notifications.request_waiting(key_request)
    return key_request


@transaction.atomic(durable=True)
def key_request_cancel(*, request: KeyRequest, actor: User) -> KeyRequest:
    request = KeyRequest.objects.select_for_update().get(pk=request.pk)
    permissions.require_can_cancel_key_request(actor, request)
    if refusal := permissions.key_request_cancel_refusal(request):
        raise InvalidTransition(request.status, "cancel", refusal)
    request.status = KeyRequest.Status.CANCELLED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    audit.record(actor=actor, action="key_request.cancelled", target=request, team=request.team)
    return request


def _approvals_complete(request: KeyRequest) -> bool:
    approvals = list(request.approvals.filter(decision=Approval.Decision.APPROVE, by_policy=False))
    if not request.needs_admin_approval:
        return len(approvals) >= 1
    people = {a.approver_id for a in approvals}
    return len(people) >= 2 and any(a.as_admin for a in approvals)


@transaction.atomic(durable=True)
def key_request_approve(*, request: KeyRequest, approver: User, note: str = "") -> VirtualKey | None:
    """Record an approval; returns the new key once every approval the request needs is in."""
    permissions.require_can_decide_key_request(approver, request)
    request = KeyRequest.objects.select_for_update(of=("self",)).select_related("team", "owner").get(pk=request.pk)
    if permissions.key_request_decide_refusal(request):
        raise InvalidTransition(request.status, "approve")
    if request.approvals.filter(approver=approver).exists():
        raise InvalidTransition(request.status, "approve", "You have already approved this request.")
    as_admin = permissions.is_admin(approver)
    Approval.objects.create(
        request=request, approver=approver, decision=Approval.Decision.APPROVE, as_admin=as_admin, note=note
    )
    audit.record(
        actor=approver,
        action="key_request.approval_recorded",
        target=request,
        team=request.team,
        data={"note": note, "as_admin": as_admin},
    )
    if not _approvals_complete(request):
        notifications.request_waiting(request, admins_only=True)
        return None
    return _approve(request, actor=approver, note=note)


def _approve(request: KeyRequest, *, actor: User | None, note: str = "", by_policy: bool = False) -> VirtualKey:
    request.status = KeyRequest.Status.APPROVED
    request.approved_by_policy = by_policy
    request.decided_at = timezone.now()
    request.decision_note = note
    request.save(update_fields=["status", "approved_by_policy", "decided_at", "decision_note"])
    approvers = list(request.approvals.exclude(approver=None).values_list("approver__email", flat=True))
    audit.record(
        actor=actor,
        actor_label="" if actor else "policy",
        action="key_request.approved",
        target=request,
        team=request.team,
        data={"approvers": approvers, "by_policy": by_policy, "note": note},
    )
    key = key_create(
        request=request,
        allowed_models=sorted(request.requested_models.values_list("name", flat=True)),
        expires_at=request.decided_at + timedelta(days=request.expiry_days),
        actor=actor,
    )
    notifications.request_decided(request, outcome="approved", note=note, by=actor)
    return key


@transaction.atomic(durable=True)
def key_request_reject(*, request: KeyRequest, approver: User, note: str = "") -> KeyRequest:
    permissions.require_can_decide_key_request(approver, request)
    request = KeyRequest.objects.select_for_update(of=("self",)).select_related("team").get(pk=request.pk)
    if permissions.key_request_decide_refusal(request):
        raise InvalidTransition(request.status, "reject")
    if not note.strip():
        raise ValidationError({"note": "Say why you reject it; the requester sees this."})
    Approval.objects.create(
        request=request,
        approver=approver,
        decision=Approval.Decision.REJECT,
        as_admin=permissions.is_admin(approver),
        note=note,
    )
    request.status = KeyRequest.Status.REJECTED
    request.decided_at = timezone.now()
    request.decision_note = note
    request.save(update_fields=["status", "decided_at", "decision_note"])
    audit.record(actor=approver, action="key_request.rejected", target=request, team=request.team, data={"note": note})
    notifications.request_decided(request, outcome="rejected", note=note, by=approver)
    return request
