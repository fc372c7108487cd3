"""Contract: govsite's pull and completeness pass against LiteLLM's own `/spend/logs/v2` handler.

LiteLLM's unmodified proxy app (its routes, master-key auth, date parsing, SQL and paging) serves the
rows of a PostgreSQL `LiteLLM_SpendLogs` table built from its `schema.prisma`; only the query
executor stands in for Prisma's engine (govsite/devtools/litellm_spend_logs.py). One proxy process and
one database for the module; the table is emptied before each test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from budgets.completeness import spend_completeness_run
from budgets.models import PullState, SpendRecord
from budgets.pull import spend_pull_run
from govsite import dbroles
from govsite.devtools.litellm_spend_logs import TABLE, spend_logs_ddl
from govsite.devtools.processes import free_port, tail
from tests.factories import SpendLogRowFactory
from tests.gateway_fixtures import unavailable
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MASTER = "sk-spend-logs-contract-master"
BASE = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # the gateway's clock in these tests; the pull is told `now`
TOKEN = "a" * 64  # the hashed key every row is logged under


def _server_dsn() -> str:
    """LiteLLM's database server; with two roles (DATABASE_OWNER_URL, as CI) its database is made by the owner,
    who may create databases (the app role may not)."""
    params = {**connection.settings_dict, **(dbroles.owner_credentials() or {})}
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgresql://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}"


@pytest.fixture(scope="module")
def litellm_database(django_db_setup, django_db_blocker):
    """A database of its own for LiteLLM's table, dropped at the end; its sessions run in a far time zone."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            unavailable("LiteLLM's spend-log SQL needs PostgreSQL (set DATABASE_URL)")
        name = f"{connection.settings_dict['NAME']}_litellm_{uuid.uuid4().hex[:6]}"
    server = _server_dsn()
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        # LiteLLM compares its zone-less column with `$n::timestamptz AT TIME ZONE 'UTC'` so that the
        # session's zone does not matter: a session 14 hours ahead of UTC shows whether it holds.
        admin.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Pacific/Kiritimati'")
        # The plan LiteLLM's query gets once a window covers much of a large table: a sort, not the
        # startTime index. Ties then fall differently on each page, every time, not by chance.
        admin.execute(f'ALTER DATABASE "{name}" SET enable_indexscan TO off')
        admin.execute(f'ALTER DATABASE "{name}" SET enable_bitmapscan TO off')
    dsn = f"{server}/{name}"
    with psycopg.connect(dsn, autocommit=True) as db:
        for statement in spend_logs_ddl():
            db.execute(statement)
    try:
        yield dsn
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def litellm_proxy(litellm_database, tmp_path_factory):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # LiteLLM would start Prisma on it
    env.update(
        SPEND_LOGS_DSN=litellm_database,
        SPEND_LOGS_PORT=str(port),
        LITELLM_MASTER_KEY=MASTER,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    log_path = tmp_path_factory.mktemp("spend-logs-proxy") / "proxy.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "govsite.devtools.litellm_spend_logs"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        try:
            wait_until(answers, timeout=120, what="LiteLLM's proxy app to answer", process=process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{tail(log_path)}") from None
        yield url
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture
def gateway(litellm_proxy, litellm_database, settings):
    """govsite pointed at LiteLLM's handler, the table empty; `.write(rows)` is LiteLLM's writer."""
    settings.LITELLM_URL = litellm_proxy
    settings.LITELLM_MASTER_KEY = MASTER
    settings.GATEWAY_TIMEOUT_SECONDS = 30.0
    settings.REDIS_URL = ""
    with psycopg.connect(litellm_database, autocommit=True) as db:
        db.execute(f'TRUNCATE "{TABLE}"')
    return _Gateway(litellm_proxy, litellm_database)


class _Gateway:
    def __init__(self, url: str, dsn: str):
        self.url, self.dsn = url, dsn

    def write(self, rows: list[dict]) -> None:
        """Insert rows as LiteLLM's batch writer does: timestamps converted to UTC, kept to the millisecond."""
        columns = list(rows[0])
        quoted = ", ".join(f'"{column}"' for column in columns)
        with psycopg.connect(self.dsn, autocommit=True) as db, db.cursor() as cursor:
            cursor.executemany(
                f'INSERT INTO "{TABLE}" ({quoted}) VALUES ({", ".join(["%s"] * len(columns))})',
                [[_stored(column, row[column]) for column in columns] for row in rows],
            )

    def get(self, **params) -> httpx.Response:
        return httpx.get(
            f"{self.url}/spend/logs/v2", params=params, headers={"Authorization": f"Bearer {MASTER}"}, timeout=30
        )


_TIME_COLUMNS = {"startTime", "endTime", "completionStartTime"}


def _stored(column: str, value):
    if column in _TIME_COLUMNS and isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _row(start: datetime, **fields) -> dict:
    return SpendLogRowFactory(api_key=TOKEN, spend=0.002, start_time=start, **fields)


def _booked(*request_ids: str) -> set[str]:
    return set(SpendRecord.objects.filter(request_id__in=request_ids).values_list("request_id", flat=True))


def _set_watermark(mark: datetime) -> None:
    PullState.objects.update_or_create(name="spend_logs", defaults={"watermark": mark})


def test_the_handler_serves_our_rows_as_the_client_reads_them(gateway):
    """LiteLLM's own response: millisecond UTC timestamps, metadata an object, `total` counted."""
    row = _row(BASE + timedelta(milliseconds=250))
    gateway.write([row])
    body = gateway.get(start_date="2026-03-10 12:00:00", end_date="2026-03-10 12:00:01", sort_order="asc").json()
    (served,) = body["data"]
    assert served["request_id"] == row["request_id"] and body["total"] == 1
    assert served["startTime"] == "2026-03-10T12:00:00.250+00:00"
    assert isinstance(served["metadata"], dict) and isinstance(served["request_tags"], str)
    assert gateway.get(start_date="2026-03-10", end_date="2026-03-10 11:59:59").json()["total"] == 0


def test_the_pull_window_is_inclusive_at_both_whole_second_bounds(gateway):
    overlap = timedelta(seconds=django_settings.LEDGER_PULL_OVERLAP_SECONDS)
    watermark = BASE
    now = BASE + timedelta(minutes=5, milliseconds=400)  # the window ends at the next whole second
    window_start = watermark - overlap
    rows = {
        "before": _row(window_start - timedelta(milliseconds=1)),
        "at_start": _row(window_start),
        "inside": _row(BASE + timedelta(minutes=1, microseconds=999_000)),
        "this_second": _row(now + timedelta(milliseconds=300)),  # started after `now`, in its second
        "at_end": _row(now.replace(microsecond=0) + timedelta(seconds=1)),
        "after": _row(now.replace(microsecond=0) + timedelta(seconds=1, milliseconds=1)),
    }
    gateway.write(list(rows.values()))
    _set_watermark(watermark)
    result = spend_pull_run(now=now)
    assert not result.error, result.error
    ids = {name: row["request_id"] for name, row in rows.items()}
    assert _booked(*ids.values()) == {ids[n] for n in ("at_start", "inside", "this_second", "at_end")}
    assert PullState.objects.get(name="spend_logs").watermark == now.replace(microsecond=0) + timedelta(seconds=1)


def test_time_zones_neither_the_callers_nor_the_databases_move_a_row(gateway):
    """`now` given in New York, LiteLLM's session 14 hours ahead of UTC: the row keeps its UTC instant."""
    started = BASE + timedelta(minutes=2, milliseconds=5)
    row = _row(started)
    gateway.write([row])
    _set_watermark(BASE)
    result = spend_pull_run(now=(BASE + timedelta(minutes=3)).astimezone(ZoneInfo("America/New_York")))
    assert not result.error and result.window_start == BASE - timedelta(seconds=120)
    assert SpendRecord.objects.get(request_id=row["request_id"]).time == started


def test_many_rows_with_one_start_time_across_pages_are_each_booked_once(gateway, litellm_database):
    """LiteLLM pages with ORDER BY "startTime" and no tie-break: which of 2,600 equal rows a page holds
    is up to PostgreSQL's plan. The pull counts what it read against the handler's `total`."""
    same = BASE + timedelta(seconds=30, milliseconds=123)
    rows = [_row(same) for _ in range(2600)] + [_row(same + timedelta(milliseconds=i % 7)) for i in range(400)]
    gateway.write(rows)
    with psycopg.connect(litellm_database, autocommit=True) as db:  # stored in request_id order, not time's
        db.execute(f'CLUSTER "{TABLE}" USING "{TABLE}_pkey"')
    _set_watermark(BASE)
    result = spend_pull_run(now=BASE + timedelta(minutes=1))
    assert not result.error and not result.unverified_windows
    assert result.rereads >= 1  # the first read fell short of the count (a pull without the check books ~2,650)
    assert SpendRecord.objects.filter(token_hash=TOKEN).count() == 3000
    assert result.inserted == 3000


def test_rows_written_late_are_booked_once_by_the_completeness_pass(gateway, settings):
    """Rows LiteLLM writes 5 minutes, 1 hour and 23 hours after their request started."""
    settings.LEDGER_COMPLETENESS_TRAILING_HOURS = 3
    settings.LEDGER_COMPLETENESS_DAY_DELAY_HOURS = 25
    on_time = _row(BASE)
    gateway.write([on_time])
    _set_watermark(BASE - timedelta(minutes=1))
    assert not spend_pull_run(now=BASE + timedelta(minutes=1)).error
    # Written at about BASE, started that long before (the 23-hour one on the day before).
    late = {
        timedelta(minutes=5): _row(BASE + timedelta(seconds=5) - timedelta(minutes=5)),
        timedelta(hours=1): _row(BASE - timedelta(minutes=1)),
        timedelta(hours=23): _row(BASE - timedelta(hours=23)),
    }
    gateway.write(list(late.values()))
    # The pull has moved past them: its next window starts after their startTime, less the overlap.
    assert not spend_pull_run(now=BASE + timedelta(hours=12)).error
    assert _booked(*(row["request_id"] for row in late.values())) == set()

    trailing = spend_completeness_run(now=BASE + timedelta(hours=1))
    five_minutes, one_hour, a_day = (late[t]["request_id"] for t in sorted(late))
    assert _booked(five_minutes, one_hour, a_day) == {five_minutes, one_hour}
    assert trailing.inserted == 2

    # The day pass reads 2026-03-09 whole once it is old enough, and never again.
    days = spend_completeness_run(now=datetime(2026, 3, 11, 1, 30, tzinfo=UTC))
    assert days.days == ["2026-03-09"] and _booked(a_day) == {a_day}
    again = spend_completeness_run(now=datetime(2026, 3, 11, 1, 45, tzinfo=UTC))
    assert again.days == [] and again.inserted == 0
    ids = [on_time["request_id"], *(row["request_id"] for row in late.values())]
    assert SpendRecord.objects.filter(request_id__in=ids).count() == 4


def test_a_day_boundary_row_is_read_by_two_days_and_booked_once(gateway):
    midnight = datetime(2026, 3, 9, tzinfo=UTC)
    rows = [_row(midnight - timedelta(milliseconds=1)), _row(midnight), _row(midnight + timedelta(days=1))]
    gateway.write(rows)
    PullState.objects.update_or_create(name="spend_logs_days", defaults={"watermark": midnight - timedelta(days=1)})
    result = spend_completeness_run(now=datetime(2026, 3, 11, 2, tzinfo=UTC))
    assert result.days == ["2026-03-08", "2026-03-09"]
    assert _booked(*(row["request_id"] for row in rows)) == {row["request_id"] for row in rows}
    assert result.days_result.inserted == 3 and result.days_result.duplicates == 1  # midnight, read by both days
