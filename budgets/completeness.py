"""The completeness pass: every spend row booked, however late LiteLLM writes it.

The minute pull (budgets.pull) reads from its watermark less a short overlap, so a row LiteLLM writes
long after its request started — a generation that ran for minutes, its batch writer, its re-queue
after a database outage — starts before the window and is never read by it. This pass re-reads:

- the trailing `LEDGER_COMPLETENESS_TRAILING_HOURS` on every run (every
  `LEDGER_COMPLETENESS_INTERVAL_MINUTES`): a row written up to that long after its request started
  is booked within one interval;
- each whole UTC day once, on the first run at least `LEDGER_COMPLETENESS_DAY_DELAY_HOURS` after the
  day ended: a row written up to that long after the day ended (so at least that long after its
  request started) is booked, and a day read is never read again.

Rows already booked are skipped by request_id (budgets.ingest), so the pass books only what was
missing and may run any number of times. It never moves the pull's watermark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from budgets.models import PullState
from budgets.pull import PullResult, gateway_client, read_window, single_run

log = logging.getLogger(__name__)

STATE_NAME = "spend_logs_days"  # its watermark: midnight after the last whole day re-read
_LOCK_ID = 0x676F7663  # "govc": one completeness pass at a time (the minute pull keeps its own lock)
_CHUNK = timedelta(hours=1)


def trailing() -> timedelta:
    return timedelta(hours=getattr(settings, "LEDGER_COMPLETENESS_TRAILING_HOURS", 3))


def day_delay() -> timedelta:
    return timedelta(hours=getattr(settings, "LEDGER_COMPLETENESS_DAY_DELAY_HOURS", 25))


@dataclass
class CompletenessResult:
    trailing: PullResult = field(default_factory=PullResult)
    days: list[str] = field(default_factory=list)
    days_result: PullResult = field(default_factory=PullResult)
    skipped: bool = False

    @property
    def inserted(self) -> int:
        return self.trailing.inserted + self.days_result.inserted


def _read(client, start: datetime, end: datetime, result: PullResult) -> None:
    window_start = start
    while window_start < end:
        window_end = min(window_start + _CHUNK, end)
        read_window(client, window_start, window_end, result)
        window_start = window_end


def spend_completeness_run(*, now: datetime | None = None, client=None) -> CompletenessResult:
    """Re-read the trailing hours, then every whole day now old enough that was not read yet."""
    now = (now or timezone.now()).astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    result = CompletenessResult()
    with single_run(_LOCK_ID) as got_lock:
        if not got_lock:
            result.skipped = True
            return result
        client_to_close = None
        if client is None:
            client = client_to_close = gateway_client()
        try:
            result.trailing.window_start, result.trailing.window_end = now - trailing(), now
            _read(client, now - trailing(), now, result.trailing)
            state, _ = PullState.objects.get_or_create(name=STATE_NAME)
            # The last day old enough; on the first run only that one (older days: manage.py backfill_spend).
            newest = datetime.combine((now - day_delay()).date(), time.min, tzinfo=UTC) - timedelta(days=1)
            day = state.watermark or newest
            while day <= newest:
                _read(client, day, day + timedelta(days=1), result.days_result)
                result.days.append(day.date().isoformat())
                day += timedelta(days=1)
                PullState.objects.filter(Q(watermark__isnull=True) | Q(watermark__lt=day), pk=state.pk).update(
                    watermark=day, last_success_at=timezone.now()
                )
        finally:
            if client_to_close is not None:
                client_to_close.close()
    if result.inserted:
        log.warning(
            "the completeness pass booked %d rows the pull had missed (trailing %d, days %s: %d)",
            result.inserted,
            result.trailing.inserted,
            result.days,
            result.days_result.inserted,
        )
    return result
