"""Reads on a streaming replica (DATABASE_REPLICA_URL), only where they are safe.

The router (settings.DATABASE_ROUTERS) sends a read to the replica only inside `replica_reads()` — the
dashboards, adoption, reports and evidence exports enter it — and only when the replica is within
REPLICA_MAX_LAG_SECONDS of the primary; otherwise, and for every write, every decision, every page that
shows what its user just changed and every permission check (the people, teams and roles tables are
always read on the primary, as are sessions), the primary answers. The lag is measured at most every
REPLICA_LAG_CHECK_SECONDS per process and shown on the pages that used the replica.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, connections

log = logging.getLogger(__name__)

REPLICA = "replica"
# Tables of these apps are read on the primary even inside replica_reads(): who may see what.
PRIMARY_APPS = frozenset({"accounts", "auth", "sessions", "contenttypes", "account", "socialaccount", "api"})


@dataclass(frozen=True)
class ReplicaRead:
    """What a page inside replica_reads() read from: the replica (lag_seconds behind) or the primary (why)."""

    on_replica: bool
    lag_seconds: float | None
    reason: str = ""
    configured: bool = True  # False: no replica at all, nothing to tell the reader


_scope: contextvars.ContextVar[ReplicaRead | None] = contextvars.ContextVar("govsite_replica_read", default=None)
_last_check: dict[str, tuple[float, float | None]] = {}


def configured() -> bool:
    return REPLICA in settings.DATABASES


def replica_lag() -> float | None:
    """Seconds the replica's replay is behind (0 when it has replayed all it received); None when it
    cannot be asked. Cached for REPLICA_LAG_CHECK_SECONDS in this process."""
    now = time.monotonic()
    cached = _last_check.get(REPLICA)
    if cached and now - cached[0] < settings.REPLICA_LAG_CHECK_SECONDS:
        return cached[1]
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NULL THEN NULL"
                " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END, pg_is_in_recovery()"
            )
            lag, in_recovery = cursor.fetchone()
        # Not in recovery: a promoted or misconfigured server, not a replica of ours.
        lag = float(lag) if lag is not None and in_recovery else None
    except DatabaseError as exc:
        log.warning("replica unavailable, reading from the primary: %s", exc)
        connections[REPLICA].close()
        lag = None
    _last_check[REPLICA] = (now, lag)
    return lag


def forget_lag() -> None:
    _last_check.clear()


def _caught_up() -> bool:
    """Wait (up to REPLICA_MAX_LAG_SECONDS) until the replica has replayed everything the primary has
    written so far: a reader that must see what was just committed (an evidence bundle and the checkpoint
    signed for it) reads the replica only then."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        target = cursor.fetchone()[0]
    deadline = time.monotonic() + settings.REPLICA_MAX_LAG_SECONDS
    while True:
        try:
            with connections[REPLICA].cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
                if cursor.fetchone()[0]:
                    return True
        except DatabaseError as exc:
            log.warning("replica unavailable, reading from the primary: %s", exc)
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _decide(*, caught_up: bool = False) -> ReplicaRead:
    if not configured():
        return ReplicaRead(False, None, "no replica configured", configured=False)
    if caught_up and not _caught_up():
        return ReplicaRead(False, None, "the replica has not replayed the latest writes")
    lag = replica_lag()
    if lag is None:
        return ReplicaRead(False, None, "the replica does not answer")
    if lag > settings.REPLICA_MAX_LAG_SECONDS:
        return ReplicaRead(
            False, lag, f"the replica is {lag:.1f} s behind (more than {settings.REPLICA_MAX_LAG_SECONDS} s)"
        )
    return ReplicaRead(True, lag)


@contextmanager
def replica_reads(*, caught_up: bool = False) -> Iterator[ReplicaRead]:
    """Reads inside go to the replica when it is close enough (and, with caught_up, once it has replayed
    every write the primary made before this call); the decision is made once, on entry."""
    decision = _decide(caught_up=caught_up)
    token = _scope.set(decision)
    try:
        yield decision
    finally:
        _scope.reset(token)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Inside a replica page, reads that must be current (the navigation's counts of what awaits the user)."""
    token = _scope.set(None)
    try:
        yield
    finally:
        _scope.reset(token)


def on_replica(view):
    """A page whose reads may come from the replica (dashboards, adoption, reports). Put it under the
    permission decorator, so the check runs first, on the primary. The page is told where it read."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with replica_reads() as decision:
            request.replica_read = decision
            return view(request, *args, **kwargs)

    return wrapped


def current() -> ReplicaRead | None:
    return _scope.get()


class ReplicaRouter:
    """settings.DATABASE_ROUTERS: the replica for reads inside replica_reads() when it is close enough."""

    def db_for_read(self, model, **hints):
        decision = _scope.get()
        if decision is None or not decision.on_replica or model._meta.app_label in PRIMARY_APPS:
            return "default"
        return REPLICA

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
