"""SCIM bearer tokens: created (the secret shown once), revoked, and checked on every SCIM call."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import ScimToken, User

log = logging.getLogger(__name__)

SCIM_TOKEN_PREFIX = "scim_"  # noqa: S105 - a prefix, not a secret
# last_used_at is a hint for admins ("is the identity provider still syncing?"), not a log.
SCIM_LAST_USED_RESOLUTION = timedelta(minutes=1)


class ScimTokenRefused(Exception):
    """A bearer token that does not authenticate; `reason` is what the audit event records."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def hash_scim_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic(durable=True)
def scim_token_create(*, actor: User | None, name: str) -> tuple[ScimToken, str]:
    """A new SCIM bearer token; the secret is returned once and never stored.

    `actor` None is an operator at the shell (`manage.py create_scim_token`): shell access is the permission.
    """
    if actor is not None:
        permissions.require(permissions.can_manage_people(actor), "Only admins can create SCIM tokens.")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the token after the identity provider that uses it."})
    if len(name) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if ScimToken.objects.filter(name=name, revoked_at__isnull=True).exists():
        raise ValidationError({"name": "A live SCIM token already has this name; revoke it or choose another."})
    secret = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            token = ScimToken.objects.create(
                name=name, token_hash=hash_scim_token(secret), last4=secret[-4:], created_by=actor
            )
    except IntegrityError as exc:  # the same name made live by someone else a moment ago
        raise ValidationError(
            {"name": "A live SCIM token already has this name; revoke it or choose another."}
        ) from exc
    audit.record(
        actor=actor,
        actor_label="" if actor else "manage.py create_scim_token",
        action="scim_token.created",
        target=token,
        data={"name": name, "last4": token.last4},
    )
    return token, secret


@transaction.atomic(durable=True)
def scim_token_revoke(*, actor: User, token: ScimToken) -> ScimToken:
    permissions.require(permissions.can_manage_people(actor), "Only admins can revoke SCIM tokens.")
    token = ScimToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError({"token": "This SCIM token is already revoked."})
    token.revoked_at, token.revoked_by = timezone.now(), actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(
        actor=actor, action="scim_token.revoked", target=token, data={"name": token.name, "last4": token.last4}
    )
    return token


def scim_token_authenticate(*, secret: str, method: str, path: str) -> ScimToken:
    """The live token this secret belongs to, or ScimTokenRefused.

    Using a revoked token is audited (it is a known credential); a secret that matches no token is only
    logged: anyone can send one, and the audit chain is not a place anonymous callers can write to.
    """
    token = ScimToken.objects.filter(token_hash=hash_scim_token(secret)).first() if secret else None
    if token is None:
        log.warning("SCIM call with an unknown token (%s %s)", method, path[:200])
        raise ScimTokenRefused("unknown", "Unknown SCIM bearer token.")
    if token.revoked_at is not None:
        with transaction.atomic():
            audit.record(
                actor_label=token.actor_label,
                action="scim_token.refused",
                target=token,
                data={"reason": "revoked", "method": method, "path": path[:200]},
            )
        raise ScimTokenRefused("revoked", "This SCIM token was revoked.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > SCIM_LAST_USED_RESOLUTION:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _require_live_token(token: ScimToken) -> ScimToken:
    # Locked for the write: a revocation that commits first stops the write, one after waits for it.
    token = ScimToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise PermissionDenied("This SCIM token was revoked.")
    return token
