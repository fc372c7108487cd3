"""The hash chain: writing an event and proving none was altered, removed or reordered.

Each event stores the previous event's hash and its own SHA-256 over that hash and a canonical
serialisation of its fields. Writers take a database lock for the rest of their transaction, so
events are numbered and linked one after the other even when many connections write at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from audit import context
from audit.models import AuditEvent

GENESIS_HASH = "0" * 64
# Any constant works; it only has to be the same for every writer of this table.
_CHAIN_LOCK_ID = 0x676F7673  # "govs"

HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "team_id",
    "data",
    "ip",
    "user_agent",
    "request_id",
)


def canonical_json(value: Any) -> Any:
    """Round-trip through JSON so what is stored is exactly what was hashed (Decimals, dates...)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def _field_values(event: AuditEvent) -> dict[str, Any]:
    values = {name: getattr(event, name) for name in HASHED_FIELDS}
    values["created_at"] = event.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    values["ip"] = event.ip or None
    values["target_id"] = str(event.target_id or "")
    return values


def compute_hash(event: AuditEvent, prev_hash: str) -> str:
    payload = json.dumps(_field_values(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + "\n" + payload).encode()).hexdigest()


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
    # SQLite: the connection opens transactions IMMEDIATE, so writers are already serialised.


def locked_head() -> tuple[int, str]:
    """The chain's last (seq, hash), read under the writers' lock: nothing is appended until the caller's
    transaction ends. For whoever must sign the head and record that it did in one step (audit.checkpoints)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.chain.locked_head must be called inside a transaction")
    _lock_chain()
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    return (last["seq"], last["hash"]) if last else (0, GENESIS_HASH)


def _event(
    *,
    action: str,
    actor=None,
    actor_label: str = "",
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    target_label: str = "",
    team=None,
    data: dict | None = None,
) -> AuditEvent:
    """An event's fields (not yet numbered, linked or saved), with the request's context."""
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_label = target_label or str(target)[:300]
    if team is None and target is not None:
        team = target if target._meta.label_lower == "accounts.team" else getattr(target, "team", None)
    request_ctx = context.current()
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_label = actor_label or actor.email
    else:
        actor = None
        actor_label = actor_label or "system"
    return AuditEvent(
        actor=actor,
        actor_label=actor_label[:254],
        action=action,
        target_type=target_type,
        target_id=str(target_id or ""),
        target_label=target_label[:300],
        team=team,
        data=canonical_json(data or {}),
        ip=request_ctx.ip,
        user_agent=request_ctx.user_agent[:400],
        request_id=request_ctx.request_id,
    )


def _append(events: list[AuditEvent]) -> list[AuditEvent]:
    """Number, link and hash the events after the chain's head, under the writers' lock, and insert them."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must be called inside the transaction that makes the change")
    if not events:
        return []
    _lock_chain()
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    seq, prev_hash = (last["seq"], last["hash"]) if last else (0, GENESIS_HASH)
    for event in events:
        seq += 1
        event.seq = seq
        event.created_at = timezone.now()
        event.prev_hash = prev_hash
        event.hash = prev_hash = compute_hash(event, prev_hash)
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:
        AuditEvent.objects.bulk_create(events, batch_size=500)
    return events


def record(**fields) -> AuditEvent:
    """Append one event (`action`, `actor` or `actor_label`, `target`…, `team`, `data`). Must run inside the
    caller's transaction, so the change and its event commit or roll back together."""
    return _append([_event(**fields)])[0]


def record_many(events: list[dict[str, Any]]) -> list[AuditEvent]:
    """Append several events in this order (each a dict of `record`'s arguments): one lock, one read of the
    head and one insert for a batch (a rollout's keys), the same chain as one `record` call each."""
    return _append([_event(**fields) for fields in events])


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    head: str
    bad_seq: int | None = None
    reason: str = ""

    def line(self) -> str:
        if self.ok:
            return f"OK {self.count} events, head {self.head}"
        return f"FAIL at event {self.bad_seq}: {self.reason}"


def _events_in_order(chunk: int = 5000) -> Iterator[AuditEvent]:
    # Keyset pagination keeps memory flat on a long chain.
    after = 0
    while True:
        batch = list(AuditEvent.objects.filter(seq__gt=after).order_by("seq")[:chunk])
        if not batch:
            return
        yield from batch
        after = batch[-1].seq


def verify() -> VerifyResult:
    """Walk the whole chain; report the first event whose number, link or hash is wrong."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    with transaction.atomic():
        for event in _events_in_order():
            if event.seq != expected_seq:
                return VerifyResult(False, count, prev_hash, expected_seq, f"event {expected_seq} is missing")
            if event.prev_hash != prev_hash:
                return VerifyResult(False, count, prev_hash, event.seq, "link to the previous event is broken")
            if compute_hash(event, event.prev_hash) != event.hash:
                return VerifyResult(False, count, prev_hash, event.seq, "content does not match its hash")
            prev_hash = event.hash
            expected_seq += 1
            count += 1
    return VerifyResult(True, count, prev_hash)


# The append-only triggers of audit/migrations/0002; "D" is disabled, "R" fires only in replica sessions.
APPEND_ONLY_TRIGGERS = ("audit_event_no_update_delete", "audit_event_no_truncate")


def append_only_problems() -> list[str]:
    """What is wrong with PostgreSQL's guard of the audit table: a trigger dropped or disabled (as a
    superuser's `ALTER TABLE … DISABLE TRIGGER` leaves it). Empty on SQLite, which has no such guard."""
    if connection.vendor != "postgresql":
        return []
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table]
        )
        state = {name: str(enabled) for name, enabled in cursor.fetchall()}
    problems = []
    for name in APPEND_ONLY_TRIGGERS:
        if name not in state:
            problems.append(f"the append-only trigger {name} on {table} is missing (dropped)")
        elif state[name] not in ("O", "A"):
            problems.append(f"the append-only trigger {name} on {table} is disabled (ALTER TABLE … DISABLE TRIGGER)")
    return problems


def head_hash() -> str:
    last = AuditEvent.objects.order_by("-seq").values_list("hash", flat=True).first()
    return last or GENESIS_HASH
