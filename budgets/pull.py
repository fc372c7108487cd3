"""Reading LiteLLM's spend logs into the ledger: the every-minute pull and the backfill.

The pull reads `/spend/logs/v2` from a stored watermark, less an overlap (LiteLLM writes its rows
in batches, ~10-15 s late, and a row's startTime is when the request began), in ascending
startTime order, one page of up to 1000 rows at a time until a page comes back empty, and checks
what it read against the `total` LiteLLM counted (`read_window`: its handler breaks no ties between
equal startTimes, so offset pages may skip some; a window over the 10,000-row count cap is split).
Each page is booked by `ingest_spend_rows` in
its own transaction, and only then does the watermark move past it. Rows read twice are skipped
by request_id, so a crash at any point loses nothing and counts nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from budgets.ingest import ingest_spend_rows
from budgets.models import PullState
from budgets.normalize import SpendRowInvalid, parse_time
from govsite.gateway.client import GatewayError, get_client

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
STATE_NAME = "spend_logs"
_PULL_LOCK_ID = 0x676F7670  # "govp": one pull at a time across every worker


@dataclass
class PullResult:
    window_start: datetime | None = None
    window_end: datetime | None = None
    pages: int = 0
    rows_seen: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    alerts: int = 0
    error: str = ""
    skipped: bool = False
    rereads: int = 0  # windows read again because fewer rows came back than the handler counted
    unverified_windows: int = 0  # windows still short of their count after every re-read
    rejected_examples: list[str] = field(default_factory=list)


def overlap() -> timedelta:
    return timedelta(seconds=getattr(settings, "LEDGER_PULL_OVERLAP_SECONDS", 120))


def initial_lookback() -> timedelta:
    return timedelta(hours=getattr(settings, "LEDGER_PULL_INITIAL_LOOKBACK_HOURS", 24))


def gateway_client(timeout: float | None = None):
    return get_client(timeout=timeout)


@contextlib.contextmanager
def single_run(lock_id: int = _PULL_LOCK_ID) -> Iterator[bool]:
    """A session-level advisory lock, so two cron ticks never pull the same window at once."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
        (got,) = cursor.fetchone()
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])


def _state() -> PullState:
    state, _ = PullState.objects.get_or_create(name=STATE_NAME)
    return state


def read_window(
    client,
    start: datetime,
    end: datetime,
    result: PullResult,
    *,
    after_page: Callable[[list[dict]], None] | None = None,
) -> None:
    """Book every row of [start, end] (both inclusive, second resolution), checked against the count.

    LiteLLM's handler pages with `ORDER BY "startTime" LIMIT/OFFSET` and nothing to break ties, so
    rows sharing one startTime across a page boundary may be served twice on one page and never on
    the next (PostgreSQL orders ties as its plan likes), and a row written into the window behind
    the offset is not served at all. So a window is read until the rows seen reach the `total` the
    handler counted, re-reading in the other order (other ties) up to `_READS` times; a window whose
    count is capped (over 10,000 rows) is split in halves first, down to one second.
    """
    first = _page(client, start, end, 1, "asc")
    if _capped(first) and end - start > timedelta(seconds=1):
        middle = (start + (end - start) / 2).replace(microsecond=0)
        read_window(client, start, middle, result, after_page=after_page)
        read_window(client, middle, end, result, after_page=after_page)
        return
    seen: set[str] = set()
    for attempt in range(_READS):
        order = "asc" if attempt % 2 == 0 else "desc"
        total = _read_pages(client, start, end, order, result, seen, after_page, first=first if attempt == 0 else None)
        if _capped_total(total) or len(seen) >= total:
            return
        result.rereads += 1
    result.unverified_windows += 1
    log.warning(
        "spend window %s..%s: %d rows read of the %d counted after %d reads; the completeness pass reads it again",
        start.isoformat(),
        end.isoformat(),
        len(seen),
        total,
        _READS,
    )


_READS = 4
_COUNT_CAP = 10_000  # LiteLLM's SPEND_LOGS_PAGINATION_COUNT_CAP


def _page(client, start: datetime, end: datetime, page: int, order: str) -> dict:
    return client.spend_logs_v2(
        start=start, end=end, page=page, page_size=PAGE_SIZE, sort_by="startTime", sort_order=order
    )


def _capped(response: dict) -> bool:
    return bool(response.get("total_is_capped")) or _capped_total(int(response.get("total") or 0))


def _capped_total(total: int) -> bool:
    return total >= _COUNT_CAP


def _read_pages(client, start, end, order, result, seen, after_page, *, first: dict | None) -> int:
    """Book the window's pages until an empty one; returns the last count the handler gave."""
    page, response = 1, first
    while True:
        if response is None:
            response = _page(client, start, end, page, order)
        rows = response.get("data") or []
        total = int(response.get("total") or 0)
        if not rows:
            return total
        seen.update(str(row.get("request_id")) for row in rows if isinstance(row, dict))
        booked = ingest_spend_rows(rows, "pull")
        result.pages += 1
        result.rows_seen += len(rows)
        result.inserted += booked.inserted
        result.duplicates += booked.duplicates
        result.rejected += booked.rejected_count
        result.alerts += booked.alerts_created
        for index, _field, message in booked.rejected[:3]:
            if len(result.rejected_examples) < 5:
                result.rejected_examples.append(f"row {rows[index].get('request_id', index)}: {message}")
        if after_page is not None:
            after_page(rows)
        page, response = page + 1, None


def _last_start_time(rows: list[dict]) -> datetime | None:
    for row in reversed(rows):
        with contextlib.suppress(SpendRowInvalid):
            return parse_time(row.get("startTime"), "startTime")
    return None


def _record_failure(exc: Exception, now: datetime) -> None:
    with transaction.atomic():
        PullState.objects.filter(name=STATE_NAME).update(
            last_error=f"{type(exc).__name__}: {exc}"[:4000],
            last_error_at=now,
            failures=F("failures") + 1,
            total_failures=F("total_failures") + 1,
        )


def spend_pull_run(*, now: datetime | None = None, client=None) -> PullResult:
    """One pull: from the watermark (less the overlap) to now. Gateway errors are recorded on the
    pull's state for admins to see and the next run starts again from the last committed page."""
    # The gateway filters at second resolution: end the window at the next whole second so a row
    # that started in the current second is read now, not only by the next run's overlap.
    now = (now or timezone.now()).astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    state = _state()
    result = PullResult()
    with single_run() as got_lock:
        if not got_lock:
            result.skipped = True
            return result
        state.refresh_from_db()
        start = (state.watermark or now - initial_lookback()) - overlap()
        start = start.astimezone(UTC).replace(microsecond=0)
        result.window_start, result.window_end = start, now
        PullState.objects.filter(pk=state.pk).update(
            last_run_at=timezone.now(), last_window_start=start, last_window_end=now
        )

        def advance(rows: list[dict]) -> None:
            # The page is committed; everything that started before its last row has been read.
            last = _last_start_time(rows)
            if last is not None:
                mark = min(last, now)
                PullState.objects.filter(Q(watermark__isnull=True) | Q(watermark__lt=mark), pk=state.pk).update(
                    watermark=mark
                )

        client_to_close = None
        if client is None:
            client = client_to_close = gateway_client()
        try:
            read_window(client, start, now, result, after_page=advance)
        except GatewayError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            _record_failure(exc, timezone.now())
            log.warning("spend pull failed after %d pages: %s", result.pages, result.error)
            return result
        except Exception as exc:
            # Recorded where admins look, then raised so the job shows as failed too.
            _record_failure(exc, timezone.now())
            raise
        finally:
            if client_to_close is not None:
                client_to_close.close()
        PullState.objects.filter(pk=state.pk).update(
            watermark=now,
            last_success_at=timezone.now(),
            last_error="",
            failures=0,
            last_pages=result.pages,
            last_rows_seen=result.rows_seen,
            last_rows_inserted=result.inserted,
            last_rows_rejected=result.rejected,
            rows_inserted_total=F("rows_inserted_total") + result.inserted,
        )
        if result.rejected:
            log.warning("spend pull left out %d invalid rows: %s", result.rejected, result.rejected_examples)
    return result


def spend_backfill(
    *,
    start: date,
    end: date,
    client=None,
    chunk: timedelta = timedelta(hours=1),
    progress: Callable[[datetime, datetime, PullResult], None] | None = None,
) -> PullResult:
    """Read every spend row of the days start..end (inclusive) without touching the watermark.

    The range is read in windows of `chunk` so that no window holds very many rows; consecutive
    windows share their boundary second (the API's bounds are whole seconds), and rows read twice
    are skipped like any others.
    """
    if end < start:
        raise ValueError("the backfill ends before it starts")
    result = PullResult()
    first = datetime.combine(start, time.min, tzinfo=UTC)
    last = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    result.window_start, result.window_end = first, last
    client_to_close = None
    if client is None:
        client = client_to_close = gateway_client()
    try:
        window_start = first
        while window_start < last:
            window_end = min(window_start + chunk, last)
            read_window(client, window_start, window_end, result)
            if progress is not None:
                progress(window_start, window_end, result)
            window_start = window_end
    finally:
        if client_to_close is not None:
            client_to_close.close()
    return result
