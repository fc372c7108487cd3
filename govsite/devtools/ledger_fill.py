# ruff: noqa: S608 - the SQL below is built from budgets.partitions' names and the callers' constants only.
"""A scratch ledger partitioned by month, filled with many rows fast, for bench_ingest and bench_retention.

Both benchmarks need tens of millions of rows in a copy of the ledger before they measure anything. Filled
through the ledger's primary key and indexes, every row is an insert into three B-trees that no longer fit
in memory: 50 million rows took well over 40 minutes on a 2-core machine. Here the rows go in first, made by
one INSERT ... SELECT over generate_series on the server, and the primary key and indexes are built after,
each partition's by one sort. The table is the same at the end (budgets.partitions' months, the default
partition, the ledger's constraints, primary key and indexes); only the way there is quicker. What the
benchmarks then time (an ingest into the filled ledger, a month deleted or dropped) does not change.

The connection's search_path must name the scratch schema first (the partitions' SQL uses unqualified names).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from budgets.partitions import DEFAULT, LEDGER, Month, create_month_sql

# The ledger's columns the fill writes, in this order, from the caller's SELECT list.
COLUMNS = (
    "request_id, time, token_hash, key_alias, model, model_group, provider, prompt_tokens, completion_tokens, "
    "cached_tokens, cache_creation_tokens, status, error_type, client_tool, user_agent, request_tags, "
    "gateway_spend, cost, cost_source, source, ingested_at"
)


def partitioned_ledger(
    cursor,
    *,
    schema: str,
    months: list[Month],
    rows: int = 0,
    select: str = "",
    params: list | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Make `schema`.LEDGER partitioned by month with these months' partitions and a default one, fill it
    with `rows` rows from `select` (a SELECT list over `g`, 1..rows, giving COLUMNS), then build its primary
    key and indexes and analyse it."""
    cursor.execute(
        f"CREATE TABLE {schema}.{LEDGER} (LIKE public.{LEDGER} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        ' PARTITION BY RANGE ("time")'
    )
    cursor.execute(f"CREATE TABLE {schema}.{DEFAULT} PARTITION OF {schema}.{LEDGER} DEFAULT")
    for month in months:
        cursor.execute(create_month_sql(month))
    started = time.perf_counter()
    if rows:
        say(f"filling the partitioned ledger ({len(months)} monthly partitions) with {rows:,} rows ...")
        cursor.execute("SET synchronous_commit TO off")
        cursor.execute(
            f"INSERT INTO {schema}.{LEDGER} ({COLUMNS}) SELECT {select} FROM generate_series(1, %s) AS g",
            [*(params or []), rows],
        )
        say(f"  rows in after {time.perf_counter() - started:.0f} s; building the primary key and indexes ...")
    cursor.execute("SET maintenance_work_mem TO '512MB'")
    cursor.execute(f'ALTER TABLE {schema}.{LEDGER} ADD PRIMARY KEY (request_id, "time")')
    cursor.execute(f'CREATE INDEX ON {schema}.{LEDGER} ("time")')
    cursor.execute(f'CREATE INDEX ON {schema}.{LEDGER} (key_id, "time")')
    cursor.execute("RESET maintenance_work_mem")
    cursor.execute("RESET synchronous_commit")
    if rows:
        cursor.execute(f"ANALYZE {schema}.{LEDGER}")
        say(f"  filled in {time.perf_counter() - started:.0f} s")
