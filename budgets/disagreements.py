"""Where the gateway's cost and litellm's price for the token counts disagree.

The ledger keeps the gateway's figure (budgets.ingest.price); each disagreement is written here, once
per request and in the ledger write's transaction, so the reconciliation page can count them by reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Sum

from budgets.models import CostDisagreement


def record(booked: Iterable) -> int:
    """Write the disagreements of a batch being booked (rows read twice are written once)."""
    rows = [
        CostDisagreement(
            request_id=item.row.request_id,
            time=item.row.time,
            key_id=item.key_id,
            model=item.row.model or item.row.model_group,
            gateway_cost=item.row.gateway_spend,
            computed_cost=item.priced.computed,
            reason=item.priced.reason,
        )
        for item in booked
        if item.priced is not None and item.priced.computed is not None
    ]
    if rows:
        CostDisagreement.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(rows)


def disagreement_summary(*, start: date, end: date) -> list[dict]:
    """Per reason, over the days start..end: how many requests, the gateway's total and litellm's."""
    first = datetime.combine(start, time.min, tzinfo=UTC)
    last = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    labels = dict(CostDisagreement.Reason.choices)
    return [
        {**row, "label": labels.get(row["reason"], row["reason"])}
        for row in CostDisagreement.objects.filter(time__gte=first, time__lt=last)
        .values("reason")
        .annotate(requests=Count("pk"), gateway=Sum("gateway_cost"), computed=Sum("computed_cost"))
        .order_by("-requests", "reason")
    ]
