"""Audit helpers for tests: see which events a step wrote, write events, and play the attacker
(change rows behind the app's back)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Max

import audit
from audit.models import AuditEvent
from tests.database_roles import superuser_cursor


@contextmanager
def new_events() -> Iterator[list[AuditEvent]]:
    """The events written inside the block, oldest first (the list is filled when the block ends)."""
    start = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    written: list[AuditEvent] = []
    yield written
    written.extend(AuditEvent.objects.filter(seq__gt=start).order_by("seq"))


def actions(events) -> list[str]:
    return [event.action for event in events]


def write_events(count: int, *, action: str = "test.event", **fields) -> list[AuditEvent]:
    with transaction.atomic():
        return [audit.record(action=action, actor_label="tester", data={"n": i}, **fields) for i in range(count)]


@contextmanager
def append_only_bypassed() -> Iterator:
    """A cursor with the append-only triggers switched off for this session, as an attacker who is a PostgreSQL
    superuser could (the app's role cannot); switched back on at the end. On PostgreSQL with separate roles the
    superuser has a connection of its own: the test must be `transaction=True` (tests/database_roles.py)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    with superuser_cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def swap_seq(cursor, first: int, second: int) -> None:
    # Through a temporary negative number: seq is unique and checked row by row.
    cursor.execute("UPDATE audit_auditevent SET seq = -1 WHERE seq = %s", [first])
    cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [first, second])
    cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = -1", [second])
