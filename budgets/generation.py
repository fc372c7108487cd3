"""Figures computed from the rollups, kept in the cache until the rollups change.

Every statement that writes a rollup (DailyRollup and adoption's, whoever runs it: the ingest, a rebuild,
retention, an admin's SQL) bumps one row, `govsite_rollup_generation`, by a trigger in the same transaction
(budgets migration 0010, adoption migration 0003). A page reads that row from the database it reads the rollups
from (the replica inside replica_reads()), so a generation and the rollups behind it always come from the same
committed state, and keys the figures with it: once anything is booked, the next reader computes them again.
The generation comes from a sequence (never given twice, even after a rollback) with a random epoch per
database. PostgreSQL only: on SQLite (the demo) and with FIGURES_CACHE_SECONDS = 0, figures are always computed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connections, router

from budgets.models import DailyRollup

log = logging.getLogger(__name__)

T = TypeVar("T")
TABLE = "govsite_rollup_generation"


# The generation with what tells one life of the database from another: a backup restored brings back an old
# epoch and number (and the sequence where it stood), but not the cluster (its system identifier: another
# cluster), its timeline (archive recovery ends on a new one) or the table's oid (a dump restored makes it
# again). Any of them changing makes every kept figure a miss, never a stale hit.
_GENERATION_SQL = f"""
SELECT concat_ws(':', (SELECT system_identifier FROM pg_control_system()),
                      (SELECT timeline_id FROM pg_control_checkpoint()),
                      '{TABLE}'::regclass::oid, epoch, generation)
FROM {TABLE} WHERE id = 1
"""  # noqa: S608 - a constant


def rollup_generation(using: str | None = None) -> str | None:
    """The rollups' current generation ("cluster:timeline:table:epoch:number") on `using` (default: where a
    rollup read goes now); None where there is none (SQLite, or the row is missing)."""
    using = using or router.db_for_read(DailyRollup)
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_GENERATION_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


def remembered(name: str, parts: tuple, compute: Callable[[], T]) -> T:
    """compute(), or what it returned for the same `name` and `parts` at the rollups' current generation.
    `parts` must hold everything else the result depends on (scope, period, labels). A cache that does not
    answer is logged and skipped: the figures are then computed, never missing."""
    seconds = settings.FIGURES_CACHE_SECONDS
    generation = rollup_generation() if seconds > 0 else None
    if generation is None:
        return compute()
    digest = hashlib.sha256(repr((generation, parts)).encode()).hexdigest()
    key = f"figures:{name}:{digest}"
    try:
        value = cache.get(key)
    except Exception as exc:  # noqa: BLE001 - any cache failure: compute instead
        log.warning("figures cache unavailable, computing: %s", exc)
        return compute()
    if value is not None:
        return value
    value = compute()
    try:
        cache.set(key, value, seconds)
    except Exception as exc:  # noqa: BLE001
        log.warning("figures cache unavailable, not kept: %s", exc)
    return value
