"""Spend per team and key over a period (CC7.2), from the daily rollups."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from django.db.models import Sum

from audit.period import Period
from audit.reports.common import CHUNK, chunks, money, team_names
from budgets.models import DailyRollup
from keys.models import VirtualKey

SPEND_COLUMNS = ("team", "key_id", "key_alias", "token_hash", "requests", "cost", "gateway_spend", "unpriced", "source")


def spend_queryset(period: Period, team_ids: list[int] | None = None):
    qs = DailyRollup.objects.filter(day__gte=period.start, day__lte=period.end)
    if team_ids:
        qs = qs.filter(team_id__in=team_ids)
    return (
        qs.values("team_id", "key_id", "token_hash")
        .annotate(
            requests=Sum("requests"),
            cost=Sum("cost"),
            gateway_spend=Sum("gateway_spend"),
            unpriced=Sum("unpriced_count"),
        )
        .order_by("team_id", "key_id", "token_hash")
    )


def spend_rows(period: Period, team_ids: list[int] | None, source: str) -> Iterator[dict]:
    teams = team_names()
    for batch in chunks(spend_queryset(period, team_ids).iterator(chunk_size=CHUNK)):
        aliases = dict(
            VirtualKey.objects.filter(pk__in=[r["key_id"] for r in batch if r["key_id"]]).values_list("pk", "alias")
        )
        for r in batch:
            yield {
                "team": teams.get(r["team_id"]) if r["team_id"] else None,
                "key_id": r["key_id"],
                "key_alias": aliases.get(r["key_id"]),
                "token_hash": r["token_hash"] or None,
                "requests": r["requests"],
                "cost": money(r["cost"] or Decimal("0")),
                "gateway_spend": money(r["gateway_spend"] or Decimal("0")),
                "unpriced": r["unpriced"],
                "source": source,
            }
