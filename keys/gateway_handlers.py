"""What each gateway command does at LiteLLM, and what its success or give-up changes in govsite.

Handlers talk to the gateway only (no database writes) and are safe to run twice: a key is
looked up by its deterministic alias before it is created, and a delete of a missing key is
success. `apply_outcome` runs in the transaction that marks the command done, `apply_give_up` in
the one that gives it up, `apply_retry` in an admin's retry; each change of a key's status writes
an audit event targeting the key there.
"""

from __future__ import annotations

import contextlib

from django.db.models import Exists, OuterRef
from django.utils import timezone

import audit
from govsite.accounts.models import User
from govsite.gateway.client import AliasConflict, Conflict, GatewayClient, NotFound, get_client
from keys import crypto, notifications
from keys.models import GatewayCommand, UnmanagedKey, VirtualKey


def gateway_team_id(team_id: int) -> str:
    """Stable id of a team in LiteLLM (slugs may be renamed; ids never are)."""
    return f"govsite-team-{team_id}"


def gateway_user_id(user_id: int) -> str:
    return f"govsite-user-{user_id}"


def _ensure_team(client: GatewayClient, team) -> None:
    try:
        client.team_info(team_id=gateway_team_id(team.pk))
    except NotFound:
        client.team_new(team_id=gateway_team_id(team.pk), team_alias=team.name, metadata={"govsite_team": team.slug})


def _ensure_user(client: GatewayClient, user) -> None:
    """The key's user exists in the gateway before the key (LiteLLM's /key/generate creates none)."""
    fields = {"user_id": gateway_user_id(user.pk), "user_role": "internal_user"}
    try:
        client.user_new(**fields, user_email=user.email)
    except Conflict as exc:
        if "with email" not in str(exc):
            return  # "User with id … already exists": made by an earlier try
        # Another gateway user (made by hand) holds the e-mail, which LiteLLM keeps unique: govsite's user is
        # made without it, so the key is still attributed to the person's own gateway user.
        with contextlib.suppress(Conflict):
            client.user_new(**fields)


def _find_by_alias(client: GatewayClient, alias: str) -> dict | None:
    found = client.key_list(key_alias=alias).get("keys") or []
    return next((k for k in found if isinstance(k, dict) and k.get("key_alias") == alias), None)


def key_generate(command: GatewayCommand) -> dict:
    key = VirtualKey.objects.select_related("team", "owner", "request").get(pk=command.key_id)
    if key.status not in (VirtualKey.Status.PROVISIONING, VirtualKey.Status.FAILED):
        return {"skipped": f"key is {key.status}"}
    with get_client() as client:
        # A rollout's keys come after its one team-and-users sync (rollout_sync): nothing to ensure per key.
        synced = bool(command.payload.get("rollout"))
        # On a command's first attempt no earlier try can have made the key; should the alias be taken all
        # the same, /key/generate refuses it and the AliasConflict branch below looks it up.
        return _key_generate(client, key, ensure=not synced, look_up=command.attempts > 1 or not synced)


def _key_generate(client: GatewayClient, key: VirtualKey, *, ensure: bool = True, look_up: bool = True) -> dict:
    if ensure:
        _ensure_team(client, key.team)
        _ensure_user(client, key.owner)
    existing = _find_by_alias(client, key.alias) if look_up else None
    if existing is not None:
        if existing.get("token") != key.token_hash:
            raise AliasConflict(f"alias {key.alias} belongs to another key", status=400, param="key_alias")
        return {"found_existing": True}
    if key.secret_encrypted is None:
        return {"skipped": "secret no longer held"}
    remaining_days = max(1, (key.expires_at - timezone.now()).days)
    approvers = []
    if key.request_id:
        approvers = list(key.request.approvals.exclude(approver=None).values_list("approver__email", flat=True))
    body = {
        "key_alias": key.alias,
        "key": crypto.decrypt(key.secret_encrypted),
        "user_id": gateway_user_id(key.owner_id),
        "team_id": gateway_team_id(key.team_id),
        "models": list(key.allowed_models),
        "max_budget": float(key.max_budget),
        "budget_duration": key.budget_duration,
        "duration": f"{remaining_days}d",
        "metadata": {
            "govsite_key_id": key.pk,
            "govsite_request_id": key.request_id,
            "owner": key.owner.email,
            "kind": key.kind,
            "service_name": key.service_name,
            "approvers": approvers,
        },
    }
    if key.rpm_limit:
        body["rpm_limit"] = key.rpm_limit
    if key.tpm_limit:
        body["tpm_limit"] = key.tpm_limit
    try:
        response = client.key_generate(**body)
    except AliasConflict:
        # Another run created it between our look-up and our call.
        if (_find_by_alias(client, key.alias) or {}).get("token") == key.token_hash:
            return {"found_existing": True}
        raise
    if response.get("token") and response["token"] != key.token_hash:
        raise AliasConflict("the gateway stored a different secret", status=400, param="key")
    return {"created": True}


def key_delete(command: GatewayCommand) -> dict:
    key = VirtualKey.objects.get(pk=command.key_id)
    try:
        with get_client() as client:
            client.key_delete(keys=[key.token_hash])
    except NotFound:
        return {"already_gone": True}
    return {"deleted": True}


def unmanaged_delete(command: GatewayCommand) -> dict:
    try:
        with get_client() as client:
            client.key_delete(keys=[command.payload["token_hash"]])
    except NotFound:
        return {"already_gone": True}
    return {"deleted": True}


def key_block(command: GatewayCommand) -> dict:
    key = VirtualKey.objects.get(pk=command.key_id)
    with get_client() as client:
        client.key_block(key=key.token_hash)
    return {"blocked": True}


def key_unblock(command: GatewayCommand) -> dict:
    key = VirtualKey.objects.get(pk=command.key_id)
    with get_client() as client:
        client.key_unblock(key=key.token_hash)
    return {"unblocked": True}


def key_update(command: GatewayCommand) -> dict:
    key = VirtualKey.objects.get(pk=command.key_id)
    with get_client() as client:
        client.key_update(key=key.token_hash, **command.payload)
    return {"updated": sorted(command.payload)}


def team_sync(command: GatewayCommand) -> dict:
    team = command.team
    with get_client() as client:
        try:
            client.team_info(team_id=gateway_team_id(team.pk))
        except NotFound:
            client.team_new(team_id=gateway_team_id(team.pk), team_alias=team.name, **command.payload)
            return {"created": True}
        client.team_update(team_id=gateway_team_id(team.pk), **command.payload)
    return {"updated": True}


def rollout_sync(command: GatewayCommand) -> dict:
    """A rollout's shared gateway work, once for all its keys: the team, then each person's gateway user.
    Safe to run again (what exists is left as it is); the keys' own commands are issued when it is done."""
    users = list(User.objects.filter(pk__in=command.payload.get("users", [])).order_by("pk"))
    with get_client() as client:
        _ensure_team(client, command.team)
        for user in users:
            _ensure_user(client, user)
    return {"rollout": command.payload.get("rollout"), "users": len(users)}


HANDLERS = {
    GatewayCommand.Kind.KEY_GENERATE: key_generate,
    GatewayCommand.Kind.KEY_DELETE: key_delete,
    GatewayCommand.Kind.KEY_BLOCK: key_block,
    GatewayCommand.Kind.KEY_UNBLOCK: key_unblock,
    GatewayCommand.Kind.KEY_UPDATE: key_update,
    GatewayCommand.Kind.TEAM_SYNC: team_sync,
    GatewayCommand.Kind.UNMANAGED_DELETE: unmanaged_delete,
    GatewayCommand.Kind.ROLLOUT_SYNC: rollout_sync,
}


def apply_outcome(command: GatewayCommand, outcome: dict) -> None:
    """Record in govsite what the gateway now holds (inside the command's 'done' transaction)."""
    if command.kind == GatewayCommand.Kind.KEY_GENERATE and "skipped" not in outcome:
        # What the owner's e-mail names (a rollout's key says whose rollout it is) comes in the same query.
        key = (
            VirtualKey.objects.select_for_update(of=("self",))
            .select_related("team", "owner", "request__rollout__requested_by")
            .get(pk=command.key_id)
        )
        if key.status in (VirtualKey.Status.PROVISIONING, VirtualKey.Status.FAILED):
            key.status = VirtualKey.Status.ACTIVE
            key.provisioned_at = timezone.now()
            key.save(update_fields=["status", "provisioned_at"])
            audit.record(
                action="key.provisioned",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias, "token_hash": key.token_hash, **outcome},
            )
            notifications.key_ready(key)
    elif command.kind == GatewayCommand.Kind.KEY_DELETE:
        key = VirtualKey.objects.select_for_update().get(pk=command.key_id)
        if key.status == VirtualKey.Status.REVOKING:
            key.status = VirtualKey.Status.REVOKED
            key.revoked_at = timezone.now()
            key.save(update_fields=["status", "revoked_at"])
        audit.record(
            action="key.deleted_in_gateway",
            actor_label="system",
            target=key,
            team=key.team,
            data={"alias": key.alias, **outcome},
        )
    elif command.kind == GatewayCommand.Kind.UNMANAGED_DELETE:
        unmanaged = UnmanagedKey.objects.select_for_update().get(pk=command.payload["unmanaged_key"])
        if unmanaged.status == UnmanagedKey.Status.DELETING:
            unmanaged.status = UnmanagedKey.Status.DELETED
            unmanaged.save(update_fields=["status"])
            audit.record(
                action="key.unmanaged_deleted",
                actor_label="system",
                target=unmanaged,
                data={"alias": unmanaged.alias, "requested_by": unmanaged.decided_by.email, **outcome},
            )
    elif command.kind in (
        GatewayCommand.Kind.KEY_BLOCK,
        GatewayCommand.Kind.KEY_UNBLOCK,
        GatewayCommand.Kind.KEY_UPDATE,
        GatewayCommand.Kind.TEAM_SYNC,
        GatewayCommand.Kind.ROLLOUT_SYNC,
    ):
        # A key's block, unblock or update lands on the key, where the evidence reports read key events.
        target = command.key if command.key_id else command
        audit.record(
            action=f"gateway.{command.kind}",
            actor_label="system",
            target=target,
            team=command.team,
            data={"command": command.pk, **outcome},
        )


def rollout_keys_waiting(command: GatewayCommand):
    """The keys waiting on a rollout's sync command (made without a command of their own)."""
    has_command = GatewayCommand.objects.filter(key=OuterRef("pk"))
    return (
        VirtualKey.objects.select_for_update(of=("self",))
        .filter(request__rollout_id=command.payload.get("rollout"))
        .filter(~Exists(has_command))
        .select_related("team")
        .order_by("pk")
    )


def apply_give_up(command: GatewayCommand) -> None:
    """A command given up (inside that transaction): a key that could not be made is failed (a rollout's
    sync given up: each of its keys waiting on it)."""
    if command.kind == GatewayCommand.Kind.ROLLOUT_SYNC:
        for key in rollout_keys_waiting(command).filter(status=VirtualKey.Status.PROVISIONING):
            key.status = VirtualKey.Status.FAILED
            key.save(update_fields=["status"])
            audit.record(
                action="key.provisioning_failed",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias, "command": command.pk, "error": command.last_error},
            )
    if command.kind == GatewayCommand.Kind.KEY_GENERATE and command.key_id:
        key = VirtualKey.objects.select_for_update().get(pk=command.key_id)
        if key.status == VirtualKey.Status.PROVISIONING:
            key.status = VirtualKey.Status.FAILED
            key.save(update_fields=["status"])
            audit.record(
                action="key.provisioning_failed",
                actor_label="system",
                target=key,
                team=key.team,
                data={"alias": key.alias, "command": command.pk, "error": command.last_error},
            )


def apply_retry(command: GatewayCommand, *, actor) -> None:
    """An admin retries a given-up command (inside that transaction): its failed key (a rollout sync's
    failed keys) is provisioning again."""
    if command.kind == GatewayCommand.Kind.ROLLOUT_SYNC:
        keys = list(rollout_keys_waiting(command).filter(status=VirtualKey.Status.FAILED))
    elif command.kind == GatewayCommand.Kind.KEY_GENERATE and command.key_id:
        keys = list(VirtualKey.objects.select_for_update().filter(pk=command.key_id))
    else:
        keys = []
    for key in keys:
        if key.status == VirtualKey.Status.FAILED:
            key.status = VirtualKey.Status.PROVISIONING
            key.save(update_fields=["status"])
            audit.record(
                actor=actor,
                action="key.provisioning_retried",
                target=key,
                team=key.team,
                data={"alias": key.alias, "command": command.pk},
            )
