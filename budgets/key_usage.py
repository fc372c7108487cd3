"""Spend where keys are decided: the key lists' usage columns and one key's usage, read from the daily
rollups (the last request from the ledger's (key, time) index, one row per key). The key lists annotate a
queryset, so a list is sortable by any column and a page of it is one query, whatever its length."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (
    Case,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from budgets.models import DailyRollup, SpendRecord
from keys.models import VirtualKey

ZERO = Decimal("0")
MONEY = DecimalField(max_digits=22, decimal_places=9)
RECENT_DAYS = 7


def month_of(today: date) -> tuple[date, date]:
    """The period a key's monthly cap counts (LiteLLM's budget_duration "1mo"), as the budgets read it."""
    return today.replace(day=1), today.replace(day=calendar.monthrange(today.year, today.month)[1])


def _rollup_sum(field: str, output, **days) -> Coalesce:
    rows = (
        DailyRollup.objects.filter(key_id=OuterRef("pk"), **days)
        .order_by()
        .values("key_id")
        .annotate(total=Sum(field))
        .values("total")[:1]
    )
    zero = Value(ZERO, output_field=MONEY) if output is MONEY else Value(0)
    return Coalesce(Subquery(rows, output_field=output), zero, output_field=output)


def keys_with_usage(keys: QuerySet[VirtualKey], *, today: date) -> QuerySet[VirtualKey]:
    """Each key with `spend_period` (this month so far), `budget_used` (that spend over its monthly cap,
    1 = all of it), `requests_recent` (the last 7 days, today included) and `last_request_at`."""
    start, end = month_of(today)
    recent = today - timedelta(days=RECENT_DAYS - 1)
    last = SpendRecord.objects.filter(key_id=OuterRef("pk")).order_by("-time").values("time")[:1]
    return keys.annotate(
        spend_period=_rollup_sum("cost", MONEY, day__gte=start, day__lte=end),
        requests_recent=_rollup_sum("requests", IntegerField(), day__gte=recent, day__lte=today),
        last_request_at=Subquery(last),
    ).annotate(
        budget_used=Case(
            When(max_budget__gt=0, then=ExpressionWrapper(F("spend_period") / F("max_budget"), output_field=MONEY)),
            default=None,
            output_field=MONEY,
        )
    )


# The key lists' sortable columns: ?sort=<name> ascending, ?sort=-<name> descending.
KEY_SORTS = {
    "name": "alias",
    "owner": "owner__email",
    "team": "team__name",
    "spend": "spend_period",
    "used": "budget_used",
    "requests": "requests_recent",
    "last": "last_request_at",
    "expires": "expires_at",
    "created": "created_at",
}


def keys_sorted(keys: QuerySet[VirtualKey], sort: str) -> tuple[QuerySet[VirtualKey], str]:
    """The keys in the order asked for (unknown: newest first); returns the order actually applied."""
    name = sort.removeprefix("-")
    if name not in KEY_SORTS:
        return keys.order_by("-created_at", "-pk"), "-created"
    column = F(KEY_SORTS[name])
    ordering = column.desc(nulls_last=True) if sort.startswith("-") else column.asc(nulls_last=True)
    return keys.order_by(ordering, "-pk"), sort


@dataclass(frozen=True)
class KeyUsage:
    """One key's usage over a window of days: per day, per model, per client tool, and its failures."""

    start: date
    end: date
    days: list[dict]
    models: list[dict]
    tools: list[dict]
    totals: dict


def key_usage(*, key: VirtualKey, today: date, days: int = 30) -> KeyUsage:
    """Three grouped rollup queries for one key (its page), whatever its traffic."""
    start = today - timedelta(days=days - 1)
    rows = DailyRollup.objects.filter(key_id=key.pk, day__gte=start, day__lte=today).order_by()
    sums = {
        "requests": Coalesce(Sum("requests"), 0),
        "cost": Coalesce(Sum("cost"), Value(ZERO, output_field=MONEY)),
        "errors": Coalesce(Sum("errors"), 0),
        "refusals_budget": Coalesce(Sum("refusals_budget"), 0),
        "refusals_rate_limit": Coalesce(Sum("refusals_rate_limit"), 0),
        "unpriced": Coalesce(Sum("unpriced_count"), 0),
    }
    per_day = {row["day"]: row for row in rows.values("day").annotate(**sums)}
    empty = dict.fromkeys(sums, 0) | {"cost": ZERO}
    day_rows = []
    for n in range(days):
        day = start + timedelta(days=n)
        day_rows.append({**empty, **per_day.get(day, {}), "day": day})
    models = list(rows.values("model").annotate(**sums).order_by("-cost", "model"))
    tools = list(rows.values("client_tool").annotate(**sums).order_by("-requests", "client_tool"))
    totals = {name: sum((row[name] for row in day_rows), ZERO if name == "cost" else 0) for name in sums}
    return KeyUsage(start=start, end=today, days=day_rows, models=models, tools=tools, totals=totals)
