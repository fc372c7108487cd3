"""The ledger in FOCUS 1.2 (the FinOps Open Cost and Usage Specification): one row per UTC day × key × model ×
cost source × request tags, written as CSV or Parquet a batch at a time, so a month of millions of ledger rows
never sits in memory.

What each FOCUS column holds:
- BilledCost, EffectiveCost, ContractedCost: the ledger's authoritative cost (gateway, computed, $0 for flat-rate
  and cache-hit rows). ListCost: litellm's price-map price for the tokens where the map has the model, else the
  cost itself. An unpriced row's costs are empty (null), never $0, and its tags say why.
- ChargePeriod: the UTC day; BillingPeriod: its calendar month. ConsumedQuantity and PricingQuantity: tokens
  (prompt + completion), their units "Tokens". SkuId: the underlying model; SkuPriceId: model and how it was priced.
- ProviderName, PublisherName, InvoiceIssuerName: the provider LiteLLM routed to; ServiceName: the model group.
- SubAccount: the team; Resource: the key. Tags: govsite's allocation (team, cost centre, owner, key, data
  classification, cost source, and the unpriced reason) under the "govsite/" prefix, and the request's own tags.
- The region is not recorded by the ledger, so RegionId and RegionName are not in the file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from budgets import pricing
from budgets.finops import selectors
from budgets.models import CostSource

BATCH = 5000
TAG_PREFIX = "govsite/"
UNPRICED_REASON = "model-not-in-price-map"

COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ResourceId",
    "ResourceName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_Requests",
    "x_PromptTokens",
    "x_CompletionTokens",
    "x_CachedTokens",
    "x_CacheCreationTokens",
    "x_CostSource",
)
COST_COLUMNS = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost")
QUANTITY_COLUMNS = ("ConsumedQuantity", "PricingQuantity")
INTEGER_COLUMNS = ("x_Requests", "x_PromptTokens", "x_CompletionTokens", "x_CachedTokens", "x_CacheCreationTokens")
BILLING_ACCOUNT = ("govsite", "govsite LLM gateway")


@dataclass
class Totals:
    """What a file holds, for the export's row and the checks against the ledger."""

    rows: int = 0
    ledger_rows: int = 0
    effective_cost: Decimal = Decimal("0")
    unpriced_rows: int = 0
    left_out: int = 0  # unpriced rows a strict file does not hold
    sources: set[str] = field(default_factory=set)


NANO = Decimal("0.000000001")
QUANTITY = Decimal("0.0")  # written "30.0": a FOCUS quantity is a decimal, and CSV readers type "30" as an integer


def _money(value: Decimal) -> Decimal:
    return value.quantize(NANO)


def _stamp(day: date) -> str:
    return datetime.combine(day, time.min, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _request_tags(tags) -> tuple[tuple[str, str], ...]:
    """The request's own tags as FOCUS tag pairs ("project:apollo" → project = apollo, a bare tag → tag = "true");
    LiteLLM's User-Agent tags are left out (the client tool is not an allocation)."""
    found: dict[str, str] = {}
    for tag in tags if isinstance(tags, list) else []:
        text = str(tag)
        if text[:11].lower() == "user-agent:":
            continue
        name, _, value = text.partition(":")
        name = name.strip().lower()
        if name and not name.startswith(TAG_PREFIX):
            found[name] = value.strip() if value else "true"
    return tuple(sorted(found.items()))


_SUMMED = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens")


def _merged(groups: Iterable[dict]) -> Iterator[dict]:
    """Ledger groups with the same day, key, model and cost source and the same request tags once LiteLLM's own
    are left out, summed into one (they arrive one after the other)."""
    prefix = None
    bucket: dict[tuple, dict] = {}
    for group in groups:
        here = tuple(group[name] for name in selectors.FOCUS_GROUP)
        if here != prefix:
            yield from bucket.values()
            prefix, bucket = here, {}
        tags = _request_tags(group.get("request_tags"))
        seen = bucket.get(tags)
        if seen is None:
            bucket[tags] = {**group, "request_tags": tags}
            continue
        for name in _SUMMED:
            seen[name] = (seen[name] or 0) + (group[name] or 0)
        for name in ("cost", "gateway_spend"):
            if group[name] is not None:
                seen[name] = group[name] if seen[name] is None else seen[name] + group[name]
    yield from bucket.values()


def _list_cost(group: dict, cost: Decimal | None) -> Decimal | None:
    if group["cost_source"] == CostSource.CACHE_HIT:
        return Decimal("0")
    listed = pricing.compute_cost(
        model=group["model"] or group["model_group"],
        provider=group["provider"],
        prompt_tokens=group["prompt_tokens"] or 0,
        completion_tokens=group["completion_tokens"] or 0,
        cache_read_tokens=group["cached_tokens"] or 0,
        cache_creation_tokens=group["cache_creation_tokens"] or 0,
    )
    return cost if listed is None else listed


def focus_row(group: dict, key) -> dict:
    """One FOCUS row of a ledger group (`selectors.focus_groups`) and its key (None: unmanaged or unknown)."""
    source = group["cost_source"]
    unpriced = source == CostSource.UNPRICED
    cost = None if unpriced else _money(group["cost"] or Decimal("0"))
    day = group["day"]
    month_start, month_end = _month(day)
    tokens = (group["prompt_tokens"] or 0) + (group["completion_tokens"] or 0)
    model = group["model"] or group["model_group"] or "unknown"
    provider = group["provider"] or "unknown"
    team = key.team if key is not None else None
    tags = dict(group.get("request_tags") or ())
    tags.update(
        {
            f"{TAG_PREFIX}team": team.slug if team else "",
            f"{TAG_PREFIX}cost_centre": team.cost_centre if team else "",
            f"{TAG_PREFIX}owner": key.owner.email if key is not None else "",
            f"{TAG_PREFIX}key": key.alias if key is not None else f"unmanaged:{group['token_hash'][:12]}",
            f"{TAG_PREFIX}data_classification": (
                key.request.data_classification.key if key is not None and key.request_id else ""
            ),
            f"{TAG_PREFIX}cost_source": source,
        }
    )
    if unpriced:
        tags[f"{TAG_PREFIX}unpriced_reason"] = UNPRICED_REASON
    resource_id = f"key:{key.pk}" if key is not None else f"unmanaged:{group['token_hash'][:16] or 'none'}"
    return {
        "BilledCost": cost,
        "BillingAccountId": BILLING_ACCOUNT[0],
        "BillingAccountName": BILLING_ACCOUNT[1],
        "BillingCurrency": "USD",
        "BillingPeriodEnd": _stamp(month_end),
        "BillingPeriodStart": _stamp(month_start),
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeDescription": f"{model} tokens through the LiteLLM gateway ({source.replace('_', ' ')})",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": _stamp(day + timedelta(days=1)),
        "ChargePeriodStart": _stamp(day),
        "ConsumedQuantity": Decimal(tokens).quantize(QUANTITY),
        "ConsumedUnit": "Tokens",
        "ContractedCost": cost,
        "EffectiveCost": cost,
        "InvoiceId": None,  # govsite issues no invoice; the validator wants it null then
        "InvoiceIssuerName": provider,
        "ListCost": None if unpriced else _money(_list_cost(group, cost)),
        "PricingCategory": "Other" if source == CostSource.FLAT_RATE else "Standard",
        "PricingQuantity": Decimal(tokens).quantize(QUANTITY),
        "PricingUnit": "Tokens",
        "ProviderName": provider,
        "PublisherName": provider,
        "ResourceId": resource_id,
        "ResourceName": key.alias if key is not None else resource_id,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": group["model_group"] or model,
        "ServiceSubcategory": "Generative AI",
        "SkuId": f"{provider}/{model}" if not model.startswith(f"{provider}/") else model,
        "SkuPriceId": f"{model}:{source}",
        "SubAccountId": f"team:{team.pk}" if team else "team:none",
        "SubAccountName": team.name if team else "No team (unmanaged key)",
        "Tags": json.dumps(tags, sort_keys=True, separators=(",", ":")),
        "x_Requests": group["requests"],
        "x_PromptTokens": group["prompt_tokens"] or 0,
        "x_CompletionTokens": group["completion_tokens"] or 0,
        "x_CachedTokens": group["cached_tokens"] or 0,
        "x_CacheCreationTokens": group["cache_creation_tokens"] or 0,
        "x_CostSource": source,
    }


def focus_batches(
    start: date,
    end: date,
    *,
    totals: Totals,
    strict: bool = False,
    batch: int = BATCH,
    on_batch: Callable[[Totals], None] | None = None,
) -> Iterator[list[dict]]:
    """The period's FOCUS rows, a batch at a time (their keys read once per batch); `totals` is kept up to date
    and `on_batch` called after each batch (the export's progress).

    FOCUS 1.2 says every cost column MUST NOT be null, and govsite never books an unpriced request at $0. By
    default the unpriced rows are in the file with null costs and their reason in the tags (the file then breaks
    exactly those four rules, for those rows). `strict` leaves them out, counted in `totals.left_out`, for a tool
    that refuses a non-conforming file; the export's page and summary say how many."""
    groups = _merged(selectors.focus_groups(start, end))
    keys: dict = {}
    while True:
        chunk = []
        for group in groups:
            chunk.append(group)
            if len(chunk) >= batch:
                break
        if not chunk:
            return
        wanted = {g["key_id"] for g in chunk if g["key_id"] is not None} - keys.keys()
        if wanted:
            keys.update(selectors.focus_keys(wanted))
        rows = []
        for group in chunk:
            totals.ledger_rows += group["requests"]
            totals.sources.add(group["cost_source"])
            if group["cost_source"] == CostSource.UNPRICED:
                totals.unpriced_rows += 1
                if strict:
                    totals.left_out += 1
                    continue
            row = focus_row(group, keys.get(group["key_id"]))
            rows.append(row)
            totals.rows += 1
            if row["EffectiveCost"] is not None:
                totals.effective_cost += row["EffectiveCost"]
        yield rows
        if on_batch is not None:
            on_batch(totals)


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def write_csv(batches: Iterable[list[dict]], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rows in batches:
        writer.writerows([_csv_value(row[column]) for column in COLUMNS] for row in rows)


def csv_chunks(batches: Iterable[list[dict]]) -> Iterator[str]:
    """The same CSV as text chunks, for a streamed HTTP response."""

    class _Buffer(list):
        def write(self, text: str) -> None:
            self.append(text)

    buffer = _Buffer()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield "".join(buffer)
    for rows in batches:
        buffer.clear()
        writer.writerows([_csv_value(row[column]) for column in COLUMNS] for row in rows)
        yield "".join(buffer)


def parquet_schema():
    fields = []
    for column in COLUMNS:
        if column in COST_COLUMNS:
            kind = pa.decimal128(24, 9)
        elif column in QUANTITY_COLUMNS:
            kind = pa.decimal128(24, 1)
        elif column in INTEGER_COLUMNS:
            kind = pa.int64()
        else:
            kind = pa.string()
        fields.append(pa.field(column, kind, nullable=True))
    return pa.schema(fields)


def write_parquet(batches: Iterable[list[dict]], path) -> None:
    schema = parquet_schema()
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for rows in batches:
            columns = {column: [row[column] for row in rows] for column in COLUMNS}
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
