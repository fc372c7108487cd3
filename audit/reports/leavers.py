"""Leavers (CC6.3): every deactivation in a period and when each key the person held was removed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.period import Period
from audit.reports.common import CHUNK, FAIL, NA, PASS, USER_TARGET, chunks, hours_between, iso
from govsite.accounts.models import User
from keys.models import KeyKind, VirtualKey


def leaver_sla() -> timedelta:
    """How long a departed person's key may stay live before the leaver check fails."""
    return timedelta(hours=getattr(settings, "LEAVER_REVOCATION_SLA_HOURS", 24))


@dataclass
class Leaver:
    user: User
    deactivated_at: datetime
    deactivated_by: str
    reason: str
    event_seq: int | None
    scim_deleted_at: datetime | None = None


def leavers(period: Period) -> Iterator[Leaver]:
    """Every deactivation in the period: from the audit log, plus anyone whose deactivated_at falls in
    the period without an event (written around the services: flagged by `event_seq` None)."""
    seen: set[int] = set()
    events = AuditEvent.objects.filter(
        action="user.deactivated", target_type=USER_TARGET, created_at__gte=period.start_at
    ).filter(created_at__lt=period.end_before)
    for batch in chunks(
        events.order_by("seq").values_list("seq", "created_at", "actor_label", "target_id", "data").iterator(CHUNK)
    ):
        users = User.objects.in_bulk([int(row[3]) for row in batch if row[3].isdigit()])
        for seq, at, actor, target_id, data in batch:
            user = users.get(int(target_id)) if target_id.isdigit() else None
            if user is None:
                continue
            seen.add(user.pk)
            yield Leaver(user, at, actor, (data or {}).get("reason", ""), seq)
    quiet = User.objects.filter(deactivated_at__gte=period.start_at, deactivated_at__lt=period.end_before).exclude(
        pk__in=seen
    )
    for user in quiet.order_by("deactivated_at").iterator(CHUNK):
        yield Leaver(user, user.deactivated_at, "", "", None)


def _scim_deletions(batch: list[Leaver]) -> None:
    """When the identity provider deleted each leaver's SCIM resource (`user.scim_deleted`): at the
    deactivation, or later (Entra ID disables first and deletes weeks after), before any reactivation."""
    events = AuditEvent.objects.filter(
        action__in=("user.scim_deleted", "user.reactivated"),
        target_type=USER_TARGET,
        target_id__in=[str(leaver.user.pk) for leaver in batch],
        created_at__gte=min(leaver.deactivated_at for leaver in batch),
    ).order_by("seq")
    by_user: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for action, target_id, at in events.values_list("action", "target_id", "created_at"):
        by_user[target_id].append((action, at))
    for leaver in batch:
        for action, at in by_user[str(leaver.user.pk)]:
            if at < leaver.deactivated_at:
                continue
            if action == "user.reactivated":
                break
            leaver.scim_deleted_at = at
            break


LEAVER_COLUMNS = (
    "person", "person_active_now", "deactivated_at", "deactivated_by", "reason", "audit_event_seq",
    "scim_deleted_at", "key_id",
    "key_alias", "kind", "team", "key_status_now", "revoke_requested_at", "revoked_at", "ended_at", "delay_hours",
    "check_key_removed_in_time", "check_detail",
)  # fmt: skip


def _leaver_key_row(leaver: Leaver, key: VirtualKey | None, now: datetime) -> dict:
    base = {
        "person": leaver.user.email,
        "person_active_now": leaver.user.is_active,
        "deactivated_at": iso(leaver.deactivated_at),
        "deactivated_by": leaver.deactivated_by or None,
        "reason": leaver.reason or None,
        "audit_event_seq": leaver.event_seq,
        "scim_deleted_at": iso(leaver.scim_deleted_at),
    }
    if key is None:
        return base | dict.fromkeys(LEAVER_COLUMNS[7:], None) | {"check_key_removed_in_time": NA}
    ended = key.revoked_at or (key.expires_at if key.status == VirtualKey.Status.EXPIRED else None)
    sla = leaver_sla()
    overdue = now - leaver.deactivated_at > sla
    if key.kind == KeyKind.SERVICE and key.is_live:
        # Service keys outlive their owner by design (approvers reassign them); still owned by a leaver is orphaned.
        check = FAIL if overdue else NA
        detail = "service key live and still owned by the leaver: reassign or revoke it"
    elif ended is None:
        check = FAIL if overdue else NA
        detail = f"not removed yet ({hours_between(leaver.deactivated_at, now)} h after deactivation)"
    elif ended - leaver.deactivated_at > sla:
        check, detail = FAIL, f"removed {hours_between(leaver.deactivated_at, ended)} h after deactivation"
    else:
        check, detail = PASS, ""
    if leaver.event_seq is None:
        detail = "; ".join(filter(None, [detail, "deactivation has no audit event"]))
    return base | {
        "key_id": key.pk,
        "key_alias": key.alias,
        "kind": key.kind,
        "team": key.team.name,
        "key_status_now": key.status,
        "revoke_requested_at": iso(key.revoke_requested_at),
        "revoked_at": iso(key.revoked_at),
        "ended_at": iso(ended),
        "delay_hours": hours_between(leaver.deactivated_at, ended),
        "check_key_removed_in_time": check,
        "check_detail": detail,
    }


def leaver_rows(period: Period, team_ids: list[int] | None = None, *, now: datetime | None = None) -> Iterator[dict]:
    """Each leaver with each key they held when they left: when it was revoked and the delay."""
    now = now or timezone.now()
    for batch in chunks(leavers(period), 500):
        _scim_deletions(batch)
        keys: dict[int, list[VirtualKey]] = defaultdict(list)
        qs = VirtualKey.objects.filter(owner_id__in=[leaver.user.pk for leaver in batch]).select_related("team")
        if team_ids:
            qs = qs.filter(team_id__in=team_ids)
        for key in qs.order_by("pk"):
            keys[key.owner_id].append(key)
        for leaver in batch:
            held = [
                key
                for key in keys[leaver.user.pk]
                if key.created_at <= leaver.deactivated_at
                and not (key.revoke_requested_at and key.revoke_requested_at < leaver.deactivated_at)
                and not (key.status == VirtualKey.Status.EXPIRED and key.expires_at <= leaver.deactivated_at)
            ]
            if not held and not team_ids:
                yield _leaver_key_row(leaver, None, now)
            for key in held:
                yield _leaver_key_row(leaver, key, now)
