"""The ledger's monthly partitions (PostgreSQL declarative partitioning; SQLite keeps a plain table).

`budgets_spendrecord` is partitioned by RANGE (time), one partition per calendar month (UTC) named
`budgets_spendrecord_yYYYYmMM`, plus `budgets_spendrecord_default` for a row whose month has no partition
yet. A scheduled job (`budgets.jobs.ensure_ledger_partitions`) creates the current month and
LEDGER_PARTITIONS_AHEAD_MONTHS more ahead; a row in the default partition is shown to admins (the
quarantine page) and moved into its month when that month's partition is made. Retention
(budgets.retention) detaches and drops whole months.

Deduplication: a partitioned table's unique keys must hold the partition key, so the database enforces
(request_id, time), within each partition. A request keeps its startTime, so a row read twice (pull
overlap, push and pull) lands in the same partition and the key catches it; the push's epoch seconds and
the pull's ISO text may differ in the last digits, so the ingest also skips a request_id already booked
within LEDGER_DEDUP_WINDOW of its time (one index probe in one or two partitions), under a lock that
serialises the ingest's move step, so two batches carrying the same request cannot both miss each
other (budgets.ingest). The app's role owns no table (govsite.dbroles): it makes and drops a month through two
functions that run as their owner (migration budgets 0008), which build their statements from a date alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection

LEDGER = "budgets_spendrecord"
DEFAULT = f"{LEDGER}_default"
LEDGER_DEDUP_WINDOW = timedelta(days=1)
_NAME = re.compile(rf"^{LEDGER}_y(\d{{4}})m(\d{{2}})$")


@dataclass(frozen=True)
class Month:
    start: date  # the first of the month

    @property
    def end(self) -> date:
        year, month = divmod(self.start.year * 12 + self.start.month, 12)
        return date(year, month + 1, 1)

    @property
    def name(self) -> str:
        return f"{LEDGER}_y{self.start.year:04d}m{self.start.month:02d}"

    def shifted(self, months: int) -> Month:
        year, month = divmod(self.start.year * 12 + self.start.month - 1 + months, 12)
        return Month(date(year, month + 1, 1))

    @classmethod
    def of(cls, when: date | datetime) -> Month:
        if isinstance(when, datetime):
            when = when.astimezone(UTC).date()
        return cls(when.replace(day=1))


def _literal(day: date) -> str:
    return f"'{day.isoformat()} 00:00:00+00'"


def is_partitioned() -> bool:
    """True on PostgreSQL once the ledger is partitioned (migration budgets 0006)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [LEDGER])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def months() -> list[Month]:
    """The months that have a partition, oldest first."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [LEDGER],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.match(name)
        if match:
            found.append(Month(date(int(match[1]), int(match[2]), 1)))
    return sorted(found, key=lambda month: month.start)


def create_month_sql(month: Month) -> str:
    """One statement (so one transaction on any connection) that makes the month's partition unless it
    is attached already, moving into it any of its rows the default partition caught (the default may
    not keep rows of an attached month). The advisory lock makes a second caller wait, then skip."""
    start, end = _literal(month.start), _literal(month.end)
    return f"""DO $$ BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('{LEDGER}.partitions'));
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = '{LEDGER}'::regclass AND c.relname = '{month.name}') THEN
        CREATE TABLE IF NOT EXISTS {month.name} (LIKE {LEDGER} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
        WITH moved AS (DELETE FROM {DEFAULT} WHERE time >= {start} AND time < {end} RETURNING *)
        INSERT INTO {month.name} SELECT * FROM moved;
        ALTER TABLE {LEDGER} ATTACH PARTITION {month.name} FOR VALUES FROM ({start}) TO ({end});
    END IF;
END $$"""  # noqa: S608 - names and dates made here, no input


def ledger_partitions_ensure(*, now: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Create the partitions of this month and the next `ahead` months (LEDGER_PARTITIONS_AHEAD_MONTHS)
    that do not exist yet; returns the names made. Nothing to do on SQLite. Safe to run twice at once:
    the second waits on the first's lock and finds the partition made (IF NOT EXISTS, then skipped)."""
    if not is_partitioned():
        return []
    ahead = settings.LEDGER_PARTITIONS_AHEAD_MONTHS if ahead is None else ahead
    current = Month.of(now or datetime.now(UTC))
    have = {month.start for month in months()}
    made = []
    for offset in range(ahead + 1):
        month = current.shifted(offset)
        if month.start in have:
            continue
        if month_create(month):
            made.append(month.name)
    return made


def ledger_partition_create(month: Month) -> bool:
    """Make one month's partition (an operator's, for a month the default partition holds rows of);
    False when it exists already."""
    if not is_partitioned():
        return False
    if month.start in {m.start for m in months()}:
        return False
    return month_create(month)


def month_create(month: Month) -> bool:
    """Make the month's partition as the ledger's owner (govsite_ledger_month_create, SECURITY DEFINER);
    False when another process made it first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT govsite_ledger_month_create(%s)", [month.start])
        return cursor.fetchone()[0]


def month_drop(month: Month) -> bool:
    """Detach and drop the month as the ledger's owner (govsite_ledger_month_drop, which refuses the current
    month and later ones); False when it was not attached."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT govsite_ledger_month_drop(%s)", [month.start])
        return cursor.fetchone()[0]


def default_partition_months() -> list[tuple[date, int]]:
    """(month, rows) of the rows the default partition holds: rows whose month had no partition when
    they came. Empty on SQLite and when the default is empty (the usual case)."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('month', time AT TIME ZONE 'UTC')::date, count(*) FROM {DEFAULT} "  # noqa: S608
            "GROUP BY 1 ORDER BY 1"
        )
        return [(month, rows) for month, rows in cursor.fetchall()]


def month_rows(month: Month) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {month.name}")  # noqa: S608 - a name made here
        return cursor.fetchone()[0]


def drop_month_sql(month: Month) -> str:
    """One statement: detach the month and drop it (a whole month goes at once, no row by row delete)."""
    return f"""DO $$ BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('{LEDGER}.partitions'));
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = '{LEDGER}'::regclass AND c.relname = '{month.name}') THEN
        ALTER TABLE {LEDGER} DETACH PARTITION {month.name};
        DROP TABLE {month.name};
    END IF;
END $$"""  # noqa: S608 - names and dates made here, no input
