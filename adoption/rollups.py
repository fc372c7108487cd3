"""Keep the dashboards' rollups in step with the ledger: PersonWeek, KeyUse, TeamModelDay, TeamToolDay,
TagRollup and LatencyRollup.

Two ways in, one set of definitions:

* at ingest, from exactly the ledger rows the batch inserted, in its transaction, through the
  registration `register()` makes with budgets.ingest (called from AdoptionConfig.ready): on PostgreSQL
  `NEW_ROWS_CTES` is spliced into the ingest's statement after its own rollup and reads the same `new`
  CTE (whose RETURNING then includes `NEW_ROWS_COLUMNS`); on SQLite `roll_up_new_rows` is called with
  the SpendRecord objects that were new;
* `rebuild(start, end)`: recompute whole ISO weeks from the ledger (backfill, repair, the benchmark,
  tests). On PostgreSQL it runs the very same CTEs, with `new` reading the ledger.

Every upsert adds (or ORs, or takes the min/max), so a batch adds exactly its own rows, and batches are
written in a fixed order (ORDER BY the conflict columns), as budgets.ingest does, so they cannot deadlock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest, Least

from adoption.models import (
    LATENCY_BOUNDS_MS,
    OTHER_TOOL_BIT,
    TOOL_BITS,
    KeyUse,
    LatencyRollup,
    PersonWeek,
    TagRollup,
    TeamModelDay,
    TeamToolDay,
)
from budgets import ingest
from budgets.models import CostSource, ErrorType, SpendRecord
from budgets.retention import raw_ledger_cutoff
from keys.models import KeyKind, VirtualKey

TAG_KEY_MAX = 60
TAG_VALUE_MAX = 200
PLAIN_TAG_KEY = "tag"  # a tag without "key:" is counted under this key

_LEDGER = SpendRecord._meta.db_table
_PEOPLE = PersonWeek._meta.db_table
_KEYS = KeyUse._meta.db_table
_MODELS = TeamModelDay._meta.db_table
_TOOLS = TeamToolDay._meta.db_table
_TAGS = TagRollup._meta.db_table
_LATENCY = LatencyRollup._meta.db_table

# TeamModelDay's counters, in the order both paths below compute them.
MODEL_COUNTERS = (
    "requests",
    "tokens",
    "cost",
    "errors",
    "refusals_rate_limit",
    "refusals_budget",
    "unpriced_count",
    "flat_rate_count",
)

# The ledger columns the CTEs read from `new`.
NEW_ROWS_COLUMNS = (
    "time",
    "team_id",
    "user_id",
    "key_id",
    "model",
    "model_group",
    "client_tool",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_source",
    "status",
    "error_type",
    "request_tags",
    "latency_ms",
)


def _tool_bit_sql(column: str) -> str:
    cases = " ".join(f"WHEN '{tool}' THEN {bit}" for tool, bit in TOOL_BITS.items())
    return f"CASE {column} {cases} ELSE {OTHER_TOOL_BIT} END"


def _new_rows_ctes() -> str:
    day = "(n.time AT TIME ZONE 'UTC')::date"
    model = "COALESCE(NULLIF(n.model_group, ''), n.model)"
    failed = "n.status = 'failure' OR n.error_type <> ''"
    bounds = ", ".join(str(bound) for bound in LATENCY_BOUNDS_MS)

    def added(table: str, *columns: str) -> str:
        return ", ".join(f"{column} = {table}.{column} + EXCLUDED.{column}" for column in columns)

    return f"""
adoption_people AS (
    INSERT INTO {_PEOPLE} (week, team_id, user_id, days, tools, requests)
    SELECT date_trunc('week', n.time AT TIME ZONE 'UTC')::date, n.team_id, n.user_id,
           bit_or(1 << (extract(isodow FROM n.time AT TIME ZONE 'UTC')::int - 1)),
           bit_or({_tool_bit_sql("n.client_tool")}), count(*)
    FROM new n JOIN {VirtualKey._meta.db_table} k ON k.id = n.key_id AND k.kind = '{KeyKind.PERSONAL}'
    WHERE n.team_id IS NOT NULL AND n.user_id IS NOT NULL
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (week, team_id, user_id) DO UPDATE SET
        days = {_PEOPLE}.days | EXCLUDED.days, tools = {_PEOPLE}.tools | EXCLUDED.tools, {added(_PEOPLE, "requests")}
), adoption_keys AS (
    INSERT INTO {_KEYS} (key_id, first_day, last_day)
    SELECT n.key_id, min({day}), max({day}) FROM new n WHERE n.key_id IS NOT NULL
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (key_id) DO UPDATE SET
        first_day = LEAST({_KEYS}.first_day, EXCLUDED.first_day),
        last_day = GREATEST({_KEYS}.last_day, EXCLUDED.last_day)
), adoption_models AS (
    INSERT INTO {_MODELS} (day, team_id, model, {", ".join(MODEL_COUNTERS)})
    SELECT {day}, n.team_id, {model}, count(*), sum(n.prompt_tokens + n.completion_tokens), COALESCE(sum(n.cost), 0),
           count(*) FILTER (WHERE {failed}),
           count(*) FILTER (WHERE n.error_type = '{ErrorType.RATE_LIMIT}'),
           count(*) FILTER (WHERE n.error_type = '{ErrorType.BUDGET_EXCEEDED}'),
           count(*) FILTER (WHERE n.cost_source = '{CostSource.UNPRICED}'),
           count(*) FILTER (WHERE n.cost_source = '{CostSource.FLAT_RATE}')
    FROM new n
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (day, team_id, model) DO UPDATE SET {added(_MODELS, *MODEL_COUNTERS)}
), adoption_tools AS (
    INSERT INTO {_TOOLS} (day, team_id, client_tool, requests, tokens, cost, unpriced_count)
    SELECT {day}, n.team_id, n.client_tool, count(*), sum(n.prompt_tokens + n.completion_tokens),
           COALESCE(sum(n.cost), 0), count(*) FILTER (WHERE n.cost_source = '{CostSource.UNPRICED}')
    FROM new n
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (day, team_id, client_tool) DO UPDATE SET
        {added(_TOOLS, "requests", "tokens", "cost", "unpriced_count")}
), adoption_tags AS (
    INSERT INTO {_TAGS} (day, team_id, tag_key, tag_value, requests, cost, unpriced_count)
    SELECT {day}, n.team_id, t.tag_key, t.tag_value,
           count(*), COALESCE(sum(n.cost), 0), count(*) FILTER (WHERE n.cost_source = '{CostSource.UNPRICED}')
    FROM new n
    CROSS JOIN LATERAL (
        SELECT DISTINCT
            CASE WHEN strpos(tag, ':') > 1 THEN left(lower(btrim(split_part(tag, ':', 1))), {TAG_KEY_MAX})
                 ELSE '{PLAIN_TAG_KEY}' END AS tag_key,
            left(btrim(CASE WHEN strpos(tag, ':') > 1 THEN substr(tag, strpos(tag, ':') + 1) ELSE tag END),
                 {TAG_VALUE_MAX}) AS tag_value
        FROM jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(n.request_tags) = 'array' THEN n.request_tags ELSE '[]'::jsonb END
        ) AS tag
        WHERE lower(left(tag, 11)) <> 'user-agent:'
    ) t
    WHERE t.tag_value <> '' AND t.tag_key <> ''
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, team_id, tag_key, tag_value) DO UPDATE SET {added(_TAGS, "requests", "cost", "unpriced_count")}
), adoption_latency AS (
    INSERT INTO {_LATENCY} (day, model, bucket, requests)
    SELECT {day}, {model}, width_bucket(n.latency_ms, ARRAY[{bounds}]), count(*)
    FROM new n
    WHERE n.latency_ms IS NOT NULL AND n.status <> 'failure' AND n.error_type = ''
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (day, model, bucket) DO UPDATE SET {added(_LATENCY, "requests")}
)"""  # noqa: S608 - every name above is a constant


# Spliced into budgets.ingest's statement (PostgreSQL) as `..., rolled AS (...), {NEW_ROWS_CTES} SELECT ...`;
# it holds no parameter and no percent sign, so it runs with or without parameters.
NEW_ROWS_CTES = _new_rows_ctes()


def register() -> None:
    """Keep these rollups at every ingest (AdoptionConfig.ready): budgets, below us, knows nothing of them."""
    ingest.register_rollup(name="adoption", ctes=NEW_ROWS_CTES, columns=NEW_ROWS_COLUMNS, roll_up=roll_up_new_rows)


# --- the same definitions in Python (SQLite, the demo) -------------------------------------------------------


def parse_tags(tags) -> set[tuple[str, str]]:
    """The (key, value) pairs a request is counted under; LiteLLM's own User-Agent tags are left out."""
    if not isinstance(tags, list):
        return set()
    pairs = set()
    for raw in tags:
        tag = raw if isinstance(raw, str) else str(raw)
        if tag[:11].lower() == "user-agent:":
            continue
        if tag.find(":") > 0:
            key, value = tag.split(":", 1)
            key = key.strip().lower()[:TAG_KEY_MAX]
        else:
            key, value = PLAIN_TAG_KEY, tag
        value = value.strip()[:TAG_VALUE_MAX]
        if key and value:
            pairs.add((key, value))
    return pairs


def latency_bucket(latency_ms: int) -> int:
    return bisect.bisect_right(LATENCY_BOUNDS_MS, latency_ms)


def _add(sums: list, *values) -> None:
    for index, value in enumerate(values):
        sums[index] += value


def _upsert(model, lookup: dict, values: dict, merge: dict) -> None:
    """Add `values` to the row of `lookup` (merge: field → how to combine), or create it."""
    if not model.objects.filter(**lookup).update(**{name: merge[name](name, value) for name, value in values.items()}):
        model.objects.create(**lookup, **values)


def _plus(name, value):
    return F(name) + value


def _or(name, value):
    return F(name).bitor(value)


def roll_up_new_rows(rows: Iterable) -> None:
    """The portable path (SQLite, the demo, whose writers are serialised): add rows just booked.

    Each row has the ledger's attributes (NEW_ROWS_COLUMNS): the ingest's SpendRecord objects just
    inserted, or the ledger's rows.
    """
    rows = list(rows)
    key_ids = {row.key_id for row in rows if row.key_id}
    personal = set(VirtualKey.objects.filter(pk__in=key_ids, kind=KeyKind.PERSONAL).values_list("pk", flat=True))
    people: dict[tuple, list] = {}
    keys: dict[int, list[date]] = {}
    models: dict[tuple, list] = {}
    tools: dict[tuple, list] = {}
    tags: dict[tuple, list] = {}
    latency: dict[tuple, int] = {}
    for row in rows:
        moment = row.time.astimezone(UTC)
        day = moment.date()
        cost = row.cost if row.cost is not None else Decimal("0")
        unpriced = int(row.cost_source == CostSource.UNPRICED)
        tokens = row.prompt_tokens + row.completion_tokens
        if row.key_id in personal and row.team_id and row.user_id:
            week = day - timedelta(days=day.weekday())
            sums = people.setdefault((week, row.team_id, row.user_id), [0, 0, 0])
            sums[0] |= 1 << day.weekday()
            sums[1] |= TOOL_BITS.get(row.client_tool, OTHER_TOOL_BIT)
            sums[2] += 1
        if row.key_id:
            seen = keys.setdefault(row.key_id, [day, day])
            seen[0], seen[1] = min(seen[0], day), max(seen[1], day)
        failed = row.status == "failure" or bool(row.error_type)
        _add(
            models.setdefault((day, row.team_id, row.model_group or row.model), [0, 0, Decimal("0"), 0, 0, 0, 0, 0]),
            1,
            tokens,
            cost,
            int(failed),
            int(row.error_type == ErrorType.RATE_LIMIT),
            int(row.error_type == ErrorType.BUDGET_EXCEEDED),
            unpriced,
            int(row.cost_source == CostSource.FLAT_RATE),
        )
        _add(tools.setdefault((day, row.team_id, row.client_tool), [0, 0, Decimal("0"), 0]), 1, tokens, cost, unpriced)
        for key, value in parse_tags(row.request_tags):
            _add(tags.setdefault((day, row.team_id, key, value), [0, Decimal("0"), 0]), 1, cost, unpriced)
        if row.latency_ms is not None and not failed:
            dims = (day, row.model_group or row.model, latency_bucket(row.latency_ms))
            latency[dims] = latency.get(dims, 0) + 1

    for (week, team_id, user_id), (days, bits, requests) in people.items():
        _upsert(
            PersonWeek,
            {"week": week, "team_id": team_id, "user_id": user_id},
            {"days": days, "tools": bits, "requests": requests},
            {"days": _or, "tools": _or, "requests": _plus},
        )
    for key_id, (first, last) in keys.items():
        if not KeyUse.objects.filter(key_id=key_id).update(
            first_day=Least("first_day", first), last_day=Greatest("last_day", last)
        ):
            KeyUse.objects.create(key_id=key_id, first_day=first, last_day=last)
    for (day, team_id, model), sums in models.items():
        values = dict(zip(MODEL_COUNTERS, sums, strict=True))
        _upsert(TeamModelDay, {"day": day, "team_id": team_id, "model": model}, values, dict.fromkeys(values, _plus))
    for (day, team_id, tool), sums in tools.items():
        values = dict(zip(("requests", "tokens", "cost", "unpriced_count"), sums, strict=True))
        lookup = {"day": day, "team_id": team_id, "client_tool": tool}
        _upsert(TeamToolDay, lookup, values, dict.fromkeys(values, _plus))
    for (day, team_id, key, value), sums in tags.items():
        values = dict(zip(("requests", "cost", "unpriced_count"), sums, strict=True))
        lookup = {"day": day, "team_id": team_id, "tag_key": key, "tag_value": value}
        _upsert(TagRollup, lookup, values, dict.fromkeys(values, _plus))
    for (day, model, bucket), requests in latency.items():
        lookup = {"day": day, "model": model, "bucket": bucket}
        _upsert(LatencyRollup, lookup, {"requests": requests}, {"requests": _plus})


# --- rebuild from the ledger -------------------------------------------------------------------------------


def whole_weeks(start: date, end: date) -> tuple[date, date]:
    """start..end widened to whole ISO weeks (Monday to Sunday): PersonWeek rows are per week."""
    return start - timedelta(days=start.weekday()), end + timedelta(days=6 - end.weekday())


def rebuildable_from() -> date:
    """The first Monday whose week still has all its raw ledger rows: before it the retention prune
    (budgets.retention.ledger_prune, whole months) removed some or all of them, and only the rollups
    know those weeks."""
    cutoff = raw_ledger_cutoff().date()
    return cutoff + timedelta(days=(7 - cutoff.weekday()) % 7)


@transaction.atomic
def rebuild(start: date, end: date) -> tuple[date, date]:
    """Recompute the rollups of the ISO weeks holding start..end (UTC) from the ledger; returns the days
    rebuilt (never weeks past the raw ledger's retention, whose rows are gone: see rebuildable_from).
    The ledger is locked against inserts meanwhile (PostgreSQL), so an ingest running at the same time
    waits, then adds its rows on top: nothing is counted twice or lost."""
    start, end = whole_weeks(start, end)
    start = max(start, rebuildable_from())
    if end < start:
        return start, end  # every week asked for is past the retention: its rollups stay as they are
    since = datetime.combine(start, time.min, tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {_LEDGER} IN SHARE MODE")
    PersonWeek.objects.filter(week__gte=start, week__lte=end).delete()
    for model in (TeamModelDay, TeamToolDay, TagRollup, LatencyRollup):
        model.objects.filter(day__gte=start, day__lte=end).delete()
    # KeyUse keeps first and last days: merging the rebuilt days in with min/max is exact (the ledger
    # only grows), so it is not cleared.
    if connection.vendor == "postgresql":
        columns = ", ".join(NEW_ROWS_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH new AS (SELECT {columns} FROM {_LEDGER} WHERE time >= %s AND time < %s), "  # noqa: S608
                f"{NEW_ROWS_CTES} SELECT 1",
                [since, until],
            )
        return start, end
    rows = SpendRecord.objects.filter(time__gte=since, time__lt=until).only(*NEW_ROWS_COLUMNS)
    batch: list = []
    for row in rows.iterator(chunk_size=2000):
        batch.append(row)
        if len(batch) == 2000:
            roll_up_new_rows(batch)
            batch = []
    roll_up_new_rows(batch)
    return start, end
