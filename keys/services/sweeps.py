"""Scheduled key work (cron): expiry and its reminders, the end of rotations' grace, leavers' keys."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

import audit
from keys import notifications
from keys.models import KeyKind, VirtualKey
from keys.services.lifecycle import key_withdraw

EXPIRY_REMINDER = timedelta(days=7)


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
                key_withdraw(key=key, actor=None, reason="rotation grace period ended", action="key.rotation_completed")
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
            if key_withdraw(key=key, actor=None, reason="owner deactivated (leaver)", action="key.revoked_leaver"):
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
