"""Ledger retention: raw ledger rows (SpendRecord) past LEDGER_RETENTION_MONTHS are pruned in whole calendar
months — on PostgreSQL each month's partition is detached and dropped, no row is deleted one by one; on
SQLite the rows are deleted. Their daily rollups, and every audit event, are kept for ever."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

import audit
from budgets import partitions
from budgets.models import SpendRecord

log = logging.getLogger(__name__)


def ledger_retention_months() -> int:
    months = int(getattr(settings, "LEDGER_RETENTION_MONTHS", 25))
    if months < 1:
        raise ImproperlyConfigured("LEDGER_RETENTION_MONTHS must be 1 or more (months of raw ledger rows to keep).")
    return months


def raw_ledger_cutoff(now: datetime | None = None) -> datetime:
    """Raw ledger rows older than this are pruned: the first day (midnight UTC) of the month N calendar
    months back, so at least N months are kept, and whole months go at once (one partition each).

    The adoption rollups are per ISO week and `rebuild_adoption_rollups` recomputes whole weeks from the
    raw ledger, so it rebuilds only from the first Monday on or after this cutoff
    (adoption.rollups.rebuildable_from): a week the prune cut in half keeps the rollups it has.
    """
    today = (now or timezone.now()).astimezone(UTC).date()
    months = ledger_retention_months()
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def _record(*, rows: int, cutoff: datetime, oldest, newest, how: str, month: str = "") -> None:
    audit.record(
        action="ledger.pruned",
        actor_label="system",
        target_type="budgets.spendrecord",
        data={
            "rows": rows,
            "cutoff": _iso(cutoff),
            "retention_months": ledger_retention_months(),
            "oldest": _iso(oldest) if oldest else None,
            "newest": _iso(newest) if newest else None,
            "how": how,
            "month": month,
            "kept": "daily rollups are never pruned",
        },
    )


@transaction.atomic(durable=True)
def _drop_month(month: partitions.Month, cutoff: datetime) -> int:
    rows = partitions.month_rows(month)
    span = SpendRecord.objects.filter(
        time__gte=datetime.combine(month.start, datetime.min.time(), tzinfo=UTC),
        time__lt=datetime.combine(month.end, datetime.min.time(), tzinfo=UTC),
    ).aggregate(oldest=Min("time"), newest=Max("time"))
    partitions.month_drop(month)  # in this transaction, with its audit event
    _record(
        rows=rows,
        cutoff=cutoff,
        oldest=span["oldest"],
        newest=span["newest"],
        how="partition dropped",
        month=month.start.strftime("%Y-%m"),
    )
    return rows


@transaction.atomic(durable=True)
def _prune_batch(cutoff: datetime, batch: int) -> int:
    ids = list(SpendRecord.objects.filter(time__lt=cutoff).order_by("time").values_list("pk", flat=True)[:batch])
    if not ids:
        return 0
    rows = SpendRecord.objects.filter(time__lt=cutoff, pk__in=ids)
    span = rows.aggregate(oldest=Min("time"), newest=Max("time"))
    deleted, _ = rows.delete()
    _record(rows=deleted, cutoff=cutoff, oldest=span["oldest"], newest=span["newest"], how="rows deleted")
    return deleted


def ledger_prune(*, now: datetime | None = None, batch: int = 20000) -> int:
    """Remove raw ledger rows (budgets.SpendRecord) past the retention; their daily rollups stay, so
    every total the site shows is unchanged. Audit events are never deleted. On PostgreSQL every month
    before the cutoff is detached and dropped whole (one audit event each), then any old row the default
    partition caught is deleted; on SQLite rows are deleted in batches (one transaction and one audit
    event per batch), so a crash leaves nothing half-done."""
    cutoff = raw_ledger_cutoff(now)
    total = 0
    if partitions.is_partitioned():
        for month in partitions.months():
            if month.end <= cutoff.date():
                total += _drop_month(month, cutoff)
    while deleted := _prune_batch(cutoff, batch):
        total += deleted
    if total:
        log.info("pruned %d raw ledger rows older than %s", total, cutoff.isoformat())
    return total


def _iso(value: datetime) -> str:
    # As the evidence reports write times (audit.reports.iso), so the event reads like the others.
    return value.astimezone(UTC).isoformat(timespec="microseconds")
