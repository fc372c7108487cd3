"""Retention: raw ledger rows past LEDGER_RETENTION_MONTHS are pruned by a job; their daily rollups, the
dashboards' own rollups, every figure the dashboards show, and every audit event stay."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from adoption import costs
from adoption.forms import Period as AdoptionPeriod
from adoption.models import KeyUse, LatencyRollup, PersonWeek, TagRollup, TeamModelDay, TeamToolDay
from adoption.selectors import adoption_report
from audit.chain import verify
from audit.models import AuditEvent
from budgets import jobs as budget_jobs
from budgets import selectors as budget_selectors
from budgets.ingest import ingest_spend_rows
from budgets.models import Budget, DailyRollup, SpendRecord
from budgets.retention import ledger_prune, raw_ledger_cutoff
from govsite.accounts.models import Team
from tests.adoption.builders import PROVISIONED
from tests.adoption.conftest import cost_rows, flat_rate_kimi  # noqa: F401  (the dashboards' fixture, shared)
from tests.audit.helpers import write_events
from tests.factories import SpendLogRowFactory, VirtualKeyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_the_cutoff_is_the_first_of_the_month_the_configured_number_of_calendar_months_back(settings):
    # Default 25 months back from 2026-11-23 is October 2024: whole months go, so from October 1st.
    assert raw_ledger_cutoff(NOW) == datetime(2024, 10, 1, tzinfo=UTC)
    settings.LEDGER_RETENTION_MONTHS = 1
    assert raw_ledger_cutoff(datetime(2026, 3, 31, 8, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)
    assert raw_ledger_cutoff(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2025, 12, 1, tzinfo=UTC)
    settings.LEDGER_RETENTION_MONTHS = 0
    with pytest.raises(ImproperlyConfigured, match="LEDGER_RETENTION_MONTHS"):
        raw_ledger_cutoff(NOW)


@pytest.fixture
def ledger(world):
    """Spend of one key in team A: two old requests, two either side of the cutoff, two recent."""
    key = VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], approved_by=world.users["approver_a"])
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
        SpendLogRowFactory(
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
    assert budget_jobs.prune_ledger() >= 3
    assert SpendRecord.objects.filter(time__lt=raw_ledger_cutoff()).count() == 0
    assert DailyRollup.objects.count() > 0


# --- the dashboards read rollups only: pruning changes none of their figures ------------------------------


ROLLUPS = (DailyRollup, PersonWeek, KeyUse, TeamModelDay, TeamToolDay, TagRollup, LatencyRollup)
DASHBOARD_FIELDS = ("totals", "over_time", "models", "tools", "teams", "latency", "tags", "people", "refusals")


def _rollup_rows() -> dict[str, list[tuple]]:
    """Every rollup row by its values (not its id: a rebuild writes new rows with the same figures)."""
    rows = {}
    for model in ROLLUPS:
        fields = [f.attname for f in model._meta.concrete_fields if not (f.primary_key and f.attname == "id")]
        rows[model.__name__] = sorted(model.objects.values_list(*fields), key=repr)
    return rows


def _dashboards(world, as_of: date) -> dict:
    """What the cost dashboards and the adoption page show, org-wide and for team A, over every day the
    ledger covers and over the pruned days alone."""
    teams = list(Team.objects.order_by("name"))
    whole = AdoptionPeriod(date(2024, 8, 1), NOW.date(), "all")
    pruned_days = AdoptionPeriod(date(2024, 8, 1), raw_ledger_cutoff(NOW).date() - timedelta(days=1), "pruned")
    figures = {}
    for name, period in (("whole", whole), ("pruned", pruned_days)):
        org = costs.cost_dashboard(scope=costs.Scope(teams, whole_org=True), period=period, today=NOW.date())
        team_a = costs.cost_dashboard(
            scope=costs.Scope([world.team_a]), period=period, today=NOW.date(), people=True, one_team=True
        )
        for label, board in (("org", org), ("team_a", team_a)):
            figures[f"{name} {label}"] = {field: getattr(board, field) for field in DASHBOARD_FIELDS}
    report = adoption_report(teams=teams, as_of=as_of, whole_org=True)
    figures["adoption"] = (report.teams, report.org)
    return figures


@pytest.fixture
def dashboard_ledger(world, flat_rate_kimi):  # noqa: F811  (the fixture imported above)
    """Mixed traffic (priced, flat-rate, unpriced, refused, tagged, three tools) on every day of the weeks
    either side of the cutoff, on a day well before it and on a recent day, booked through the ingest,
    which keeps every rollup in the same statement."""
    keys = {
        "a": VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"], provisioned_at=PROVISIONED),
        "b": VirtualKeyFactory(team=world.team_a, owner=world.users["approver_a"], provisioned_at=PROVISIONED),
        "c": VirtualKeyFactory(team=world.team_b, owner=world.users["member_b"], provisioned_at=PROVISIONED),
    }
    cutoff = raw_ledger_cutoff(NOW).date()
    days = [cutoff - timedelta(days=40), *(cutoff + timedelta(days=n) for n in range(-8, 9)), NOW.date()]
    by_day = {day: cost_rows(keys, day) for day in days}
    rows = [row for day_rows in by_day.values() for row in day_rows]
    result = ingest_spend_rows(rows, "push", evaluate_budgets=False)
    assert result.inserted == len(rows) and not result.rejected
    pruned = sum(len(day_rows) for day, day_rows in by_day.items() if day < cutoff)
    return {"keys": keys, "cutoff": cutoff, "pruned": pruned}


def test_pruning_keeps_every_dashboard_figure_and_adoption_rollup_and_a_rebuild_after_it_loses_nothing(
    world, dashboard_ledger, settings
):
    settings.ADOPTION_MIN_GROUP = 1  # the adoption figures of these small teams are shown, so they compare
    as_of = dashboard_ledger["cutoff"] + timedelta(days=14)  # its twelve weeks reach far before the cutoff
    write_events(2)
    rollups = _rollup_rows()
    figures = _dashboards(world, as_of)
    events = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))
    # The figures are not empty, so their equality below means something.
    assert figures["pruned org"]["totals"]["requests"] == dashboard_ledger["pruned"] > 0
    assert figures["pruned team_a"]["people"] and figures["pruned org"]["tags"] and figures["pruned org"]["latency"]
    assert any(group.weeks and any(week.active for week in group.weeks) for group in figures["adoption"][0])
    assert all(rollups[name] for name in rollups), {name: len(rows) for name, rows in rollups.items()}

    assert ledger_prune(now=NOW) == dashboard_ledger["pruned"]
    assert not SpendRecord.objects.filter(time__lt=raw_ledger_cutoff(NOW)).exists()
    assert SpendRecord.objects.filter(time__lt=datetime.combine(dashboard_ledger["cutoff"], time.min, UTC)).count() == 0
    assert _rollup_rows() == rollups
    assert _dashboards(world, as_of) == figures
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))[: len(events)] == events
    assert verify().ok

    # An operator repairs the adoption rollups from the ledger that is left: whole ISO weeks are rebuilt from
    # the first Monday after the cutoff, so the week the cutoff cuts in two keeps its rollups: nothing is lost.
    call_command("rebuild_adoption_rollups", stdout=StringIO())
    assert _rollup_rows() == rollups
    assert _dashboards(world, as_of) == figures
    # Asked for the pruned weeks too, it leaves them alone: their raw rows are gone, their rollups stay.
    before_cutoff = dashboard_ledger["cutoff"] - timedelta(days=60)
    out = StringIO()
    call_command("rebuild_adoption_rollups", "--from", before_cutoff.isoformat(), stdout=out)
    assert "past the raw ledger's retention" in out.getvalue()
    assert _rollup_rows() == rollups
    assert _dashboards(world, as_of) == figures
