"""Cost figures on the dashboards equal the ledger's own sums for the same filters (cost source respected)."""

from __future__ import annotations

import bisect
import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum
from django.utils import timezone

from adoption import costs
from adoption.forms import Period
from adoption.models import LATENCY_BOUNDS_MS
from budgets.models import CostSource, SpendRecord
from govsite.accounts.models import Team
from tests.adoption.builders import at, book, spend
from tests.permissions import APPROVER_A, MEMBER_A

pytestmark = pytest.mark.django_db


def _ledger(cost_world, **filters) -> dict:
    """What the raw ledger says for the period: the reference every dashboard figure is checked against."""
    since = datetime.combine(cost_world.start, time.min, tzinfo=UTC)
    until = datetime.combine(cost_world.end + timedelta(days=1), time.min, tzinfo=UTC)
    result = SpendRecord.objects.filter(time__gte=since, time__lt=until, **filters).aggregate(
        cost=Sum("cost"),
        requests=Count("request_id"),
        unpriced=Count("request_id", filter=Q(cost_source=CostSource.UNPRICED)),
        flat_rate=Count("request_id", filter=Q(cost_source=CostSource.FLAT_RATE)),
        refused_rate=Count("request_id", filter=Q(error_type="rate_limit")),
        refused_budget=Count("request_id", filter=Q(error_type="budget_exceeded")),
    )
    result["cost"] = result["cost"] or Decimal("0")
    return result


def _org(cost_world):
    period = Period(cost_world.start, cost_world.end, "test")
    scope = costs.Scope(Team.objects.order_by("name"), whole_org=True)
    return costs.cost_dashboard(scope=scope, period=period, today=timezone.now().date())


def test_org_totals_equal_the_ledger_and_unpriced_rows_are_counted_not_summed(cost_world):
    totals = _org(cost_world).totals
    ledger = _ledger(cost_world)
    assert ledger["unpriced"] == 6 and ledger["flat_rate"] == 3  # the data set has both kinds
    assert totals["cost"] == ledger["cost"]
    assert (totals["requests"], totals["unpriced"], totals["flat_rate"]) == (
        ledger["requests"],
        ledger["unpriced"],
        ledger["flat_rate"],
    )
    assert (totals["refusals_rate_limit"], totals["refusals_budget"]) == (
        ledger["refused_rate"],
        ledger["refused_budget"],
    )


def test_per_team_per_model_and_per_person_equal_the_ledger(cost_world):
    dashboard = _org(cost_world)
    world = cost_world.world
    teams = {row["team_id"]: row for row in dashboard.teams}
    for team_id in (world.team_a.pk, world.team_b.pk, None):
        ledger = _ledger(cost_world, team_id=team_id)
        assert (teams[team_id]["cost"] or Decimal("0"), teams[team_id]["requests"]) == (
            ledger["cost"],
            ledger["requests"],
        )
        assert teams[team_id]["unpriced"] == ledger["unpriced"]
    models = {row["model"]: row for row in dashboard.models}
    for model in ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "kimi-k2.5"):
        ledger = _ledger(cost_world, model_group=model)
        assert (models[model]["cost"], models[model]["requests"]) == (ledger["cost"], ledger["requests"])
    # A model that could never be priced has no cost at all ("—"), not $0; its requests are flagged.
    unpriced = models["acme-internal-llm"]
    assert unpriced["cost"] is None
    assert unpriced["unpriced"] == _ledger(cost_world, model_group="acme-internal-llm")["requests"] == 6

    team = costs.cost_dashboard(
        scope=costs.Scope([world.team_a]),
        period=dashboard.period,
        today=timezone.now().date(),
        people=True,
        one_team=True,
    )
    people = {row["user_id"]: row for row in team.people}
    for role in (MEMBER_A, APPROVER_A):
        user = world.users[role]
        ledger = _ledger(cost_world, team=world.team_a, user=user)
        assert (people[user.pk]["cost"], people[user.pk]["requests"]) == (ledger["cost"], ledger["requests"])
    assert team.totals["cost"] == _ledger(cost_world, team=world.team_a)["cost"]


def test_cost_per_active_person_counts_people_of_personal_keys_once(cost_world):
    """Active people: anyone with a request through a personal key in the period, once even if in two teams."""
    since = datetime.combine(cost_world.start, time.min, tzinfo=UTC)
    until = datetime.combine(cost_world.end + timedelta(days=1), time.min, tzinfo=UTC)
    active = set(
        SpendRecord.objects.filter(time__gte=since, time__lt=until, key__kind="personal").values_list(
            "user_id", flat=True
        )
    )
    totals = _org(cost_world).totals
    assert totals["active_people"] == len(active) > 0
    assert totals["cost_per_person"] == _ledger(cost_world)["cost"] / len(active)


def test_my_usage_totals_are_the_persons_ledger_rows(cost_world):
    user = cost_world.world.users[MEMBER_A]
    usage = costs.my_usage(user=user, period=Period(cost_world.start, cost_world.end, "test"), today=cost_world.end)
    ledger = _ledger(cost_world, user=user)
    failed = SpendRecord.objects.filter(
        user=user, time__date__gte=cost_world.start, time__date__lte=cost_world.end
    ).exclude(status="success", error_type="")
    assert (usage.totals["cost"], usage.totals["requests"]) == (ledger["cost"], ledger["requests"])
    assert failed.exists() and usage.totals["error_rate"] == failed.count() / ledger["requests"]


def _tagged(tag: str) -> list[str]:
    """The requests sent with this tag, read row by row (JSON containment is not portable to SQLite)."""
    return [
        request_id
        for request_id, tags in SpendRecord.objects.values_list("request_id", "request_tags")
        if tag in (tags or [])
    ]


@pytest.mark.parametrize("tag", ["project:atlas", "project:zephyr", "workflow:review", "ticket-42"])
def test_cost_by_request_tag_equals_the_ledger_for_that_tag(cost_world, tag):
    key, value = tag.split(":", 1) if ":" in tag else ("tag", tag)
    rows = {(row["tag_key"], row["tag_value"]): row for row in _org(cost_world).tags}
    tagged = _tagged(tag)
    ledger = _ledger(cost_world, request_id__in=tagged)
    assert ledger["requests"] > 0
    row = rows[key, value]
    assert (row["cost"], row["requests"], row["unpriced"]) == (ledger["cost"], ledger["requests"], ledger["unpriced"])
    # ... and for one team
    team = costs.tag_costs(costs.Scope([cost_world.world.team_b]), _org(cost_world).period)
    team_rows = {(row["tag_key"], row["tag_value"]): row for row in team}
    ledger_b = _ledger(cost_world, team=cost_world.world.team_b, request_id__in=tagged)
    if ledger_b["requests"]:
        found = team_rows[key, value]
        assert (found["cost"] or Decimal("0"), found["requests"]) == (ledger_b["cost"], ledger_b["requests"])
    else:
        assert (key, value) not in team_rows


def test_user_agent_tags_are_not_request_tags(cost_world):
    assert not [row for row in _org(cost_world).tags if row["tag_key"] == "user-agent"]


def test_latency_percentiles_are_the_ledgers_within_a_bucket(cost_world):
    latency = {row["model"]: row for row in _org(cost_world).latency}
    since = datetime.combine(cost_world.start, time.min, tzinfo=UTC)
    until = datetime.combine(cost_world.end + timedelta(days=1), time.min, tzinfo=UTC)
    for model, row in latency.items():
        values = sorted(
            SpendRecord.objects.filter(time__gte=since, time__lt=until, model_group=model, error_type="")
            .exclude(status="failure")
            .values_list("latency_ms", flat=True)
        )
        assert row["requests"] == len(values)
        for name, quantile in (("p50", 0.5), ("p95", 0.95)):
            exact = values[math.ceil(quantile * len(values)) - 1]
            assert row[name] == LATENCY_BOUNDS_MS[bisect.bisect_right(LATENCY_BOUNDS_MS, exact)], (model, name)
    assert latency["gpt-4o"]["p50"] == 1000 and latency["gpt-4o"]["p95"] == 3000  # 650, 800 and 2400 ms


def test_budget_status_and_projection(cost_world, admin_user):
    from budgets.models import Budget

    world = cost_world.world
    today = timezone.now().date()
    Budget.objects.create(team=world.team_a, amount=Decimal("10.00"), created_by=admin_user)
    book([spend(cost_world.keys["a"], at(today, 0, 1), prompt_tokens=400_000, completion_tokens=50_000)])
    bars = {row["team"]: row for row in costs.budget_bars([world.team_a, world.team_b], today)}
    month_start = today.replace(day=1)
    ledger = SpendRecord.objects.filter(
        team=world.team_a, time__gte=datetime.combine(month_start, time.min, tzinfo=UTC)
    ).aggregate(cost=Sum("cost"))["cost"]
    bar = bars["Team A"]
    assert bar["spend"] == ledger and bar["amount"] == Decimal("10.00")
    assert bar["used"] == ledger / Decimal("10.00")
    elapsed = (today - month_start).days + 1
    days = (bars["Team A"]["projected"] / ledger * elapsed).quantize(Decimal("1"))
    assert days in (Decimal(28), Decimal(29), Decimal(30), Decimal(31))  # spend so far × month length ÷ elapsed
    assert bars["Team B"]["amount"] is None and "no team budget" in bars["Team B"]["scope"]
