"""Ingest tokens: the credential a LiteLLM proxy's callback posts spend with (only its hash is kept)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from budgets.models import IngestToken
from govsite.accounts import permissions
from govsite.accounts.models import User
from govsite.errors import InvalidTransition

TOKEN_PREFIX = "gsi_"  # noqa: S105 - a prefix, not a secret


def hash_ingest_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic(durable=True)
def ingest_token_create(*, actor: User | None, name: str) -> tuple[IngestToken, str]:
    """A new token for the gateway callback. The secret is returned once and never stored."""
    if actor is not None:
        permissions.require(permissions.can_manage_ingest(actor), "Only admins can create ingest tokens.")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name (e.g. the gateway it is for)."})
    if IngestToken.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A token named {name!r} exists already."})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = IngestToken.objects.create(
        name=name[:100], token_hash=hash_ingest_token(secret), prefix=secret[:10], created_by=actor
    )
    audit.record(
        actor=actor,
        actor_label="" if actor else "manage.py",
        action="ingest_token.created",
        target=token,
        data={"name": token.name, "prefix": token.prefix},
    )
    return token, secret


@transaction.atomic(durable=True)
def ingest_token_revoke(*, actor: User, token: IngestToken) -> IngestToken:
    permissions.require(permissions.can_manage_ingest(actor), "Only admins can revoke ingest tokens.")
    token = IngestToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise InvalidTransition("revoked", "revoke", "Cannot revoke: it is already revoked.")
    token.revoked_at, token.revoked_by = timezone.now(), actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(actor=actor, action="ingest_token.revoked", target=token, data={"name": token.name})
    return token


def ingest_token_authenticate(secret: str) -> IngestToken | None:
    """The active token with this secret, or None. Notes its use at most once a minute."""
    if not secret or not secret.startswith(TOKEN_PREFIX):
        return None
    token = IngestToken.objects.filter(token_hash=hash_ingest_token(secret), revoked_at__isnull=True).first()
    if token is not None:
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            IngestToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def ingest_token_note_spool(*, token: IngestToken, report: str) -> None:
    """Keep what the callback reports of its spool (`<files> <oldest epoch seconds>`), shown on the
    reconciliation page. Telemetry like last_used_at: no audit event; written only when not both empty."""
    try:
        files, oldest = (int(part) for part in report.split())
    except ValueError:
        return
    if files < 0 or not 0 <= oldest < 2**33:
        return
    if files == 0 and token.spool_files == 0:
        return
    IngestToken.objects.filter(pk=token.pk).update(
        spool_files=min(files, 2**31 - 1),
        spool_oldest_at=datetime.fromtimestamp(oldest, tz=UTC) if files else None,
        spool_reported_at=timezone.now(),
    )
