"""Reads of the FinOps pages and exports. The FOCUS export reads the ledger itself (it needs each row's cost
source and request tags), in one grouped, server-side-cursor query per period; the chargeback reads the rollups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from budgets.models import DailyRollup, SpendRecord
from budgets.models.finops import ChargebackClose, FocusExport, FocusSchedule
from govsite.accounts import permissions
from keys.models import VirtualKey

ZERO = Decimal("0")
FOCUS_GROUP = ("day", "key_id", "token_hash", "model", "model_group", "provider", "cost_source")


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, tzinfo=UTC), datetime.combine(
        end + timedelta(days=1), time.min, tzinfo=UTC
    )


def ledger_rows_in(start: date, end: date) -> int:
    """How many ledger rows a period holds (the export's progress is measured against it)."""
    first, last = _bounds(start, end)
    return SpendRecord.objects.filter(time__gte=first, time__lt=last).count()


def focus_groups(start: date, end: date, *, chunk_size: int = 5000) -> Iterator[dict]:
    """The ledger of a period per UTC day × key × model × cost source × request tags, oldest day first,
    streamed (a server-side cursor on PostgreSQL): the FOCUS export's one read. Groups differing only in their
    tags come one after the other (the caller merges tags LiteLLM adds itself)."""
    first, last = _bounds(start, end)
    return (
        SpendRecord.objects.filter(time__gte=first, time__lt=last)
        .annotate(day=TruncDate("time", tzinfo=UTC))
        .values(*FOCUS_GROUP, "request_tags")
        .annotate(
            requests=Count("pk"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cache_creation_tokens=Sum("cache_creation_tokens"),
            cost=Sum("cost"),
            gateway_spend=Sum("gateway_spend"),
        )
        .order_by(*FOCUS_GROUP)
        .iterator(chunk_size=chunk_size)
    )


def ledger_cost(start: date, end: date) -> Decimal:
    """The ledger's cost for a period (unpriced rows add nothing)."""
    first, last = _bounds(start, end)
    total = SpendRecord.objects.filter(time__gte=first, time__lt=last).aggregate(
        total=Coalesce(Sum("cost"), Value(ZERO))
    )
    return total["total"]


def focus_keys(key_ids) -> dict[int, VirtualKey]:
    """The keys a FOCUS batch names, with what their allocation tags need, in one query."""
    return {
        key.pk: key
        for key in VirtualKey.objects.filter(pk__in=list(key_ids)).select_related(
            "team", "owner", "request__data_classification"
        )
    }


# --- export pages ------------------------------------------------------------------------------------------


def focus_exports_visible(*, user) -> QuerySet[FocusExport]:
    if not permissions.can_export_focus(user):
        return FocusExport.objects.none()
    return FocusExport.objects.select_related("schedule", "requested_by")


def focus_schedules(*, user) -> QuerySet[FocusSchedule]:
    if not permissions.can_export_focus(user):
        return FocusSchedule.objects.none()
    return FocusSchedule.objects.select_related("created_by")


# --- chargeback --------------------------------------------------------------------------------------------


def chargeback_live(month: date) -> dict[int | None, dict]:
    """Per team (None: keys govsite does not manage) the month's figures from the rollups, as they are now."""
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    rows = (
        DailyRollup.objects.filter(day__gte=start, day__lte=end)
        .values("team_id")
        .annotate(
            cost=Coalesce(Sum("cost"), Value(ZERO)),
            requests=Coalesce(Sum("requests"), 0),
            unpriced=Coalesce(Sum("unpriced_count"), 0),
            flat_rate=Coalesce(Sum("flat_rate_count"), 0),
        )
    )
    return {row["team_id"]: row for row in rows}


def chargeback_close_of(month: date) -> ChargebackClose | None:
    """The close in force for a month (None: the month is open)."""
    return (
        ChargebackClose.objects.filter(month=month.replace(day=1), reopened_at__isnull=True)
        .prefetch_related("lines")
        .first()
    )


def chargeback_history(month: date) -> QuerySet[ChargebackClose]:
    return ChargebackClose.objects.filter(month=month.replace(day=1)).select_related("closed_by", "reopened_by")
