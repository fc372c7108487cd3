"""A key's life after its approval: made, revealed once, rotated, reassigned, reduced, revoked.
Every change of a key's status or grants writes an audit event targeting the key, in its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import User
from govsite.errors import InvalidTransition
from keys import crypto, notifications
from keys.models import GatewayCommand, KeyRequest, VirtualKey
from keys.services.commands import gateway_command_issue

ROTATION_GRACE = timedelta(hours=getattr(settings, "KEY_ROTATION_GRACE_HOURS", 24))
REVOCABLE = (VirtualKey.Status.ACTIVE, VirtualKey.Status.PROVISIONING, VirtualKey.Status.FAILED)


def _new_key(
    request: KeyRequest, *, allowed_models: list[str], expires_at, number: int, rotated_from: VirtualKey | None = None
) -> VirtualKey:
    """A key row for the request, not yet saved, with a fresh secret held only encrypted."""
    secret = crypto.new_secret()
    key = VirtualKey(
        request=request,
        owner=rotated_from.owner if rotated_from else request.owner,
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
    return key


def _provisioning_requested(key: VirtualKey, *, actor: User | None) -> dict:
    return {
        "actor": actor,
        "actor_label": "" if actor else "policy",
        "action": "key.provisioning_requested",
        "target": key,
        "team": key.team,
        "data": {
            "alias": key.alias,
            "models": key.allowed_models,
            "rotated_from": key.rotated_from.alias if key.rotated_from else None,
        },
    }


def key_create(
    *,
    request: KeyRequest,
    allowed_models: list[str],
    expires_at,
    actor: User | None,
    rotated_from: VirtualKey | None = None,
) -> VirtualKey:
    """A key row and its provisioning command, in the caller's transaction; the secret is made
    here so a re-run command can recognise the key it already created. A rotation belongs to the
    rotated key's owner (who may no longer be the request's, after a reassignment). A rollout's keys are made
    by `keys_create_first`, without commands: the rollout's sync command issues theirs when done."""
    key = _new_key(
        request,
        allowed_models=allowed_models,
        expires_at=expires_at,
        number=request.keys.count() + 1,
        rotated_from=rotated_from,
    )
    key.save(force_insert=True)
    gateway_command_issue(GatewayCommand.Kind.KEY_GENERATE, key=key)
    audit.record(**_provisioning_requested(key, actor=actor))
    return key


def keys_create_first(*, requests: list[KeyRequest], allowed_models: list[str], expires_at, actor: User | None):
    """The first key of each of many new requests (a rollout's), without their commands, in the caller's
    transaction: one insert of the keys and one of their audit events, the same rows as `key_create` each."""
    keys = [_new_key(r, allowed_models=allowed_models, expires_at=expires_at, number=1) for r in requests]
    VirtualKey.objects.bulk_create(keys, batch_size=500)
    audit.record_many([_provisioning_requested(key, actor=actor) for key in keys])
    return keys


@transaction.atomic(durable=True)
def key_reveal(*, key: VirtualKey, actor: User) -> str:
    """Return the secret exactly once, to its owner, and erase govsite's only copy."""
    permissions.require_can_reveal_key(actor, key)
    key = VirtualKey.objects.select_for_update().get(pk=key.pk)
    if refusal := permissions.key_reveal_refusal(key):
        raise InvalidTransition(key.status, "reveal", refusal)
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


def key_withdraw(
    *, key: VirtualKey, actor: User | None, reason: str, action: str = "key.revoked"
) -> GatewayCommand | None:
    """Revoke a key inside the caller's transaction, its row locked, for a reason someone already decided
    (an access review, a leaver, the end of a rotation's grace): the key goes to revoking and its delete
    command is issued. The caller checks who may; returns None when the key is no longer revocable."""
    if key.status not in REVOCABLE:
        return None
    key.status = VirtualKey.Status.REVOKING
    key.revoke_requested_at = timezone.now()
    key.revoked_by = actor
    key.revoke_reason = reason[:200]
    key.secret_encrypted = None
    key.grace_until = None
    key.missing_in_gateway_since = None  # a revocation ends a missing-in-gateway episode
    key.save(
        update_fields=[
            "status",
            "revoke_requested_at",
            "revoked_by",
            "revoke_reason",
            "secret_encrypted",
            "grace_until",
            "missing_in_gateway_since",
        ]
    )
    command = gateway_command_issue(GatewayCommand.Kind.KEY_DELETE, key=key)
    audit.record(
        actor=actor,
        actor_label="" if actor else "system",
        action=action,
        target=key,
        team=key.team,
        data={"reason": key.revoke_reason, "alias": key.alias},
    )
    notifications.key_revoked(key, reason=key.revoke_reason)
    return command


@transaction.atomic(durable=True)
def key_revoke(*, key: VirtualKey, actor: User, reason: str = "") -> VirtualKey:
    permissions.require_can_revoke_key(actor, key)
    key = VirtualKey.objects.select_for_update().get(pk=key.pk)
    if refusal := permissions.key_revoke_refusal(key):
        raise InvalidTransition(key.status, "revoke", refusal)
    key_withdraw(key=key, actor=actor, reason=reason or f"revoked by {actor.email}")
    return key


def key_reduce(
    *,
    key: VirtualKey,
    actor: User,
    keep_models: list[str] | None = None,
    max_budget: Decimal | None = None,
    data: dict | None = None,
) -> tuple[dict, GatewayCommand]:
    """Inside the caller's transaction, its row locked: take grants away from a live key (fewer models
    and/or a lower monthly budget), at the gateway too. `data` goes into the audit event (e.g. the access
    review that decided it). Returns the changes and the key.update command."""
    if key.status not in VirtualKey.LIVE_STATUSES:
        raise ValidationError({"decision": f"The key is {key.get_status_display().lower()}: keep or revoke it."})
    current = list(key.allowed_models)
    models = current if keep_models is None else [m for m in current if m in set(keep_models)]
    if keep_models is not None and not models:
        raise ValidationError({"keep_models": "Keep at least one model, or revoke the key."})
    if keep_models is not None and set(keep_models) - set(current):
        raise ValidationError({"keep_models": "A reduction can only keep models the key already has."})
    budget = key.max_budget if max_budget is None else Decimal(max_budget)
    if budget <= 0 or budget > key.max_budget:
        raise ValidationError({"max_budget": f"Give a monthly budget above 0 and at most ${key.max_budget}."})
    if models == current and budget == key.max_budget:
        raise ValidationError({"keep_models": "A reduction takes something away: fewer models or a lower budget."})
    changes = {
        "models": {"before": current, "after": models},
        "max_budget": {"before": str(key.max_budget), "after": str(budget)},
    }
    key.allowed_models = models
    key.max_budget = budget
    key.save(update_fields=["allowed_models", "max_budget"])
    command = gateway_command_issue(
        GatewayCommand.Kind.KEY_UPDATE, key=key, payload={"models": models, "max_budget": float(budget)}
    )
    audit.record(actor=actor, action="key.reduced", target=key, team=key.team, data={**(data or {}), **changes})
    return changes, command


def key_cap_set(
    *, key: VirtualKey, actor: User | None, max_budget: Decimal, data: dict | None = None
) -> GatewayCommand:
    """Inside the caller's transaction: set a live key's own monthly cap (a budget increase of the key approved,
    or its temporary increase taken back), at the gateway too. `data` goes into the `key.cap_changed` event."""
    key = VirtualKey.objects.select_for_update(of=("self",)).select_related("team").get(pk=key.pk)
    if key.status not in VirtualKey.LIVE_STATUSES:
        raise InvalidTransition(key.status, "change its cap", f"The key is {key.get_status_display().lower()}.")
    before = key.max_budget
    key.max_budget = max(Decimal(max_budget), Decimal("0.01"))
    key.save(update_fields=["max_budget"])
    command = gateway_command_issue(
        GatewayCommand.Kind.KEY_UPDATE, key=key, payload={"max_budget": float(key.max_budget)}
    )
    audit.record(
        actor=actor,
        actor_label="" if actor else "system",
        action="key.cap_changed",
        target=key,
        team=key.team,
        data={**(data or {}), "max_budget": {"before": str(before), "after": str(key.max_budget)}},
    )
    return command


@transaction.atomic(durable=True)
def key_rotate(*, key: VirtualKey, actor: User) -> VirtualKey:
    """A new key with the same grants; the old one keeps working for the grace period, then goes."""
    permissions.require_can_rotate_key(actor, key)
    key = VirtualKey.objects.select_for_update(of=("self",)).select_related("request").get(pk=key.pk)
    if refusal := permissions.key_rotate_refusal(key):
        raise InvalidTransition(key.status, "rotate", refusal)
    return _rotate(key=key, actor=actor)


def _rotate(*, key: VirtualKey, actor: User) -> VirtualKey:
    """The rotation of a locked key its caller checked: the new key (for the key's owner) and its
    provisioning command, the old key's grace period, `key.rotated`."""
    key.grace_until = timezone.now() + ROTATION_GRACE
    key.save(update_fields=["grace_until"])
    new_key = key_create(
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


@dataclass(frozen=True)
class KeyReassignment:
    key: VirtualKey
    rotation: VirtualKey | None  # the new owner's own key, when the old one's secret was never revealed


@transaction.atomic(durable=True)
def key_reassign_owner(*, key: VirtualKey, actor: User, new_owner: User) -> KeyReassignment:
    """Give a service key to another member of its team. Its one reveal never changes hands: a secret
    not yet revealed is destroyed, and the new owner gets a rotation (a new key, a secret of their own).
    Nobody makes themselves the owner (permissions: an admin does it for them)."""
    permissions.require_can_reassign_key_owner_to(actor, key, new_owner)
    key = VirtualKey.objects.select_for_update(of=("self",)).select_related("request", "owner", "team").get(pk=key.pk)
    if refusal := permissions.key_reassign_refusal(key):
        raise InvalidTransition(key.status, "reassign", refusal)
    if not new_owner.is_active or not permissions.is_member_of(new_owner, key.team_id):
        raise ValidationError({"owner": "The new owner must be an active member of the team."})
    before = key.owner.email
    destroy_secret = key.can_reveal
    key.owner = new_owner
    key.owner_needs_reassignment = False
    fields = ["owner", "owner_needs_reassignment"]
    if destroy_secret:
        key.secret_encrypted = None
        fields.append("secret_encrypted")
    key.save(update_fields=fields)
    audit.record(
        actor=actor,
        action="key.owner_reassigned",
        target=key,
        team=key.team,
        data={"before": before, "after": new_owner.email, "unrevealed_secret_destroyed": destroy_secret},
    )
    rotation = None
    # A key already rotated has its successor (which holds its own secret); any other gets a rotation.
    if destroy_secret and permissions.key_rotate_refusal(key) is None:
        rotation = _rotate(key=key, actor=actor)
    return KeyReassignment(key=key, rotation=rotation)
