"""Personal API tokens: made, revoked, checked on every API call. Each change and each refusal is audited."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from govsite.accounts import permissions
from govsite.accounts.models import User
from govsite.api.models import ApiToken
from govsite.errors import InvalidTransition

log = logging.getLogger(__name__)

TOKEN_PREFIX = "gst_"  # noqa: S105 - a prefix, not a secret
MAX_LIFETIME = timedelta(days=365)
MAX_ACTIVE_TOKENS = 20
# last_used_at is a hint for the owner, not a log: written at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenRefused(Exception):
    """A bearer token that does not authenticate; `reason` is what the audit event records."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def hash_api_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _snapshot(token: ApiToken) -> dict:
    return {"name": token.name, "prefix": token.prefix, "scope": token.scope, "expires_at": token.expires_at}


@transaction.atomic(durable=True)
def api_token_create(*, user: User, name: str, scope: str, expires_at: datetime) -> tuple[ApiToken, str]:
    """A new token for `user`. The secret is returned once and never stored."""
    permissions.require(permissions.can_create_api_token(user), "Only active people hold API tokens.")
    now = timezone.now()
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Name the token after what uses it (e.g. the CI job)."
    if scope not in ApiToken.Scope.values:
        errors["scope"] = f"Choose {' or '.join(ApiToken.Scope.values)}."
    if expires_at is None:
        errors["expires_at"] = "Every token expires; choose when."
    elif expires_at <= now:
        errors["expires_at"] = "The expiry date must be in the future."
    elif expires_at > now + MAX_LIFETIME:
        errors["expires_at"] = "A token lives at most one year."
    active = ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now).count()
    if active >= MAX_ACTIVE_TOKENS:
        errors["name"] = f"You have {active} active tokens; revoke one you no longer use first."
    if errors:
        raise ValidationError(errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        token_hash=hash_api_token(secret),
        prefix=secret[:12],
        scope=scope,
        expires_at=expires_at,
        created_at=now,
    )
    audit.record(actor=user, action="api_token.created", target=token, data=_snapshot(token))
    return token, secret


@transaction.atomic(durable=True)
def api_token_revoke(*, token: ApiToken, actor: User) -> ApiToken:
    permissions.require(
        permissions.can_revoke_api_token(actor, token), "Only the token's owner or an admin can revoke it."
    )
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise InvalidTransition("revoked", "revoke", "Cannot revoke: the token is revoked.")
    token.revoked_at, token.revoked_by = timezone.now(), actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    data = _snapshot(token)
    if token.user_id != actor.pk:
        data["owner"] = token.user.email
    audit.record(actor=actor, action="api_token.revoked", target=token, data=data)
    return token


def api_tokens_revoke_on_deactivation(*, user: User, actor: User | None, actor_label: str = "") -> int:
    """Inside the deactivation's transaction (registered with accounts in ApiConfig.ready): every token of
    the person still in force is revoked, each with its event. A reactivation does not bring them back."""
    tokens = list(ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True))
    now = timezone.now()
    for token in tokens:
        token.revoked_at, token.revoked_by = now, actor
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(
            actor=actor,
            actor_label=actor_label,
            action="api_token.revoked",
            target=token,
            data={**_snapshot(token), "owner": user.email, "reason": "the person was deactivated"},
        )
    return len(tokens)


def api_token_refuse(
    *, token: ApiToken, reason: str, method: str, path: str, source: str | None, now: float | None = None
) -> bool:
    """Record that a known token was refused (expired, revoked, its person deactivated, or read-only
    and used for a write). The event is the owner's: it is their credential, wherever it was used from.

    Anyone holding an old token could otherwise grow the audit log at will, so a token refused from one
    source is recorded once per window (API_TOKEN_REFUSAL_WINDOW_SECONDS): the first refusal of a window
    writes the event, with the number of refusals of the window before (the later ones were only counted,
    in the shared cache). Returns whether an event was written."""
    window = settings.API_TOKEN_REFUSAL_WINDOW_SECONDS
    number = int(time.time() if now is None else now) // window
    counters = f"govsite:api-token-refused:{token.pk}:{source or '-'}"
    current, previous = f"{counters}:{number}", f"{counters}:{number - 1}"
    if not cache.add(current, 1, timeout=2 * window):  # atomic: one first refusal per window
        with contextlib.suppress(ValueError):  # the counter expired in between: nothing left to count
            cache.incr(current)
        return False
    _api_token_refused_record(
        token=token,
        data={
            "reason": reason,
            "prefix": token.prefix,
            "scope": token.scope,
            "method": method,
            "path": path[:200],
            "source": source or "",
            "window_seconds": window,
            "refused_in_previous_window": cache.get(previous, 0),
        },
    )
    return True


@transaction.atomic(durable=True)
def _api_token_refused_record(*, token: ApiToken, data: dict) -> None:
    audit.record(actor=token.user, action="api_token.refused", target=token, data=data)


def api_token_authenticate(*, secret: str, method: str, path: str, source: str | None = None) -> ApiToken:
    """The token this secret belongs to, if it may be used now; otherwise ApiTokenRefused.

    A refusal of a token govsite knows is audited. A secret that matches no token is only logged:
    anyone can send one, and the audit chain is not a place anonymous callers can write to at will.
    """
    if not secret.startswith(TOKEN_PREFIX):
        raise ApiTokenRefused("unknown", "This is not a govsite API token (they start with gst_).")
    token = ApiToken.objects.select_related("user").filter(token_hash=hash_api_token(secret)).first()
    if token is None:
        log.warning("API call with an unknown token %s… (%s %s)", secret[:12], method, path)
        raise ApiTokenRefused("unknown", "Unknown API token.")
    refusal = None
    if token.revoked_at is not None:
        refusal = ("revoked", "This API token was revoked.")
    elif token.is_expired:
        refusal = ("expired", "This API token has expired; create a new one.")
    elif not token.user.is_active:
        refusal = ("user_inactive", "The account this token belongs to is deactivated.")
    if refusal is not None:
        api_token_refuse(token=token, reason=refusal[0], method=method, path=path, source=source)
        raise ApiTokenRefused(*refusal)
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
