"""Ledger retention: raw ledger rows (SpendRecord) past LEDGER_RETENTION_MONTHS are pruned in whole ISO weeks;
their daily rollups, and every audit event, are kept for ever."""

from __future__ import annotations

import calendar
import logging
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

import audit
from budgets.models import SpendRecord

log = logging.getLogger(__name__)


def ledger_retention_months() -> int:
    months = int(getattr(settings, "LEDGER_RETENTION_MONTHS", 25))
    if months < 1:
        raise ImproperlyConfigured("LEDGER_RETENTION_MONTHS must be 1 or more (months of raw ledger rows to keep).")
    return months


def raw_ledger_cutoff(now: datetime | None = None) -> datetime:
    """Raw ledger rows older than this are pruned: N calendar months back, then back to that week's
    Monday (midnight UTC), so a few more days are kept, never fewer.

    Whole ISO weeks, because the adoption rollups are per week and `rebuild_adoption_rollups` recomputes
    whole weeks from the raw ledger: a week the prune had cut in half would lose the days before the
    cutoff on a rebuild. With the cutoff on a Monday, every week that still has raw rows has all of them.
    """
    today = (now or timezone.now()).astimezone(UTC).date()
    months = ledger_retention_months()
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    day = date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


@transaction.atomic(durable=True)
def _prune_batch(cutoff: datetime, batch: int) -> int:
    ids = list(SpendRecord.objects.filter(time__lt=cutoff).order_by("time").values_list("pk", flat=True)[:batch])
    if not ids:
        return 0
    span = SpendRecord.objects.filter(pk__in=ids).aggregate(oldest=Min("time"), newest=Max("time"))
    deleted, _ = SpendRecord.objects.filter(pk__in=ids).delete()
    audit.record(
        action="ledger.pruned",
        actor_label="system",
        target_type="budgets.spendrecord",
        data={
            "rows": deleted,
            "cutoff": _iso(cutoff),
            "retention_months": ledger_retention_months(),
            "oldest": _iso(span["oldest"]),
            "newest": _iso(span["newest"]),
            "kept": "daily rollups are never pruned",
        },
    )
    return deleted


def ledger_prune(*, now: datetime | None = None, batch: int = 20000) -> int:
    """Delete raw ledger rows (budgets.SpendRecord) past the retention; their daily rollups stay, so
    every total the site shows is unchanged. Audit events are never deleted. One transaction and one
    audit event per batch, so a crash leaves nothing half-done."""
    cutoff = raw_ledger_cutoff(now)
    total = 0
    while deleted := _prune_batch(cutoff, batch):
        total += deleted
    if total:
        log.info("pruned %d raw ledger rows older than %s", total, cutoff.isoformat())
    return total


def _iso(value: datetime) -> str:
    # As the evidence reports write times (audit.reports.iso), so the event reads like the others.
    return value.astimezone(UTC).isoformat(timespec="microseconds")
