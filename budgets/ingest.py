"""The one way spend enters the ledger, for the pull job and the push endpoint alike.

A batch is normalised (budgets.normalize), priced (budgets.pricing), then written in one
transaction: the ledger rows with INSERT ... ON CONFLICT DO NOTHING RETURNING (on PostgreSQL the ledger
is partitioned by month: budgets.partitions says how a request is still booked once), and
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

from django.db import DatabaseError, DataError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from budgets import alerts, disagreements, pricing, quarantine
from budgets.models import CostSource, DailyRollup, ErrorType, SpendRecord
from budgets.normalize import NormalizedRow, SpendRowInvalid, normalize
from budgets.partitions import LEDGER_DEDUP_WINDOW
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


def _bare(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model


# A computed figure further than this from the gateway's is counted as a disagreement (never applied).
DISAGREEMENT_RELATIVE = Decimal("0.01")
DISAGREEMENT_ABSOLUTE = Decimal("0.000000010")


@dataclass(slots=True)
class Priced:
    cost: Decimal | None
    cost_source: str
    computed: Decimal | None = None  # litellm's price for the token counts, when it disagrees with the gateway
    reason: str = ""


def price(row: NormalizedRow, flat_rate_models: frozenset[str]) -> Priced:
    """The cost of one request and where it came from (docs/ARCHITECTURE.md, decision 3).

    A non-zero gateway cost is authoritative: LiteLLM priced with what the ledger cannot see (a
    deployment's own prices, the service tier, cache-write TTLs, reasoning tokens, fees). Only a
    request the gateway logged at $0 with tokens is priced here, with litellm's functions over all the
    row carries. A gateway figure litellm's price for the token counts disagrees with is kept, and the
    disagreement returned for the reconciliation page.
    """
    if flat_rate_models and (
        row.model_group in flat_rate_models or row.model in flat_rate_models or _bare(row.model) in flat_rate_models
    ):
        return Priced(ZERO, CostSource.FLAT_RATE)
    if row.cache_hit:
        return Priced(ZERO, CostSource.CACHE_HIT)
    gateway = row.gateway_spend
    if not (row.prompt_tokens or row.completion_tokens or row.cached_tokens or row.cache_creation_tokens):
        return Priced(gateway, CostSource.GATEWAY)
    if gateway > 0:
        check = pricing.compute_cost(
            model=row.model or row.model_group,
            provider=row.provider,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cache_read_tokens=row.cached_tokens,
            cache_creation_tokens=row.cache_creation_tokens,
        )
        if check is None or abs(gateway - check) <= max(DISAGREEMENT_ABSOLUTE, check * DISAGREEMENT_RELATIVE):
            return Priced(gateway, CostSource.GATEWAY)
        reason = pricing.disagreement_reason(
            usage=row.usage,
            service_tier=row.service_tier,
            model_info=row.model_info,
            map_entry_prices=pricing.map_prices(row.model or row.model_group, row.provider),
        )
        return Priced(gateway, CostSource.GATEWAY, computed=check, reason=reason)
    computed = pricing.request_cost(
        model=row.model or row.model_group,
        model_group=row.model_group,
        provider=row.provider,
        call_type=row.call_type,
        usage=row.usage,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cache_read_tokens=row.cached_tokens,
        cache_creation_tokens=row.cache_creation_tokens,
        service_tier=row.service_tier,
        model_info=row.model_info,
        when=row.time,
    )
    if computed is None:
        # The underlying model is not in litellm's map and the gateway logged nothing: $0 for tokens
        # would be a silent zero, so the row is flagged instead.
        return Priced(None, CostSource.UNPRICED)
    return Priced(computed, CostSource.COMPUTED)


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
LEDGER_MOVE_LOCK = 0x6C656467  # "ledg": the advisory lock the move step holds
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
    window = f"interval '{int(LEDGER_DEDUP_WINDOW.total_seconds())} seconds'"
    return f"""
WITH new AS (
    INSERT INTO {_LEDGER} ({_COLS})
    SELECT {_COLS} FROM {_STAGE} AS stage
    WHERE NOT EXISTS (
        SELECT 1 FROM {_LEDGER} AS booked WHERE booked.request_id = stage.request_id
        AND booked.time >= stage.time - {window} AND booked.time <= stage.time + {window}
    )
    ORDER BY request_id
    ON CONFLICT (request_id, time) DO NOTHING
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
    priced: Priced | None = None


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
        # The ledger is partitioned by month and its unique key is (request_id, time) (budgets.partitions):
        # the move skips a request booked within the window of its time, and this lock (held to commit)
        # keeps two batches from both missing a request the other is booking. Only the move waits on it;
        # normalising, pricing and the COPY run side by side.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LEDGER_MOVE_LOCK])
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


def _write(booked: list[_Booked], source: str, durable: bool = True) -> Touched:
    with transaction.atomic(durable=durable):
        disagreements.record(booked)
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


def _write_with_retries(booked: list[_Booked], source: str, durable: bool) -> Touched:
    for attempt in range(3):
        try:
            return _write(booked, source, durable)
        except OperationalError as exc:
            if attempt == 2 or not _is_retryable(exc) or not durable:
                raise
            log.warning("ledger write collided with another batch (%s); retrying", exc.__cause__)
            _time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _storage_problem(exc: DatabaseError) -> SpendRowInvalid:
    return SpendRowInvalid("row", f"could not be stored: {str(exc).splitlines()[0][:300]}")


def ingest_spend_rows(
    rows: list[dict], source: Source, *, strict: bool = False, evaluate_budgets: bool = True, durable: bool = True
) -> IngestResult:
    """Book a batch of spend rows (spend-log rows or logging payloads, mixed is fine).

    A row that cannot be validated or stored is left out, listed in `rejected` and quarantined
    (budgets.quarantine) so the rest of the batch — and the pull — go on; with `strict`, the first
    one raises BatchInvalid before anything is written (the push endpoint). Returns what was new.
    `durable=False` books inside the caller's transaction (a quarantined row's retry).
    """
    if source not in ("pull", "push"):
        raise ValueError(f"source must be 'pull' or 'push', not {source!r}")
    result = IngestResult(received=len(rows))
    normalized: dict[str, NormalizedRow] = {}
    index_of: dict[str, int] = {}
    for index, raw in enumerate(rows):
        try:
            row = normalize(raw)
        except SpendRowInvalid as exc:
            if strict:
                raise BatchInvalid(index, exc) from exc
            result.rejected.append((index, exc.field, str(exc)))
            continue
        normalized.setdefault(row.request_id, row)
        index_of.setdefault(row.request_id, index)

    flat_rate = _flat_rate_models() if normalized else frozenset()
    keys = _keys_by_hash(row.token_hash for row in normalized.values())
    booked = []
    for request_id in sorted(normalized):  # one order for every writer: no deadlocks between batches
        row = normalized[request_id]
        key_id, user_id, team_id = keys.get(row.token_hash, (None, None, None))
        priced = price(row, flat_rate)
        booked.append(_Booked(row, key_id, user_id, team_id, priced.cost, priced.cost_source, priced))

    touched: Touched = []
    if booked:
        try:
            touched = _write_with_retries(booked, source, durable)
        except DataError as exc:
            if strict or not durable:
                # Nothing of a strict batch is written; a retry (inside its caller's transaction) fails whole.
                first = min(index_of.values())
                raise BatchInvalid(first if len(booked) == 1 else -1, _storage_problem(exc)) from exc
            # One row the database refuses must not cost the batch: find it by writing row by row.
            log.warning("a batch of %d spend rows could not be stored (%s); writing row by row", len(booked), exc)
            for item in booked:
                try:
                    touched += _write_with_retries([item], source, durable)
                except DataError as row_exc:
                    problem = _storage_problem(row_exc)
                    result.rejected.append((index_of[item.row.request_id], problem.field, str(problem)))
    if result.rejected:
        quarantine.hold([(rows[index], field_name, message) for index, field_name, message in result.rejected], source)

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
