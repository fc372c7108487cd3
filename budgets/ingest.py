"""The one way spend enters the ledger, for the pull job and the push endpoint alike.

A batch is normalised (budgets.normalize), priced (budgets.pricing), then written in one
transaction: the ledger rows with INSERT ... ON CONFLICT (request_id) DO NOTHING RETURNING, and
the daily rollups of exactly the rows that were new with INSERT ... ON CONFLICT DO UPDATE. A
request seen twice (overlapping pulls, pull and push) is therefore booked and counted once.
Other apps keep their own rollups of the new rows in the same transaction by registering them
(register_rollup; adoption does so in its AppConfig.ready): budgets knows none of them.
Budgets touched by new rows are evaluated once the batch has committed.
"""

from __future__ import annotations

import json
import logging
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from budgets import alerts, pricing
from budgets.models import CostSource, DailyRollup, ErrorType, SpendRecord
from budgets.normalize import NormalizedRow, SpendRowInvalid, normalize
from keys.models import ModelPolicy, VirtualKey

log = logging.getLogger(__name__)

ZERO = Decimal("0")
Source = Literal["pull", "push"]


@dataclass
class IngestResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (index in batch, field, message)
    cost_sources: dict[str, int] = field(default_factory=dict)  # of the inserted rows
    teams: set[int] = field(default_factory=set)
    users: set[int] = field(default_factory=set)
    keys: set[int] = field(default_factory=set)
    alerts_created: int = 0

    @property
    def rejected_count(self) -> int:
        return len(self.rejected)


def _tolerance() -> tuple[Decimal, Decimal]:
    relative = Decimal(str(getattr(settings, "LEDGER_COST_TOLERANCE", "0.01")))
    absolute = Decimal(str(getattr(settings, "LEDGER_COST_TOLERANCE_ABS", "0.000002")))
    return relative, absolute


def _bare(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model


def price(row: NormalizedRow, flat_rate_models: frozenset[str], tolerance=None) -> tuple[Decimal | None, str]:
    """The authoritative cost of one request and where it came from (ARCHITECTURE.md, decision 2)."""
    if flat_rate_models and (
        row.model_group in flat_rate_models or row.model in flat_rate_models or _bare(row.model) in flat_rate_models
    ):
        return ZERO, CostSource.FLAT_RATE
    gateway = row.gateway_spend
    if not (row.prompt_tokens or row.completion_tokens or row.cached_tokens or row.cache_creation_tokens):
        return gateway, CostSource.GATEWAY
    computed = pricing.compute_cost(
        model=row.model or row.model_group,
        model_group=row.model_group,
        provider=row.provider,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cache_read_tokens=row.cached_tokens,
        cache_creation_tokens=row.cache_creation_tokens,
    )
    if computed is None:
        # Not in litellm's map. A gateway figure above 0 comes from the proxy's own (custom)
        # pricing and is kept; $0 for tokens would be a silent zero, so the row is flagged instead.
        return (gateway, CostSource.GATEWAY) if gateway > 0 else (None, CostSource.UNPRICED)
    relative, absolute = tolerance or _tolerance()
    if gateway == 0 and computed > 0:
        return computed, CostSource.COMPUTED
    if abs(gateway - computed) > max(absolute, computed * relative):
        return computed, CostSource.COMPUTED
    return gateway, CostSource.GATEWAY


def _flat_rate_models() -> frozenset[str]:
    return frozenset(ModelPolicy.objects.filter(flat_rate=True).values_list("name", flat=True))


def _keys_by_hash(hashes: Iterable[str]) -> dict[str, tuple[int, int, int]]:
    hashes = [h for h in set(hashes) if h]
    if not hashes:
        return {}
    return {
        token_hash: (key_id, owner_id, team_id)
        for token_hash, key_id, owner_id, team_id in VirtualKey.objects.filter(token_hash__in=hashes).values_list(
            "token_hash", "pk", "owner_id", "team_id"
        )
    }


# --- the write ---------------------------------------------------------------------------------------

_LEDGER_COLUMNS = (
    "request_id",
    "time",
    "key_id",
    "token_hash",
    "key_alias",
    "user_id",
    "team_id",
    "model",
    "model_group",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "status",
    "error_type",
    "latency_ms",
    "ttft_ms",
    "client_tool",
    "user_agent",
    "request_tags",
    "spend_logs_metadata",
    "gateway_spend",
    "cost",
    "cost_source",
    "source",
    "ingested_at",
)
_ROLLUP_DIMS = DailyRollup.DIMENSIONS
_ROLLUP_SUMS = DailyRollup.COUNTERS

_LEDGER = SpendRecord._meta.db_table
_ROLLUP = DailyRollup._meta.db_table
# DailyRollup's dimensions and counters (in _ROLLUP_DIMS + _ROLLUP_SUMS order) of the ledger rows in
# {source}: the ingest's new rows here, the whole ledger when a benchmark fills its rollups in one go.
ROLLUP_SELECT = f"""SELECT (time AT TIME ZONE 'UTC')::date, team_id, user_id, key_id, token_hash,
           COALESCE(NULLIF(model_group, ''), model), client_tool,
           count(*), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cache_creation_tokens),
           COALESCE(sum(cost), 0), sum(gateway_spend),
           count(*) FILTER (WHERE status = 'failure' OR error_type <> ''),
           count(*) FILTER (WHERE error_type = '{ErrorType.RATE_LIMIT}'),
           count(*) FILTER (WHERE error_type = '{ErrorType.BUDGET_EXCEEDED}'),
           count(*) FILTER (WHERE cost_source = '{CostSource.UNPRICED}'),
           count(*) FILTER (WHERE cost_source = '{CostSource.COMPUTED}'),
           count(*) FILTER (WHERE cost_source = '{CostSource.FLAT_RATE}')
    FROM {{source}}
    GROUP BY 1, 2, 3, 4, 5, 6, 7"""  # noqa: S608 - constants of this module


# --- rollups other apps keep of the new rows ---------------------------------------------------------


@dataclass(frozen=True)
class RollupRegistration:
    """Rollups an app keeps of the ledger rows each batch inserted, written in the batch's transaction.

    `ctes`: on PostgreSQL, data-modifying CTEs (`name AS (INSERT ...), ...`) spliced into the ingest's
    statement after its own; they read the `new` CTE, whose RETURNING then includes `columns`. No
    parameter and no percent sign. `roll_up`: the portable path (SQLite), given the SpendRecord objects
    just inserted. Both must add exactly the rows given, so a request is counted once.
    """

    name: str
    ctes: str
    columns: tuple[str, ...]
    roll_up: Callable[[list[SpendRecord]], None]


_ROLLUPS: dict[str, RollupRegistration] = {}


def register_rollup(*, name: str, ctes: str, columns: Iterable[str], roll_up: Callable[[list[SpendRecord]], None]):
    """Have every batch from now on keep the rollups of `name` (registering a name again replaces it)."""
    columns = tuple(columns)
    unknown = set(columns) - set(_LEDGER_COLUMNS)
    if unknown:
        raise ValueError(f"rollup {name!r} reads columns the ledger does not have: {sorted(unknown)}")
    _ROLLUPS[name] = RollupRegistration(name=name, ctes=ctes.strip(), columns=columns, roll_up=roll_up)


def registered_rollups() -> tuple[RollupRegistration, ...]:
    return tuple(_ROLLUPS.values())


# A batch is COPYed into a temporary table (one per connection, emptied at commit), then moved
# into the ledger in one statement that also rolls up exactly the rows that were new.
_STAGE = "budgets_ledger_stage"
_STAGE_CREATE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (LIKE {_LEDGER} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_STAGE_COPY = f"COPY {_STAGE} ({', '.join(_LEDGER_COLUMNS)}) FROM STDIN"
_COLS = ", ".join(_LEDGER_COLUMNS)
# The ledger columns ROLLUP_SELECT and the final SELECT read from `new`.
_RETURNING = (
    "time",
    "team_id",
    "user_id",
    "key_id",
    "token_hash",
    "model",
    "model_group",
    "client_tool",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "cost",
    "gateway_spend",
    "status",
    "error_type",
    "cost_source",
)


def _move_and_roll_up(rollups: tuple[RollupRegistration, ...]) -> str:
    """The statement that moves the stage into the ledger and rolls up exactly the rows that were new,
    ours and the registered apps' alike."""
    returning = list(_RETURNING)
    for rollup in rollups:
        returning += [column for column in rollup.columns if column not in returning]
    registered = "".join(f", {rollup.ctes}" for rollup in rollups)
    return f"""
WITH new AS (
    INSERT INTO {_LEDGER} ({_COLS})
    SELECT {_COLS} FROM {_STAGE} ORDER BY request_id
    ON CONFLICT (request_id) DO NOTHING
    RETURNING {", ".join(returning)}
), rolled AS (
    INSERT INTO {_ROLLUP} ({", ".join(_ROLLUP_DIMS + _ROLLUP_SUMS)})
    {ROLLUP_SELECT.format(source="new")}
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT ({", ".join(_ROLLUP_DIMS)}) DO UPDATE SET
    {", ".join(f"{name} = {_ROLLUP}.{name} + EXCLUDED.{name}" for name in _ROLLUP_SUMS)}
){registered}
SELECT team_id, user_id, key_id, cost_source, count(*) FROM new GROUP BY 1, 2, 3, 4
"""  # noqa: S608 - our constants and the registered apps' constant CTEs


def _json_text(value) -> str | None:
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), default=str)


@dataclass(slots=True)
class _Booked:
    row: NormalizedRow
    key_id: int | None
    user_id: int | None
    team_id: int | None
    cost: Decimal | None
    cost_source: str


# (team_id, user_id, key_id, cost_source, number of new rows)
Touched = list[tuple[int | None, int | None, int | None, str, int]]


def _write_postgresql(booked: list[_Booked], source: str) -> Touched:
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_CREATE)
        with cursor.cursor.copy(_STAGE_COPY) as copy:
            for item in booked:
                row = item.row
                copy.write_row(
                    (
                        row.request_id,
                        row.time,
                        item.key_id,
                        row.token_hash,
                        row.key_alias,
                        item.user_id,
                        item.team_id,
                        row.model,
                        row.model_group,
                        row.provider,
                        row.prompt_tokens,
                        row.completion_tokens,
                        row.cached_tokens,
                        row.cache_creation_tokens,
                        row.status,
                        row.error_type,
                        row.latency_ms,
                        row.ttft_ms,
                        row.client_tool,
                        row.user_agent,
                        _json_text(row.request_tags),
                        _json_text(row.spend_logs_metadata),
                        row.gateway_spend,
                        item.cost,
                        item.cost_source,
                        source,
                        now,
                    )
                )
        cursor.execute(_move_and_roll_up(registered_rollups()))
        return [tuple(r) for r in cursor.fetchall()]


def _rollup_groups(booked: list[_Booked]) -> dict[tuple, list]:
    """The rollup increments of new rows, computed here for SQLite (PostgreSQL does it in SQL above)."""
    groups: dict[tuple, list] = {}
    for item in booked:
        row = item.row
        dims = (
            row.time.date(),
            item.team_id,
            item.user_id,
            item.key_id,
            row.token_hash,
            row.model_group or row.model,
            row.client_tool,
        )
        sums = groups.get(dims)
        if sums is None:
            sums = groups[dims] = [0, 0, 0, 0, 0, ZERO, ZERO, 0, 0, 0, 0, 0, 0]
        sums[0] += 1
        sums[1] += row.prompt_tokens
        sums[2] += row.completion_tokens
        sums[3] += row.cached_tokens
        sums[4] += row.cache_creation_tokens
        if item.cost is not None:
            sums[5] += item.cost
        sums[6] += row.gateway_spend
        if row.status == "failure" or row.error_type:
            sums[7] += 1
        if row.error_type == ErrorType.RATE_LIMIT:
            sums[8] += 1
        elif row.error_type == ErrorType.BUDGET_EXCEEDED:
            sums[9] += 1
        if item.cost_source == CostSource.UNPRICED:
            sums[10] += 1
        elif item.cost_source == CostSource.COMPUTED:
            sums[11] += 1
        elif item.cost_source == CostSource.FLAT_RATE:
            sums[12] += 1
    return groups


def _write_portable(booked: list[_Booked], source: str) -> Touched:
    """The same write through the ORM, for SQLite (the embedded demo, whose writers are serialised)."""
    now = timezone.now()
    ids = [item.row.request_id for item in booked]
    existing: set[str] = set()
    for start in range(0, len(ids), 500):
        existing.update(
            SpendRecord.objects.filter(request_id__in=ids[start : start + 500]).values_list("request_id", flat=True)
        )
    new = [item for item in booked if item.row.request_id not in existing]
    records = SpendRecord.objects.bulk_create(
        [
            SpendRecord(
                request_id=item.row.request_id,
                time=item.row.time,
                key_id=item.key_id,
                token_hash=item.row.token_hash,
                key_alias=item.row.key_alias,
                user_id=item.user_id,
                team_id=item.team_id,
                model=item.row.model,
                model_group=item.row.model_group,
                provider=item.row.provider,
                prompt_tokens=item.row.prompt_tokens,
                completion_tokens=item.row.completion_tokens,
                cached_tokens=item.row.cached_tokens,
                cache_creation_tokens=item.row.cache_creation_tokens,
                status=item.row.status,
                error_type=item.row.error_type,
                latency_ms=item.row.latency_ms,
                ttft_ms=item.row.ttft_ms,
                client_tool=item.row.client_tool,
                user_agent=item.row.user_agent,
                request_tags=item.row.request_tags,
                spend_logs_metadata=item.row.spend_logs_metadata,
                gateway_spend=item.row.gateway_spend,
                cost=item.cost,
                cost_source=item.cost_source,
                source=source,
                ingested_at=now,
            )
            for item in new
        ],
        batch_size=500,
    )
    for dims, sums in _rollup_groups(new).items():
        lookup = dict(zip(_ROLLUP_DIMS, dims, strict=True))
        increments = dict(zip(_ROLLUP_SUMS, sums, strict=True))
        if not DailyRollup.objects.filter(**lookup).update(**{k: F(k) + v for k, v in increments.items()}):
            DailyRollup.objects.create(**lookup, **increments)
    for rollup in registered_rollups():
        rollup.roll_up(records)
    touched: dict[tuple, int] = {}
    for item in new:
        scope = (item.team_id, item.user_id, item.key_id, item.cost_source)
        touched[scope] = touched.get(scope, 0) + 1
    return [(*scope, count) for scope, count in touched.items()]


def _write(booked: list[_Booked], source: str) -> Touched:
    with transaction.atomic(durable=True):
        if connection.vendor == "postgresql":
            return _write_postgresql(booked, source)
        return _write_portable(booked, source)


def _is_retryable(exc: OperationalError) -> bool:
    cause = exc.__cause__
    return type(cause).__name__ in {"DeadlockDetected", "SerializationFailure"}


class BatchInvalid(SpendRowInvalid):
    """A strict batch held an invalid row; nothing of the batch was written."""

    def __init__(self, index: int, error: SpendRowInvalid):
        self.index = index
        super().__init__(error.field, str(error).split(": ", 1)[-1])


def ingest_spend_rows(
    rows: list[dict], source: Source, *, strict: bool = False, evaluate_budgets: bool = True
) -> IngestResult:
    """Book a batch of spend rows (spend-log rows or logging payloads, mixed is fine).

    Invalid rows are left out and listed in `rejected` — or, with `strict`, the first one raises
    BatchInvalid before anything is written (the push endpoint). Returns what was new.
    """
    if source not in ("pull", "push"):
        raise ValueError(f"source must be 'pull' or 'push', not {source!r}")
    result = IngestResult(received=len(rows))
    normalized: dict[str, NormalizedRow] = {}
    for index, raw in enumerate(rows):
        try:
            row = normalize(raw)
        except SpendRowInvalid as exc:
            if strict:
                raise BatchInvalid(index, exc) from exc
            result.rejected.append((index, exc.field, str(exc)))
            continue
        normalized.setdefault(row.request_id, row)
    if not normalized:
        return result

    flat_rate = _flat_rate_models()
    keys = _keys_by_hash(row.token_hash for row in normalized.values())
    tolerance = _tolerance()
    booked = []
    for request_id in sorted(normalized):  # one order for every writer: no deadlocks between batches
        row = normalized[request_id]
        key_id, user_id, team_id = keys.get(row.token_hash, (None, None, None))
        cost, cost_source = price(row, flat_rate, tolerance)
        booked.append(_Booked(row, key_id, user_id, team_id, cost, cost_source))

    for attempt in range(3):
        try:
            touched = _write(booked, source)
            break
        except OperationalError as exc:
            if attempt == 2 or not _is_retryable(exc):
                raise
            log.warning("ledger write collided with another batch (%s); retrying", exc.__cause__)
            _time.sleep(0.05 * (attempt + 1))

    for team_id, user_id, key_id, cost_source, count in touched:
        result.inserted += count
        result.cost_sources[cost_source] = result.cost_sources.get(cost_source, 0) + count
        if team_id:
            result.teams.add(team_id)
        if user_id:
            result.users.add(user_id)
        if key_id:
            result.keys.add(key_id)
    result.duplicates = len(booked) - result.inserted
    if evaluate_budgets and (result.teams or result.keys):
        result.alerts_created = alerts.evaluate_touched(teams=result.teams, users=result.users, keys=result.keys)
    return result
