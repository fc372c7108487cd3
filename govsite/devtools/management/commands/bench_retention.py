# ruff: noqa: S608 - the SQL below is built from this module's constants and budgets.partitions' names only.
"""`python manage.py bench_retention`: retention by dropping a month's partition against deleting it row by row.

    python manage.py bench_retention [--rows 50000000] [--months 25]

In a scratch schema (dropped afterwards; the real ledger is untouched), a ledger partitioned by month as on
PostgreSQL (budgets.partitions' SQL, the ledger's indexes and constraints) holds --rows rows over --months
months. The oldest month is removed as the old retention did (DELETE in batches of 20,000 rows by key), the
next oldest as budgets.retention does now (DETACH PARTITION, DROP TABLE). Prints both times and the ratio.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from budgets.partitions import LEDGER, Month, drop_month_sql
from govsite.devtools.ledger_fill import partitioned_ledger


class Command(BaseCommand):
    help = "Time dropping one month of the partitioned ledger against deleting the same month row by row."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=50_000_000, help="Rows in the ledger (issue: 50 M).")
        parser.add_argument("--months", type=int, default=25)
        parser.add_argument("--batch", type=int, default=20_000, help="Rows per DELETE (the old ledger_prune's).")

    def handle(self, *args, rows: int, months: int, batch: int, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_retention needs PostgreSQL: set DATABASE_URL.")
        if rows < months or months < 3:
            raise CommandError("--months must be at least 3 and --rows at least --months.")
        schema = f"bench_retention_{os.getpid()}"
        current = Month.of(datetime.now(UTC))
        oldest, second = current.shifted(-months + 1), current.shifted(-months + 2)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE SCHEMA {schema}")
                cursor.execute(f"SET search_path TO {schema}, public")
                partitioned_ledger(
                    cursor,
                    schema=schema,
                    months=[oldest.shifted(offset) for offset in range(months)],
                    rows=rows,
                    select="""'r-' || g, %s::timestamptz + (g %% %s) * interval '1 day'
                                      + make_interval(secs => g %% 86000),
                        md5((g %% 500)::text), '', 'openai/gpt-4o', 'gpt-4o', 'openai', 1000, 100, 0, 0,
                        'success', '', 'claude-code', 'claude-cli/2.0.1', '[]', 0.001, 0.001,
                        'gateway', 'pull', now()""",
                    params=[datetime(oldest.start.year, oldest.start.month, 1, tzinfo=UTC), int(months * 30.4) - 1],
                    say=self.stdout.write,
                )
                cursor.execute(f"SELECT count(*) FROM {oldest.name}")
                first_rows = cursor.fetchone()[0]
                cursor.execute(f"SELECT count(*) FROM {second.name}")
                second_rows = cursor.fetchone()[0]

            bound = datetime(oldest.end.year, oldest.end.month, 1, tzinfo=UTC)
            started = time.perf_counter()
            deleted = 0
            while True:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        f"DELETE FROM {LEDGER} WHERE time < %s AND (request_id, time) IN "
                        f"(SELECT request_id, time FROM {LEDGER} WHERE time < %s ORDER BY time LIMIT %s)",
                        [bound, bound, batch],
                    )
                    if not cursor.rowcount:
                        break
                    deleted += cursor.rowcount
            delete_seconds = time.perf_counter() - started
            if deleted != first_rows:
                raise CommandError(f"deleted {deleted} of {first_rows} rows")

            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(drop_month_sql(second))
            drop_seconds = time.perf_counter() - started
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"SET search_path TO public; DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.stdout.write(
            f"delete one month row by row ({first_rows:,} rows, batches of {batch:,}): {delete_seconds:.2f} s"
        )
        self.stdout.write(f"drop one month's partition ({second_rows:,} rows): {drop_seconds:.3f} s")
        self.stdout.write(f"ratio delete/drop: {delete_seconds / max(drop_seconds, 1e-6):,.0f}x")
