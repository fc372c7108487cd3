"""Every write in the key lifecycle: requests, decisions, provisioning, reveal, revoke, rotate,
expiry, leavers and reconciliation. Each transition is one service and writes its audit event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit
from govsite import jobs
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.errors import InvalidTransition
from keys import crypto, notifications
from keys.models import (
    Approval,
    DataClassification,
    GatewayCommand,
    KeyKind,
    KeyRequest,
    ModelPolicy,
    TeamKeyPolicy,
    UnmanagedKey,
    VirtualKey,
)


MAX_MONTHLY_BUDGET = Decimal(getattr(settings, "KEY_MAX_MONTHLY_BUDGET", "100000"))
ROTATION_GRACE = timedelta(hours=getattr(settings, "KEY_ROTATION_GRACE_HOURS", 24))
EXPIRY_REMINDER = timedelta(days=7)


def gateway_team_id(team_id: int) -> str:
    """Stable id of a team in LiteLLM (slugs may be renamed; ids never are)."""
    return f"govsite-team-{team_id}"


def gateway_user_id(user_id: int) -> str:
    return f"govsite-user-{user_id}"


def team_key_policy(team: Team) -> TeamKeyPolicy:
    policy = TeamKeyPolicy.objects.filter(team=team).first()
    return policy or TeamKeyPolicy(team=team)


# --- model policy ---------------------------------------------------------------------------------

MODEL_POLICY_FIELDS = ("name", "provider", "note", "access", "max_classification", "flat_rate", "is_active")


def _policy_snapshot(policy: ModelPolicy) -> dict:
    data = {f: getattr(policy, f) for f in MODEL_POLICY_FIELDS if f != "max_classification"}
    data["max_classification"] = policy.max_classification.key if policy.max_classification_id else None
    return data


@transaction.atomic(durable=True)
def model_policy_save(*, actor: User, policy: ModelPolicy | None = None, **fields) -> ModelPolicy:
    """Create a model policy, or change one; the audit event carries before and after."""
    permissions.require(permissions.can_manage_model_policy(actor), "Only admins can change model policy.")
    unknown = set(fields) - set(MODEL_POLICY_FIELDS)
    if unknown:
        raise ValueError(f"unknown model policy fields {sorted(unknown)}")
    if policy is None:
        before = None
        policy = ModelPolicy(**fields)
    else:
        policy = ModelPolicy.objects.select_for_update().get(pk=policy.pk)
        before = _policy_snapshot(policy)
        for name, value in fields.items():
            setattr(policy, name, value)
    policy.full_clean()
    after = _policy_snapshot(policy)
    if before == after:
        return policy
    policy.save()
    audit.record(
        actor=actor,
        action="model_policy.created" if before is None else "model_policy.changed",
        target=policy,
        data={"before": before, "after": after},
    )
    return policy


@transaction.atomic(durable=True)
def data_classification_relabel(*, actor: User, classification: DataClassification, label: str) -> None:
    permissions.require(permissions.can_manage_model_policy(actor), "Only admins can rename data classes.")
    label = label.strip()
    if not label:
        raise ValidationError({"label": "A label is required."})
    before = classification.label
    if before == label:
        return
    classification.label = label
    classification.save(update_fields=["label"])
    audit.record(
        actor=actor,
        action="data_classification.relabelled",
        target=classification,
        data={"before": before, "after": label, "level": classification.level},
    )


@transaction.atomic(durable=True)
def team_key_policy_save(
    *, actor: User, team: Team, max_expiry_days: int, auto_approve: bool, auto_approve_max_budget: Decimal
) -> TeamKeyPolicy:
    permissions.require(permissions.can_manage_teams(actor), "Only admins can change a team's key policy.")
    policy, _ = TeamKeyPolicy.objects.select_for_update().get_or_create(team=team)
    before = {
        "max_expiry_days": policy.max_expiry_days,
        "auto_approve": policy.auto_approve,
        "auto_approve_max_budget": str(policy.auto_approve_max_budget),
    }
    policy.max_expiry_days = max_expiry_days
    policy.auto_approve = auto_approve
    policy.auto_approve_max_budget = auto_approve_max_budget
    policy.full_clean()
    policy.save()
    after = {
        "max_expiry_days": policy.max_expiry_days,
        "auto_approve": policy.auto_approve,
        "auto_approve_max_budget": str(policy.auto_approve_max_budget),
    }
    if before != after:
        audit.record(
            actor=actor,
            action="team.key_policy_changed",
            target=team,
            team=team,
            data={"before": before, "after": after},
        )
    return policy


# --- requests ---------------------------------------------------------------------------------------


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
    if errors:
        raise ValidationError(errors)


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
    permissions.require(request.requested_by_id == actor.pk, "Only the requester can cancel a request.")
    if request.status != KeyRequest.Status.PENDING:
        raise InvalidTransition(request.status, "cancel")
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
    if request.status != KeyRequest.Status.PENDING:
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
    key = _key_create(
        request=request,
        allowed_models=sorted(request.requested_models.values_list("name", flat=True)),
        expires_at=request.decided_at + timedelta(days=request.expiry_days),
        actor=actor,
    )
    notifications.request_decided(request, outcome="approved", note=note)
    return key


@transaction.atomic(durable=True)
def key_request_reject(*, request: KeyRequest, approver: User, note: str = "") -> KeyRequest:
    permissions.require_can_decide_key_request(approver, request)
    request = KeyRequest.objects.select_for_update(of=("self",)).select_related("team").get(pk=request.pk)
    if request.status != KeyRequest.Status.PENDING:
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
    notifications.request_decided(request, outcome="rejected", note=note)
    return request


# --- keys ---------------------------------------------------------------------------------------------


def _key_create(
    *,
    request: KeyRequest,
    allowed_models: list[str],
    expires_at,
    actor: User | None,
    rotated_from: VirtualKey | None = None,
) -> VirtualKey:
    """A key row and its provisioning command, in the caller's transaction; the secret is made
    here so a re-run command can recognise the key it already created."""
    secret = crypto.new_secret()
    number = request.keys.count() + 1
    key = VirtualKey.objects.create(
        request=request,
        owner=request.owner,
        team=request.team,
        kind=request.kind,
        service_name=request.service_name,
        alias=f"govsite-r{request.pk}-k{number}",
        allowed_models=allowed_models,
        max_budget=request.monthly_budget,
        rpm_limit=request.rpm_limit,
        tpm_limit=request.tpm_limit,
        expires_at=expires_at,
        token_hash=crypto.token_hash(secret),
        last4=secret[-4:],
        secret_encrypted=crypto.encrypt(secret),
        rotated_from=rotated_from,
    )
    del secret
    command = GatewayCommand.objects.create(kind=GatewayCommand.Kind.KEY_GENERATE, key=key, team=key.team)
    audit.record(
        actor=actor,
        actor_label="" if actor else "policy",
        action="key.provisioning_requested",
        target=key,
        team=key.team,
        data={
            "alias": key.alias,
            "models": allowed_models,
            "rotated_from": rotated_from.alias if rotated_from else None,
        },
    )
    gateway_command_enqueue(command)
    return key


def gateway_command_enqueue(command: GatewayCommand) -> None:
    from keys import jobs as key_jobs

    jobs.enqueue(key_jobs.run_gateway_command, command.pk)


@transaction.atomic(durable=True)
def key_reveal(*, key: VirtualKey, actor: User) -> str:
    """Return the secret exactly once, to its owner, and erase govsite's only copy."""
    permissions.require(permissions.can_reveal_key(actor, key), "Only the key's owner can reveal it.")
    key = VirtualKey.objects.select_for_update().get(pk=key.pk)
    if key.status != VirtualKey.Status.ACTIVE:
        raise InvalidTransition(key.status, "reveal", "The key can be revealed once it is active.")
    if not key.can_reveal:
        raise InvalidTransition(key.status, "reveal", "This key was already revealed; it is shown only once.")
    try:
        secret = crypto.decrypt(key.secret_encrypted)
    except crypto.CannotDecrypt as exc:
        raise InvalidTransition(
            key.status,
            "reveal",
            "govsite can no longer read this key's secret: the site's encryption secret (KEY_ENCRYPTION_SECRET, "
            "or SECRET_KEY when it is unset) changed after the key was made. Rotate the key to get a new one.",
        ) from exc
    key.secret_encrypted = None
    key.revealed_at = timezone.now()
    key.save(update_fields=["secret_encrypted", "revealed_at"])
    audit.record(actor=actor, action="key.revealed", target=key, team=key.team, data={"masked": key.masked})
    return secret


def _revoke(key: VirtualKey, *, actor: User | None, reason: str, action: str = "key.revoked") -> None:
    key.status = VirtualKey.Status.REVOKING
    key.revoke_requested_at = timezone.now()
    key.revoked_by = actor
    key.revoke_reason = reason
    key.secret_encrypted = None
    key.grace_until = None
    key.save(
        update_fields=[
            "status",
            "revoke_requested_at",
            "revoked_by",
            "revoke_reason",
            "secret_encrypted",
            "grace_until",
        ]
    )
    command = GatewayCommand.objects.create(kind=GatewayCommand.Kind.KEY_DELETE, key=key, team=key.team)
    audit.record(
        actor=actor,
        actor_label="" if actor else "system",
        action=action,
        target=key,
        team=key.team,
        data={"reason": reason, "alias": key.alias},
    )
    notifications.key_revoked(key, reason=reason)
    gateway_command_enqueue(command)


@transaction.atomic(durable=True)
def key_revoke(*, key: VirtualKey, actor: User, reason: str = "") -> VirtualKey:
    permissions.require(
        permissions.can_revoke_key(actor, key), "Only the owner, the team's approvers or an admin can revoke it."
    )
    key = VirtualKey.objects.select_for_update().get(pk=key.pk)
    if key.status not in (VirtualKey.Status.ACTIVE, VirtualKey.Status.PROVISIONING, VirtualKey.Status.FAILED):
        raise InvalidTransition(key.status, "revoke")
    _revoke(key, actor=actor, reason=reason or f"revoked by {actor.email}")
    return key


@transaction.atomic(durable=True)
def key_rotate(*, key: VirtualKey, actor: User) -> VirtualKey:
    """A new key with the same grants; the old one keeps working for the grace period, then goes."""
    permissions.require(permissions.can_rotate_key(actor, key), "Only the owner, an approver or an admin can rotate.")
    key = VirtualKey.objects.select_for_update(of=("self",)).select_related("request").get(pk=key.pk)
    if key.status != VirtualKey.Status.ACTIVE or key.request is None:
        raise InvalidTransition(key.status, "rotate")
    if VirtualKey.objects.filter(rotated_from=key).exists():
        raise InvalidTransition(key.status, "rotate", "This key was already rotated.")
    key.grace_until = timezone.now() + ROTATION_GRACE
    key.save(update_fields=["grace_until"])
    new_key = _key_create(
        request=key.request,
        allowed_models=list(key.allowed_models),
        expires_at=key.expires_at,
        actor=actor,
        rotated_from=key,
    )
    audit.record(
        actor=actor,
        action="key.rotated",
        target=key,
        team=key.team,
        data={"new_key": new_key.alias, "old_key_deleted_after": key.grace_until.isoformat()},
    )
    return new_key


@transaction.atomic(durable=True)
def key_reassign_owner(*, key: VirtualKey, actor: User, new_owner: User) -> VirtualKey:
    permissions.require(permissions.can_reassign_key_owner(actor, key), "Only approvers or admins can reassign.")
    key = VirtualKey.objects.select_for_update().get(pk=key.pk)
    if key.kind != KeyKind.SERVICE or not key.is_live:
        raise InvalidTransition(key.status, "reassign", "Only live service keys change owner.")
    if not new_owner.is_active or not permissions.is_member_of(new_owner, key.team_id):
        raise ValidationError({"owner": "The new owner must be an active member of the team."})
    before = key.owner.email
    key.owner = new_owner
    key.owner_needs_reassignment = False
    key.save(update_fields=["owner", "owner_needs_reassignment"])
    audit.record(
        actor=actor,
        action="key.owner_reassigned",
        target=key,
        team=key.team,
        data={"before": before, "after": new_owner.email},
    )
    return key


# --- scheduled work -------------------------------------------------------------------------------------


def keys_expire(*, now=None) -> int:
    """Mark keys past their date expired (the gateway enforces `duration` itself); remind owners
    7 days before."""
    now = now or timezone.now()
    expired = 0
    for key_id in VirtualKey.objects.filter(status=VirtualKey.Status.ACTIVE, expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            key = VirtualKey.objects.select_for_update().get(pk=key_id)
            if key.status != VirtualKey.Status.ACTIVE:
                continue
            key.status = VirtualKey.Status.EXPIRED
            key.secret_encrypted = None
            key.save(update_fields=["status", "secret_encrypted"])
            audit.record(
                action="key.expired",
                actor_label="system",
                target=key,
                team=key.team,
                data={"expires_at": key.expires_at.isoformat()},
            )
            expired += 1
    due = VirtualKey.objects.filter(
        status=VirtualKey.Status.ACTIVE, expires_at__lte=now + EXPIRY_REMINDER, expiry_reminder_sent_at=None
    ).values_list("pk", flat=True)
    for key_id in due:
        with transaction.atomic():
            key = VirtualKey.objects.select_for_update(of=("self",)).select_related("owner").get(pk=key_id)
            if key.expiry_reminder_sent_at:
                continue
            key.expiry_reminder_sent_at = now
            key.save(update_fields=["expiry_reminder_sent_at"])
            audit.record(action="key.expiry_reminder_sent", actor_label="system", target=key, team=key.team)
            notifications.key_expiring(key)
    return expired


def rotation_grace_sweep(*, now=None) -> int:
    """Delete keys whose rotation grace period has ended."""
    now = now or timezone.now()
    done = 0
    for key_id in VirtualKey.objects.filter(status=VirtualKey.Status.ACTIVE, grace_until__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            key = VirtualKey.objects.select_for_update().get(pk=key_id)
            if key.status == VirtualKey.Status.ACTIVE and key.grace_until and key.grace_until <= now:
                _revoke(key, actor=None, reason="rotation grace period ended", action="key.rotation_completed")
                done += 1
    return done


def leaver_keys_sweep() -> int:
    """Revoke the personal keys of deactivated people; hand their service keys to the approvers."""
    revoked = 0
    live = VirtualKey.objects.filter(
        status__in=VirtualKey.LIVE_STATUSES + (VirtualKey.Status.FAILED,), owner__is_active=False
    )
    for key_id in live.filter(kind=KeyKind.PERSONAL).values_list("pk", flat=True):
        with transaction.atomic():
            key = VirtualKey.objects.select_for_update().get(pk=key_id)
            if key.status in (VirtualKey.Status.REVOKING, VirtualKey.Status.REVOKED, VirtualKey.Status.EXPIRED):
                continue
            _revoke(key, actor=None, reason="owner deactivated (leaver)", action="key.revoked_leaver")
            revoked += 1
    for key_id in live.filter(kind=KeyKind.SERVICE, owner_needs_reassignment=False).values_list("pk", flat=True):
        with transaction.atomic():
            key = VirtualKey.objects.select_for_update(of=("self",)).select_related("owner").get(pk=key_id)
            key.owner_needs_reassignment = True
            key.save(update_fields=["owner_needs_reassignment"])
            audit.record(
                action="key.owner_left",
                actor_label="system",
                target=key,
                team=key.team,
                data={"owner": key.owner.email},
            )
            notifications.service_key_needs_owner(key)
    return revoked


# --- gateway commands -----------------------------------------------------------------------------------

MAX_ATTEMPTS = getattr(settings, "GATEWAY_COMMAND_MAX_ATTEMPTS", 8)
LEASE = timedelta(seconds=getattr(settings, "GATEWAY_COMMAND_LEASE_SECONDS", 300))


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(15 * 2 ** (attempts - 1), 3600))


def _claim(command_id: int, now) -> GatewayCommand | None:
    """Take a command for this worker. A running command whose lease ran out (its worker died)
    may be taken again: every handler is safe to run twice."""
    with transaction.atomic():
        command = (
            GatewayCommand.objects.select_for_update(skip_locked=True)
            .filter(pk=command_id)
            .filter(
                Q(status=GatewayCommand.Status.PENDING)
                | Q(status=GatewayCommand.Status.RUNNING, updated_at__lt=now - LEASE)
            )
            .first()
        )
        if command is None:
            return None
        command.status = GatewayCommand.Status.RUNNING
        command.attempts += 1
        command.save(update_fields=["status", "attempts", "updated_at"])
        return command


def gateway_command_execute(*, command_id: int) -> str:
    """Carry out one command against the gateway. Returns the command's status afterwards."""
    from govsite.gateway.client import GatewayError
    from keys import gateway_handlers

    now = timezone.now()
    command = _claim(command_id, now)
    if command is None:
        return "skipped"
    try:
        outcome = gateway_handlers.HANDLERS[command.kind](command)
    except GatewayError as exc:
        return _command_failed(command, exc, retryable=exc.retryable)
    with transaction.atomic():
        command = GatewayCommand.objects.select_for_update().get(pk=command.pk)
        command.status = GatewayCommand.Status.DONE
        command.done_at = timezone.now()
        command.last_error = ""
        command.save(update_fields=["status", "done_at", "last_error", "updated_at"])
        gateway_handlers.apply_outcome(command, outcome)
    return command.status


def _command_failed(command: GatewayCommand, exc: Exception, *, retryable: bool) -> str:
    with transaction.atomic():
        command = GatewayCommand.objects.select_for_update().get(pk=command.pk)
        command.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if retryable and command.attempts < MAX_ATTEMPTS:
            command.status = GatewayCommand.Status.PENDING
            command.next_attempt_at = timezone.now() + _backoff(command.attempts)
            command.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
        else:
            command.status = GatewayCommand.Status.FAILED
            command.save(update_fields=["status", "last_error", "updated_at"])
            if command.kind == GatewayCommand.Kind.KEY_GENERATE and command.key_id:
                VirtualKey.objects.filter(pk=command.key_id, status=VirtualKey.Status.PROVISIONING).update(
                    status=VirtualKey.Status.FAILED
                )
            audit.record(
                action="gateway_command.failed",
                actor_label="system",
                target=command,
                team=command.team,
                data={"kind": command.kind, "attempts": command.attempts, "error": command.last_error},
            )
    return command.status


@transaction.atomic(durable=True)
def gateway_command_retry(*, command: GatewayCommand, actor: User) -> GatewayCommand:
    """An admin puts a failed command back in the queue by hand."""
    permissions.require(permissions.can_manage_gateway(actor), "Only admins can retry gateway commands.")
    command = GatewayCommand.objects.select_for_update().get(pk=command.pk)
    if command.status != GatewayCommand.Status.FAILED:
        raise InvalidTransition(command.status, "retry")
    command.status = GatewayCommand.Status.PENDING
    command.attempts = 0
    command.next_attempt_at = timezone.now()
    command.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    if command.kind == GatewayCommand.Kind.KEY_GENERATE and command.key_id:
        VirtualKey.objects.filter(pk=command.key_id, status=VirtualKey.Status.FAILED).update(
            status=VirtualKey.Status.PROVISIONING
        )
    audit.record(
        actor=actor, action="gateway_command.retried", target=command, team=command.team, data={"kind": command.kind}
    )
    gateway_command_enqueue(command)
    return command


def gateway_commands_sweep(*, now=None) -> int:
    """Re-enqueue commands left undone: due retries, and running ones whose worker vanished
    (Redis flushed, worker killed). Runs from cron every minute."""
    now = now or timezone.now()
    due = GatewayCommand.objects.filter(
        Q(status=GatewayCommand.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=GatewayCommand.Status.RUNNING, updated_at__lt=now - LEASE)
    ).order_by("pk")
    ids = list(due.values_list("pk", flat=True)[:500])
    for command_id in ids:
        from keys import jobs as key_jobs

        jobs.enqueue(key_jobs.run_gateway_command, command_id)
    return len(ids)


# --- reconciliation -------------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    seen: int = 0
    unmanaged_new: int = 0
    redeleted: int = 0
    missing: int = 0


def gateway_reconcile() -> ReconcileResult:
    """Compare the gateway's keys with govsite's; record and repair differences."""
    from govsite.gateway.client import get_client

    result = ReconcileResult()
    with get_client() as client:
        gateway_keys = {k["token"]: k for k in client.key_list_all() if k.get("token")}
    result.seen = len(gateway_keys)
    known = dict(VirtualKey.objects.filter(token_hash__in=list(gateway_keys)).values_list("token_hash", "pk"))
    now = timezone.now()
    for token, info in gateway_keys.items():
        if token in known:
            continue
        with transaction.atomic():
            row, created = UnmanagedKey.objects.select_for_update().get_or_create(
                token_hash=token,
                defaults={
                    "alias": info.get("key_alias") or "",
                    "gateway_user_id": info.get("user_id") or "",
                    "gateway_team_id": info.get("team_id") or "",
                    "gateway_models": info.get("models") or [],
                    "spend": Decimal(str(info.get("spend") or 0)),
                },
            )
            if created:
                audit.record(
                    action="key.unmanaged_found",
                    actor_label="system",
                    target=row,
                    data={
                        "alias": row.alias,
                        "gateway_user_id": row.gateway_user_id,
                        "gateway_team_id": row.gateway_team_id,
                    },
                )
                result.unmanaged_new += 1
            else:
                row.last_seen_at = now
                row.save(update_fields=["last_seen_at"])
    for key in VirtualKey.objects.filter(token_hash__in=list(gateway_keys), status=VirtualKey.Status.REVOKED):
        with transaction.atomic():
            command = GatewayCommand.objects.create(kind=GatewayCommand.Kind.KEY_DELETE, key=key, team=key.team)
            audit.record(
                action="key.still_live_after_revoke",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias},
            )
            gateway_command_enqueue(command)
            result.redeleted += 1
    missing = VirtualKey.objects.filter(status=VirtualKey.Status.ACTIVE, expires_at__gt=now).exclude(
        token_hash__in=list(gateway_keys)
    )
    for key in missing:
        with transaction.atomic():
            audit.record(
                action="key.missing_in_gateway",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias},
            )
            result.missing += 1
    return result


@transaction.atomic(durable=True)
def unmanaged_key_delete(*, unmanaged: UnmanagedKey, actor: User) -> None:
    from govsite.gateway.client import NotFound, get_client

    permissions.require(permissions.can_manage_gateway(actor), "Only admins can delete unmanaged keys.")
    unmanaged = UnmanagedKey.objects.select_for_update().get(pk=unmanaged.pk)
    if unmanaged.status != UnmanagedKey.Status.OPEN:
        raise InvalidTransition(unmanaged.status, "delete")
    try:
        with get_client() as client:
            client.key_delete(keys=[unmanaged.token_hash])
    except NotFound:
        pass  # already gone: the outcome we wanted
    unmanaged.status = UnmanagedKey.Status.DELETED
    unmanaged.decided_by = actor
    unmanaged.save(update_fields=["status", "decided_by"])
    audit.record(actor=actor, action="key.unmanaged_deleted", target=unmanaged, data={"alias": unmanaged.alias})


@transaction.atomic(durable=True)
def unmanaged_key_adopt(
    *,
    unmanaged: UnmanagedKey,
    actor: User,
    owner: User,
    team: Team,
    kind: str = KeyKind.SERVICE,
    service_name: str = "",
) -> VirtualKey:
    """Bring a hand-made gateway key under govsite: it gets an owner and a team, so its spend is
    attributed; its secret stays unknown to govsite."""
    permissions.require(permissions.can_manage_gateway(actor), "Only admins can adopt unmanaged keys.")
    unmanaged = UnmanagedKey.objects.select_for_update().get(pk=unmanaged.pk)
    if unmanaged.status != UnmanagedKey.Status.OPEN:
        raise InvalidTransition(unmanaged.status, "adopt")
    if not owner.is_active or not permissions.is_member_of(owner, team):
        raise ValidationError({"owner": "The owner must be an active member of the team."})
    key = VirtualKey.objects.create(
        request=None,
        owner=owner,
        team=team,
        kind=kind,
        service_name=service_name or unmanaged.alias,
        alias=unmanaged.alias or f"adopted-{unmanaged.token_hash[:12]}",
        allowed_models=unmanaged.gateway_models,
        max_budget=Decimal("0"),
        expires_at=timezone.now() + timedelta(days=team_key_policy(team).max_expiry_days),
        status=VirtualKey.Status.ACTIVE,
        token_hash=unmanaged.token_hash,
        last4="????",
        provisioned_at=unmanaged.first_seen_at,
    )
    unmanaged.status = UnmanagedKey.Status.ADOPTED
    unmanaged.decided_by = actor
    unmanaged.save(update_fields=["status", "decided_by"])
    audit.record(
        actor=actor,
        action="key.unmanaged_adopted",
        target=key,
        team=team,
        data={"alias": key.alias, "owner": owner.email},
    )
    return key
