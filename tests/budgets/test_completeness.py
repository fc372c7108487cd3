"""Rows LiteLLM writes long after their request started (long generations, its batch writer, its
re-queue after a database outage) are booked once by the completeness pass, which the pull alone misses."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from budgets.completeness import spend_completeness_run
from budgets.models import DailyRollup, SpendRecord
from budgets.pull import spend_pull_run
from tests.budgets.conftest import spend_row

pytestmark = pytest.mark.django_db(transaction=True)


def _booked(request_id: str) -> int:
    return SpendRecord.objects.filter(request_id=request_id).count()


@pytest.mark.parametrize("written_after", [timedelta(minutes=5), timedelta(hours=1), timedelta(hours=23)])
def test_a_row_written_late_is_booked_once(ledger_gateway, written_after):
    started = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=3)
    token = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    # The pull runs every minute; when the late row lands the watermark is long past its start.
    assert not spend_pull_run(now=started - timedelta(minutes=1)).error
    for minutes in range(0, int(written_after.total_seconds() // 60), 60):
        assert not spend_pull_run(now=started + timedelta(minutes=minutes)).error
    written = started + written_after
    assert not spend_pull_run(now=written - timedelta(seconds=30)).error
    late = spend_row(api_key=token, start_time=started, spend=0.002, prompt_tokens=100, completion_tokens=10)
    ledger_gateway.insert_spend_rows([late])

    assert not spend_pull_run(now=written + timedelta(seconds=30)).error
    assert _booked(late["request_id"]) == 0, "the pull alone reads only from its watermark less the overlap"

    # Every pass from the one after the write to the whole-day re-read: booked, and only once.
    passes = [written + timedelta(minutes=m) for m in (1, 16, 31)] + [
        datetime.combine(started.date() + timedelta(days=2), datetime.min.time(), tzinfo=UTC) + timedelta(hours=h)
        for h in (1, 2)
    ]
    for moment in passes:
        spend_completeness_run(now=moment)
    assert _booked(late["request_id"]) == 1
    assert sum(DailyRollup.objects.filter(token_hash=token).values_list("requests", flat=True)) == 1


def test_each_whole_day_is_read_once_and_a_row_written_in_it_after_the_trailing_window_is_booked(ledger_gateway):
    started = datetime.now(UTC).replace(hour=23, minute=30, second=0, microsecond=0) - timedelta(days=4)
    token = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    late = spend_row(api_key=token, start_time=started, spend=0.002, prompt_tokens=100, completion_tokens=10)
    ledger_gateway.insert_spend_rows([late])
    day_end = datetime.combine(started.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    early = spend_completeness_run(now=day_end + timedelta(hours=24))  # the day is not old enough yet
    assert started.date().isoformat() not in early.days and _booked(late["request_id"]) == 0
    first = spend_completeness_run(now=day_end + timedelta(hours=25, minutes=1))
    assert first.days == [started.date().isoformat()] and _booked(late["request_id"]) == 1
    again = spend_completeness_run(now=day_end + timedelta(hours=26))
    assert again.days == [] and _booked(late["request_id"]) == 1
