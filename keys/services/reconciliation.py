"""Reconciliation with the gateway: keys made there by hand (listed, then adopted or deleted), revoked keys
still live there (deleted again), active keys missing there (recorded once per episode)."""

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
from govsite.gateway.client import get_client
from keys.models import GatewayCommand, KeyKind, UnmanagedKey, VirtualKey
from keys.services.commands import gateway_command_issue
from keys.services.policy import team_key_policy


@dataclass
class ReconcileResult:
    seen: int = 0
    unmanaged_new: int = 0
    redeleted: int = 0
    missing: int = 0
    back: int = 0


def gateway_reconcile() -> ReconcileResult:
    """Compare the gateway's keys with govsite's; record and repair differences."""
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
            gateway_command_issue(GatewayCommand.Kind.KEY_DELETE, key=key)
            audit.record(
                action="key.still_live_after_revoke",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias},
            )
            result.redeleted += 1
    result.missing = _missing_episodes(gateway_keys, now)
    result.back = _back_in_gateway(gateway_keys)
    return result


def _missing_episodes(gateway_keys: dict, now) -> int:
    """An active key the gateway does not hold starts an episode: recorded once, until it is seen again."""
    started = 0
    missing = VirtualKey.objects.filter(
        status=VirtualKey.Status.ACTIVE, expires_at__gt=now, missing_in_gateway_since__isnull=True
    ).exclude(token_hash__in=list(gateway_keys))
    for key_id in missing.values_list("pk", flat=True):
        with transaction.atomic():
            key = VirtualKey.objects.select_for_update().get(pk=key_id)
            if key.status != VirtualKey.Status.ACTIVE or key.missing_in_gateway_since is not None:
                continue
            key.missing_in_gateway_since = now
            key.save(update_fields=["missing_in_gateway_since"])
            audit.record(
                action="key.missing_in_gateway",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias},
            )
            started += 1
    return started


def _back_in_gateway(gateway_keys: dict) -> int:
    """A key seen again in the gateway ends its missing episode."""
    back = 0
    seen = VirtualKey.objects.filter(token_hash__in=list(gateway_keys), missing_in_gateway_since__isnull=False)
    for key_id in seen.values_list("pk", flat=True):
        with transaction.atomic():
            key = VirtualKey.objects.select_for_update().get(pk=key_id)
            if key.missing_in_gateway_since is None:
                continue
            since = key.missing_in_gateway_since
            key.missing_in_gateway_since = None
            key.save(update_fields=["missing_in_gateway_since"])
            audit.record(
                action="key.back_in_gateway",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias, "missing_since": since.isoformat()},
            )
            back += 1
    return back


@transaction.atomic(durable=True)
def unmanaged_key_delete(*, unmanaged: UnmanagedKey, actor: User) -> GatewayCommand:
    """Delete a hand-made key from the gateway: a command, carried out after commit like every other
    (no call to the gateway inside this transaction); the key is marked deleted once the gateway confirms."""
    permissions.require(permissions.can_manage_gateway(actor), "Only admins can delete unmanaged keys.")
    unmanaged = UnmanagedKey.objects.select_for_update().get(pk=unmanaged.pk)
    if unmanaged.status != UnmanagedKey.Status.OPEN:
        raise InvalidTransition(unmanaged.status, "delete")
    unmanaged.status = UnmanagedKey.Status.DELETING
    unmanaged.decided_by = actor
    unmanaged.save(update_fields=["status", "decided_by"])
    command = gateway_command_issue(
        GatewayCommand.Kind.UNMANAGED_DELETE,
        payload={"unmanaged_key": unmanaged.pk, "token_hash": unmanaged.token_hash},
    )
    audit.record(
        actor=actor, action="key.unmanaged_delete_requested", target=unmanaged, data={"alias": unmanaged.alias}
    )
    return command


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
