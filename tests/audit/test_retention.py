"""Retention: raw ledger rows past LEDGER_RETENTION_MONTHS are pruned by a job; their daily rollups,
every total the site shows, and every audit event stay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from audit import jobs as audit_jobs
from audit.chain import verify
from audit.models import AuditEvent
from audit.services import ledger_prune, raw_ledger_cutoff
from budgets import selectors as budget_selectors
from budgets.ingest import ingest_spend_rows
from budgets.models import Budget, DailyRollup, SpendRecord
from govsite.gateway.sandbox import make_spend_row
from tests.audit.conftest import direct_key
from tests.audit.helpers import write_events

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_the_cutoff_is_the_configured_number_of_calendar_months_back(settings):
    assert raw_ledger_cutoff(NOW) == datetime(2024, 10, 23, tzinfo=UTC)  # default: 25 months
    settings.LEDGER_RETENTION_MONTHS = 1
    assert raw_ledger_cutoff(datetime(2026, 3, 31, 8, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)
    settings.LEDGER_RETENTION_MONTHS = 0
    with pytest.raises(ImproperlyConfigured, match="LEDGER_RETENTION_MONTHS"):
        raw_ledger_cutoff(NOW)


@pytest.fixture
def ledger(world):
    """Spend of one key in team A: two old requests, two either side of the cutoff, two recent."""
    key = direct_key(world.team_a, world.users["member_a"], approver=world.users["approver_a"])
    cutoff = raw_ledger_cutoff(NOW)
    times = [
        cutoff - timedelta(days=400),
        cutoff - timedelta(days=400, hours=1),
        cutoff - timedelta(seconds=1),
        cutoff + timedelta(seconds=1),
        NOW - timedelta(days=2),
        NOW - timedelta(days=1),
    ]
    rows = [
        make_spend_row(
            start_time=at.replace(tzinfo=None), request_id=f"req-{n}", api_key=key.token_hash, spend=0.25 * (n + 1)
        )
        for n, at in enumerate(times)
    ]
    result = ingest_spend_rows(rows, "pull", evaluate_budgets=False)
    assert result.inserted == 6
    budget = Budget.objects.create(team=world.team_a, amount=Decimal("1000"), created_by=world.users["admin"])
    return {"key": key, "cutoff": cutoff, "budget": budget}


def _totals(budget):
    start, end = date(2020, 1, 1), NOW.date()
    return (
        budget_selectors.reconciliation_totals(start=start, end=end),
        budget_selectors.reconciliation(start=start, end=end),
        budget_selectors.budget_spend(budget, start, end),
    )


def test_the_prune_job_removes_raw_rows_past_retention_and_keeps_rollups_totals_and_audit_events(ledger):
    write_events(3)
    rollups = list(DailyRollup.objects.order_by("pk").values())
    totals = _totals(ledger["budget"])
    events = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))

    assert ledger_prune(now=NOW, batch=2) == 3
    assert sorted(SpendRecord.objects.values_list("request_id", flat=True)) == ["req-3", "req-4", "req-5"]
    assert SpendRecord.objects.filter(time__lt=ledger["cutoff"]).count() == 0
    assert list(DailyRollup.objects.order_by("pk").values()) == rollups
    assert _totals(ledger["budget"]) == totals
    assert totals[0]["requests"] == 6 and totals[0]["gateway_spend"] == Decimal("5.25")  # all six, pruned or not

    after = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))
    assert after[: len(events)] == events  # nothing removed or changed
    pruned = AuditEvent.objects.filter(seq__gt=events[-1][0])
    assert {event.action for event in pruned} == {"ledger.pruned"}
    assert sum(event.data["rows"] for event in pruned) == 3 and pruned.count() == 2  # two batches
    assert pruned.first().data["retention_months"] == 25
    assert verify().ok

    assert ledger_prune(now=NOW) == 0  # nothing left to prune: no new event
    assert AuditEvent.objects.count() == len(after)


def test_the_retention_setting_is_read_at_run_time(ledger, settings):
    settings.LEDGER_RETENTION_MONTHS = 1200
    assert ledger_prune(now=NOW) == 0
    settings.LEDGER_RETENTION_MONTHS = 1
    assert ledger_prune(now=NOW) == 4  # only the two of the last days are younger than a month
    assert SpendRecord.objects.count() == 2


def test_the_cron_job_prunes_with_the_current_time(ledger):
    assert audit_jobs.prune_ledger() >= 3
    assert SpendRecord.objects.filter(time__lt=raw_ledger_cutoff()).count() == 0
    assert DailyRollup.objects.count() > 0
