"""The pull from /spend/logs/v2: re-reading, overlapping, failing half way and more than 10,000 rows
in a window never duplicate or lose a row."""

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from budgets.models import DailyRollup, PullState, SpendRecord
from budgets.pull import spend_pull_run
from tests.budgets.conftest import spend_row

pytestmark = pytest.mark.django_db(transaction=True)


def _rows(n: int, *, minutes_ago: int = 30) -> tuple[str, list[dict]]:
    """n rows of a fresh key hash, spread over the last `minutes_ago` minutes."""
    token = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    now = datetime.now(UTC)
    rows = [
        spend_row(api_key=token, spend=0.001, start_time=now - timedelta(seconds=(minutes_ago * 60 * i) // max(n, 1)))
        for i in range(n)
    ]
    return token, rows


def _booked(token: str) -> int:
    return SpendRecord.objects.filter(token_hash=token).count()


def _rolled_up(token: str) -> int:
    return sum(DailyRollup.objects.filter(token_hash=token).values_list("requests", flat=True))


def test_the_same_window_twice_and_overlapping_windows_book_each_row_once(ledger_gateway):
    token, rows = _rows(40)
    ledger_gateway.insert_spend_rows(rows)
    first = spend_pull_run()
    assert not first.error and _booked(token) == 40
    # The next run re-reads its overlap window: nothing new, nothing twice.
    second = spend_pull_run()
    assert not second.error and _booked(token) == 40 and _rolled_up(token) == 40
    # A run from far back (a watermark reset) reads everything again, still once each.
    PullState.objects.update(watermark=datetime.now(UTC) - timedelta(hours=3))
    assert not spend_pull_run().error
    assert _booked(token) == 40 and _rolled_up(token) == 40


def test_rows_the_gateway_writes_late_are_caught_by_the_overlap(ledger_gateway):
    token, early = _rows(5)
    ledger_gateway.insert_spend_rows(early)
    assert not spend_pull_run().error
    # LiteLLM batches its writes: a row that started before the watermark lands afterwards.
    late = spend_row(api_key=token, spend=0.001, start_time=datetime.now(UTC) - timedelta(seconds=30))
    ledger_gateway.insert_spend_rows([late])
    assert not spend_pull_run().error
    assert _booked(token) == 6


def test_gateway_errors_half_way_are_recorded_and_the_next_run_finishes_the_window(ledger_gateway, settings):
    token, rows = _rows(2500)
    ledger_gateway.insert_spend_rows(rows)
    ledger_gateway.faults(fail_next=1, status=500)
    failed = spend_pull_run()
    assert failed.error
    state = PullState.objects.get()
    assert state.failures == 1 and "500" in state.last_error
    assert _booked(token) == 0

    ledger_gateway.faults(delay_next=1, seconds=4)  # longer than the client's timeout below
    settings.GATEWAY_TIMEOUT_SECONDS = 1
    timed_out = spend_pull_run()
    assert timed_out.error and "timed out" in timed_out.error
    settings.GATEWAY_TIMEOUT_SECONDS = 10

    done = spend_pull_run()
    assert not done.error
    assert _booked(token) == 2500 and _rolled_up(token) == 2500
    assert PullState.objects.get().failures == 0


def test_more_than_ten_thousand_rows_in_a_window_are_all_read(ledger_gateway):
    token, rows = _rows(10_500, minutes_ago=50)
    ledger_gateway.insert_spend_rows(rows)
    result = spend_pull_run()
    assert not result.error
    assert result.pages >= 11
    assert _booked(token) == 10_500 and _rolled_up(token) == 10_500


def test_a_crash_between_fetching_a_page_and_committing_it_loses_and_duplicates_nothing(ledger_gateway):
    from django.db import DatabaseError, connection

    from govsite import dbroles

    if connection.vendor != "postgresql":
        pytest.skip("the crash is a PostgreSQL trigger")
    token, rows = _rows(2500)
    ledger_gateway.insert_spend_rows(rows)
    # Page 2 is fetched, then its write dies half way (a killed worker, a database failover): a
    # trigger refuses one of its rows, so the whole page's transaction rolls back.
    ordered = sorted(rows, key=lambda row: (row["startTime"], row["request_id"]))
    victim = ordered[1500]["request_id"]
    # DDL is the owner's (the app role may not add a trigger): the test plays the schema's owner for it. A
    # function's body takes no bound parameter (the server binds them): the victim's id, letters, digits and
    # dashes, is written into it.
    assert re.fullmatch(r"[\w-]+", victim), victim
    with dbroles.owner_cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION budgets_test_crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.request_id = '{victim}' THEN RAISE EXCEPTION 'worker killed mid-page'; END IF; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER budgets_test_crash BEFORE INSERT ON budgets_spendrecord "
            "FOR EACH ROW EXECUTE FUNCTION budgets_test_crash()"
        )
    try:
        with pytest.raises(DatabaseError):
            spend_pull_run()
        state = PullState.objects.get()
        assert state.failures == 1 and "worker killed mid-page" in state.last_error
        booked_before = _booked(token)
        assert 0 < booked_before < 2500 and booked_before == _rolled_up(token)
    finally:
        with dbroles.owner_cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS budgets_test_crash ON budgets_spendrecord")
            cursor.execute("DROP FUNCTION IF EXISTS budgets_test_crash()")
    assert not spend_pull_run().error
    assert _booked(token) == 2500 and _rolled_up(token) == 2500
    assert PullState.objects.get().failures == 0


def test_backfill_imports_a_date_range_once(ledger_gateway):
    from django.core.management import call_command

    token = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    day = (datetime.now(UTC) - timedelta(days=40)).replace(hour=12, minute=0, second=0, microsecond=0)
    rows = [spend_row(api_key=token, spend=0.001, start_time=day + timedelta(minutes=i)) for i in range(30)]
    ledger_gateway.insert_spend_rows(rows)
    assert not spend_pull_run().error
    assert _booked(token) == 0  # far older than the pull's first look-back
    for _ in range(2):
        call_command("backfill_spend", "--from", f"{day:%Y-%m-%d}", "--to", f"{day:%Y-%m-%d}")
    assert _booked(token) == 30 and _rolled_up(token) == 30


def test_backfill_refuses_days_past_the_ledgers_retention(ledger_gateway, settings):
    from django.core.management import CommandError, call_command

    settings.LEDGER_RETENTION_MONTHS = 1
    token = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    day = (datetime.now(UTC) - timedelta(days=70)).replace(hour=12, minute=0, second=0, microsecond=0)
    ledger_gateway.insert_spend_rows([spend_row(api_key=token, spend=0.001, start_time=day)])
    with pytest.raises(CommandError, match="past the ledger's retention"):
        call_command("backfill_spend", "--from", f"{day:%Y-%m-%d}", "--to", f"{day:%Y-%m-%d}")
    assert _booked(token) == 0


def test_the_demos_in_process_scheduler_runs_the_pull(ledger_gateway):
    from django.core.management import call_command

    token, rows = _rows(12)
    ledger_gateway.insert_spend_rows(rows)
    call_command("run_schedules", "--once")
    assert _booked(token) == 12
