"""The ledger partitioned by month (PostgreSQL): partitions made ahead, a row of a month without one kept in
the default partition and shown to admins, a request booked once across partitions, whole months dropped by
retention with every figure unchanged, and the migration from the plain table keeping every row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from budgets import partitions
from budgets.ingest import ingest_spend_rows
from budgets.models import DailyRollup, SpendRecord
from budgets.retention import ledger_prune, raw_ledger_cutoff
from tests.factories import SpendLogRowFactory, VirtualKeyFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="declarative partitioning is PostgreSQL's"),
]

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _row(key, at: datetime, request_id: str, spend: float = 0.5) -> dict:
    return SpendLogRowFactory(
        start_time=at.astimezone(UTC).replace(tzinfo=None), request_id=request_id, api_key=key.token_hash, spend=spend
    )


def _where(request_id: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM budgets_spendrecord WHERE request_id = %s", [request_id])
        return [name for (name,) in cursor.fetchall()]


@pytest.fixture
def key(world):
    return VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"])


def test_the_job_makes_this_month_and_the_months_ahead_once(settings):
    settings.LEDGER_PARTITIONS_AHEAD_MONTHS = 2
    made = partitions.ledger_partitions_ensure(now=datetime(2031, 11, 5, tzinfo=UTC))
    assert made == ["budgets_spendrecord_y2031m11", "budgets_spendrecord_y2031m12", "budgets_spendrecord_y2032m01"]
    assert partitions.ledger_partitions_ensure(now=datetime(2031, 11, 30, tzinfo=UTC)) == []
    assert {m.name for m in partitions.months()} >= set(made)


def test_a_row_of_a_month_without_partition_lands_in_the_default_is_shown_to_admins_then_moved(key, client, world):
    at = datetime(2019, 3, 14, 9, tzinfo=UTC)
    assert ingest_spend_rows([_row(key, at, "req-old")], "pull", evaluate_budgets=False).inserted == 1
    assert _where("req-old") == [partitions.DEFAULT]
    assert partitions.default_partition_months() == [(date(2019, 3, 1), 1)]

    client.force_login(world.users["admin"])
    page = client.get(reverse("quarantine_list")).content.decode()
    assert "Ledger rows outside the monthly partitions" in page and "2019-03: 1 row" in page

    call_command("ledger_partitions", "--month", "2019-03", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _where("req-old") == ["budgets_spendrecord_y2019m03"]
    assert partitions.default_partition_months() == []
    assert "Ledger rows outside" not in client.get(reverse("quarantine_list")).content.decode()
    # Read again (the completeness pass), it is still one row.
    assert ingest_spend_rows([_row(key, at, "req-old")], "pull", evaluate_budgets=False).inserted == 0


def test_a_request_is_booked_once_across_partitions_even_when_its_two_times_straddle_a_month(key):
    partitions.ledger_partition_create(partitions.Month(date(2030, 1, 1)))
    partitions.ledger_partition_create(partitions.Month(date(2030, 2, 1)))
    boundary = datetime(2030, 2, 1, tzinfo=UTC)
    # The push's epoch seconds and the pull's ISO text of one request may differ in the last digits.
    pushed = _row(key, boundary - timedelta(microseconds=300), "req-edge", spend=1.25)
    pulled = _row(key, boundary + timedelta(microseconds=200), "req-edge", spend=1.25)
    assert ingest_spend_rows([pushed], "push", evaluate_budgets=False).inserted == 1
    result = ingest_spend_rows([pulled], "pull", evaluate_budgets=False)
    assert (result.inserted, result.duplicates) == (0, 1)
    assert _where("req-edge") == ["budgets_spendrecord_y2030m01"]
    assert DailyRollup.objects.filter(key=key).values_list("requests", flat=True).get() == 1
    # The same request id at the same time is refused by the database's own key as well.
    assert ingest_spend_rows([pushed, pulled], "pull", evaluate_budgets=False).inserted == 0
    assert SpendRecord.objects.filter(request_id="req-edge").count() == 1


def test_retention_drops_whole_months_and_every_total_stays(key, world, settings):
    cutoff = raw_ledger_cutoff(NOW)  # 2024-10-01
    for month in ("2024-08", "2024-09", "2024-10", "2024-11"):
        partitions.ledger_partition_create(partitions.Month(date.fromisoformat(f"{month}-01")))
    times = [
        datetime(2024, 8, 3, tzinfo=UTC),
        datetime(2024, 9, 30, 23, 59, tzinfo=UTC),
        cutoff,
        datetime(2024, 11, 2, tzinfo=UTC),
    ]
    rows = [_row(key, at, f"req-{n}", spend=0.25 * (n + 1)) for n, at in enumerate(times)]
    assert ingest_spend_rows(rows, "pull", evaluate_budgets=False).inserted == 4
    rollups = list(DailyRollup.objects.order_by("pk").values())
    assert sum(r["gateway_spend"] for r in rollups) == Decimal("2.5")

    assert ledger_prune(now=NOW) == 2
    assert sorted(SpendRecord.objects.values_list("request_id", flat=True)) == ["req-2", "req-3"]
    left = {m.name for m in partitions.months()}
    assert "budgets_spendrecord_y2024m08" not in left and "budgets_spendrecord_y2024m09" not in left
    assert "budgets_spendrecord_y2024m10" in left
    assert list(DailyRollup.objects.order_by("pk").values()) == rollups
    events = AuditEvent.objects.filter(action="ledger.pruned").order_by("seq")
    assert [(e.data["month"], e.data["rows"], e.data["how"]) for e in events] == [
        ("2024-08", 1, "partition dropped"),
        ("2024-09", 1, "partition dropped"),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_from_the_plain_table_keeps_every_row_and_every_rollup(world):
    call_command("migrate", "budgets", "0005", verbosity=0)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'budgets_spendrecord'")
            assert cursor.fetchone()[0] == "r"
        key = VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"])
        records = [
            SpendRecord(
                request_id=f"mig-{n}",
                time=datetime(2025, 1 + n % 12, 1 + n % 27, n % 24, tzinfo=UTC),
                key=key,
                cost=Decimal("0.000000001") * n,
                gateway_spend=Decimal("0.1"),
                cost_source="gateway",
                source="pull",
                request_tags=["team:a"],
            )
            for n in range(300)
        ]
        SpendRecord.objects.bulk_create(records)
        DailyRollup.objects.create(day=date(2025, 1, 1), key=key, requests=300, cost=Decimal("44.85"))
        before = sorted(SpendRecord.objects.values_list(), key=repr)
        rollups = list(DailyRollup.objects.values())
    finally:
        call_command("migrate", "budgets", verbosity=0)
    assert partitions.is_partitioned()
    assert sorted(SpendRecord.objects.values_list(), key=repr) == before
    assert list(DailyRollup.objects.values()) == rollups
    assert {m.start.strftime("%Y-%m") for m in partitions.months()} >= {f"2025-{n:02d}" for n in range(1, 13)}
    assert partitions.default_partition_months() == []
