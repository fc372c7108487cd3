"""Reads for the cost dashboards (org, team, model) and a person's own usage page.

Everything comes from the rollups, never the raw ledger, in a fixed number of queries whatever the
number of teams, people or rows: team-level figures from TeamModelDay and TeamToolDay (a few thousand
rows a month for the whole org), people and keys from budgets.DailyRollup filtered to one team or one
person, tags, latency and activity from their own rollups. Costs are the ledger's: unpriced requests
carry no cost and are counted (`unpriced`) so pages can say so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from adoption.forms import Period, named_period
from adoption.models import (
    LATENCY_BOUNDS_MS,
    LatencyRollup,
    PersonWeek,
    TagRollup,
    TeamModelDay,
    TeamToolDay,
    tools_from_bits,
)
from budgets.generation import remembered
from budgets.models import Budget, ClientTool, DailyRollup
from budgets.selectors import BudgetStatus, budget_statuses
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from keys.models import VirtualKey

ZERO = Decimal("0")
TOP_GROUPS = 10  # a stacked chart shows this many teams or models, the rest as "Other"
MAX_ROWS = 500
UNMANAGED = "(keys govsite does not manage)"
OTHER = "Other"


def _money_sum(name: str):
    return Coalesce(Sum(name), Value(ZERO), output_field=DecimalField(max_digits=22, decimal_places=9))


# The same sums over TeamModelDay (TEAM_SUMS) and DailyRollup (SUMS, for one team's people and keys).
TEAM_SUMS = {
    "requests": Coalesce(Sum("requests"), 0),
    "tokens": Coalesce(Sum("tokens"), 0),
    "cost": _money_sum("cost"),
    "errors": Coalesce(Sum("errors"), 0),
    "unpriced": Coalesce(Sum("unpriced_count"), 0),
    "flat_rate": Coalesce(Sum("flat_rate_count"), 0),
    "refusals_rate_limit": Coalesce(Sum("refusals_rate_limit"), 0),
    "refusals_budget": Coalesce(Sum("refusals_budget"), 0),
}
SUMS = TEAM_SUMS | {"tokens": Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0)}
TOOL_SUMS = {
    "requests": Coalesce(Sum("requests"), 0),
    "tokens": Coalesce(Sum("tokens"), 0),
    "cost": _money_sum("cost"),
    "unpriced": Coalesce(Sum("unpriced_count"), 0),
}


def _rate(part, whole) -> float | None:
    return part / whole if whole else None


def _unpriced_is_not_zero(rows: list[dict]) -> list[dict]:
    """A group whose every request is unpriced has no known cost: None ("—"), never $0."""
    for row in rows:
        if row.get("unpriced") and row["unpriced"] >= row["requests"]:
            row["cost"] = None
            if "cost_per_person" in row:
                row["cost_per_person"] = None
    return rows


class Scope:
    """Which rollup rows a page adds up: some teams, or the whole org (which also holds the spend of
    keys govsite does not manage, booked under no team)."""

    def __init__(self, teams, *, whole_org: bool = False):
        self.teams = list(teams)
        self.whole_org = whole_org
        self._by_id = {team.pk: team for team in self.teams}

    @property
    def team_ids(self) -> list[int]:
        return list(self._by_id)

    def filter(self, queryset: QuerySet) -> QuerySet:
        return queryset if self.whole_org else queryset.filter(team_id__in=self.team_ids)

    def team_name(self, team_id: int | None) -> str:
        if team_id is None:
            return UNMANAGED
        team = self._by_id.get(team_id)
        return team.name if team else f"team #{team_id}"

    def team_slug(self, team_id: int | None) -> str | None:
        team = self._by_id.get(team_id)
        return team.slug if team else None


def in_period(model, scope: Scope, period: Period) -> QuerySet:
    """The rows of a day-keyed rollup (DailyRollup, TeamModelDay, TeamToolDay, TagRollup) in scope and period."""
    return scope.filter(model.objects.filter(day__gte=period.start, day__lte=period.end))


# --- building blocks ---------------------------------------------------------------------------------------


def totals(queryset: QuerySet[TeamModelDay]) -> dict:
    result = queryset.aggregate(**TEAM_SUMS)
    result["error_rate"] = _rate(result["errors"], result["requests"])
    return result


def spend_over_time(queryset: QuerySet, period: Period, by: str, label) -> dict:
    """Cost per day stacked by `by` ("team_id" or "model"): the top groups by cost, the rest as Other."""
    rows = list(queryset.values("day", by).annotate(cost=_money_sum("cost")).order_by())
    per_group: dict = defaultdict(lambda: ZERO)
    for row in rows:
        per_group[row[by]] += row["cost"]
    ranked = sorted(per_group, key=lambda group: (-per_group[group], label(group)))
    shown = ranked[:TOP_GROUPS]
    groups = [label(group) for group in shown] + ([OTHER] if len(ranked) > TOP_GROUPS else [])
    index = {group: label(group) if group in shown else OTHER for group in ranked}
    series = {group: dict.fromkeys(period.dates(), ZERO) for group in groups}
    for row in rows:
        series[index[row[by]]][row["day"]] += row["cost"]
    return {"days": period.dates(), "groups": groups, "series": series}


def by_model(queryset: QuerySet, sums: dict = TEAM_SUMS) -> list[dict]:
    rows = list(queryset.values("model").annotate(**sums).order_by("-cost", "model")[:MAX_ROWS])
    for row in rows:
        row["error_rate"] = _rate(row["errors"], row["requests"])
    return _unpriced_is_not_zero(rows)


def by_tool(queryset: QuerySet, sums: dict = TOOL_SUMS) -> list[dict]:
    labels = dict(ClientTool.choices)
    rows = list(queryset.values("client_tool").annotate(**sums).order_by("-requests", "client_tool"))
    for row in rows:
        row["tool"] = labels.get(row["client_tool"], row["client_tool"])
    return rows


def active_people(scope: Scope, period: Period) -> dict[int, set[int]]:
    """Per team: the people with a request through one of their personal keys of the team in the period
    (from the weekly rows, to the day: a week's weekday bits outside the period do not count)."""
    first_monday = period.start - timedelta(days=period.start.weekday())
    rows = PersonWeek.objects.filter(week__gte=first_monday, week__lte=period.end)
    if not scope.whole_org:
        rows = rows.filter(team_id__in=scope.team_ids)
    people: dict[int, set[int]] = defaultdict(set)
    for team_id, user_id, monday, days in rows.values_list("team_id", "user_id", "week", "days").order_by():
        inside = sum(1 << n for n in range(7) if period.start <= monday + timedelta(days=n) <= period.end)
        if days & inside:
            people[team_id].add(user_id)
    return people


def by_team(queryset: QuerySet[TeamModelDay], scope: Scope, people: dict[int, set[int]]) -> list[dict]:
    """Per team, with its active people (see active_people) and the cost per active person."""
    rows = list(queryset.values("team_id").annotate(**TEAM_SUMS).order_by())
    for row in rows:
        row["people"] = len(people.get(row["team_id"], ()))
        row["team"] = scope.team_name(row["team_id"])
        row["cost_per_person"] = row["cost"] / row["people"] if row["people"] else None
        row["error_rate"] = _rate(row["errors"], row["requests"])
        row["slug"] = scope.team_slug(row["team_id"])
    rows.sort(key=lambda row: (row["team_id"] is None, row["team"].lower()))
    return _unpriced_is_not_zero(rows)


def key_person_rows(queryset: QuerySet[DailyRollup]) -> list[dict]:
    """One team's DailyRollup rows summed per person and key in one pass: what `by_person` and
    `refusals_by_key` add up further, so the team's rollup rows are read once for both."""
    return list(queryset.values("user_id", "key_id", "token_hash", "team_id").annotate(**SUMS).order_by())


def _sum_by(rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
    """`rows` (from key_person_rows) added up per `fields`, in the order each group first appears."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        group = tuple(row[name] for name in fields)
        total = groups.get(group)
        if total is None:
            groups[group] = {**{name: row[name] for name in fields}, **{name: row[name] for name in SUMS}}
        else:
            for name in SUMS:
                total[name] += row[name]
    return list(groups.values())


def by_person(rows: list[dict]) -> list[dict]:
    """Cost per person of one team (from key_person_rows), alphabetical: governance needs the figures, not a
    ranking."""
    rows = _sum_by(rows, ("user_id",))
    people = {
        user.pk: user
        for user in User.objects.filter(pk__in=[row["user_id"] for row in rows if row["user_id"]]).only(
            "email", "full_name", "is_active"
        )
    }
    for row in rows:
        user = people.get(row["user_id"])
        left = user is not None and not user.is_active
        row["person"] = (user.display_name if user else "(no person)") + (" (left)" if left else "")
        row["email"] = user.email if user else ""
    rows.sort(key=lambda row: row["person"].lower())
    return _unpriced_is_not_zero(rows)


def refusals_by_key(rows: list[dict], scope: Scope) -> list[dict]:
    """Keys refused by the gateway for their rate limit (429) or their budget (from key_person_rows): who
    needs higher limits, who is running away. Sorted by team and key, not by count."""
    rows = [
        row
        for row in _sum_by(rows, ("key_id", "token_hash", "team_id"))
        if row["refusals_rate_limit"] > 0 or row["refusals_budget"] > 0
    ][:MAX_ROWS]
    keys = {
        key.pk: key
        for key in VirtualKey.objects.filter(pk__in=[row["key_id"] for row in rows if row["key_id"]]).select_related(
            "owner"
        )
    }
    for row in rows:
        key = keys.get(row["key_id"])
        row["key"] = key.alias if key else f"unmanaged {row['token_hash'][:10]}…"
        row["owner"] = key.owner.display_name if key else ""
        row["team"] = scope.team_name(row["team_id"])
        row["rpm_limit"] = key.rpm_limit if key else None
        row["max_budget"] = key.max_budget if key else None
        row["refused_share"] = _rate(row["refusals_rate_limit"] + row["refusals_budget"], row["requests"])
    rows.sort(key=lambda row: (row["team"].lower(), row["key"]))
    return rows


def histogram_percentile(buckets: dict[int, int], quantile: float) -> int | None:
    """The upper bound (ms) of the bucket holding the nearest-rank `quantile` (None: above the last bound)."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = max(1, math.ceil(quantile * total))
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return LATENCY_BOUNDS_MS[bucket] if bucket < len(LATENCY_BOUNDS_MS) else None
    return None


def latency_by_model(period: Period, models: list[str] | None = None) -> list[dict]:
    """p50 and p95 latency of successful requests per model, from the day × model histograms."""
    queryset = LatencyRollup.objects.filter(day__gte=period.start, day__lte=period.end)
    if models is not None:
        queryset = queryset.filter(model__in=models)
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    for row in queryset.values("model", "bucket").annotate(requests=Sum("requests")).order_by():
        histograms[row["model"]][row["bucket"]] = row["requests"]
    return [
        {
            "model": model,
            "requests": sum(buckets.values()),
            "p50": _latency_value(histogram_percentile(buckets, 0.50)),
            "p95": _latency_value(histogram_percentile(buckets, 0.95)),
            "buckets": buckets,
        }
        for model, buckets in sorted(histograms.items())
    ]


def _latency_value(bound: int | None) -> int | str:
    return bound if bound is not None else f"over {LATENCY_BOUNDS_MS[-1] // 1000} s"


def tag_costs(scope: Scope, period: Period) -> list[dict]:
    queryset = in_period(TagRollup, scope, period)
    rows = list(
        queryset.values("tag_key", "tag_value")
        .annotate(requests=Sum("requests"), cost=_money_sum("cost"), unpriced=Sum("unpriced_count"))
        .order_by("tag_key", "-cost", "tag_value")[:MAX_ROWS]
    )
    return _unpriced_is_not_zero(rows)


# --- budgets ---------------------------------------------------------------------------------------------------


def budget_bars(teams: list[Team], today: date, *, user=None) -> list[dict]:
    """Every team's budget this period: spend so far, the budget, the share used and the spend projected
    for the period's end at the rate so far (budgets' one status selector). A team without a team budget
    is listed with its month's spend. With `user`: that person's own and their keys' budgets in those
    teams too. A fixed number of queries, whatever the number of teams."""
    month = named_period("this_month", today)
    team_ids = [team.pk for team in teams]
    scope = Q(user__isnull=True, key__isnull=True)
    if user is not None:
        scope |= Q(user=user) | Q(key__owner=user)
    budgets = (
        Budget.objects.filter(scope, team_id__in=team_ids, is_active=True)
        .select_related("team", "user", "key")
        .order_by("team__name", "user__email", "key__alias")
    )
    rows = []
    budgeted = set()
    for status in budget_statuses(budgets, datetime.combine(today, time.min, tzinfo=UTC)):
        budget = status.budget
        if not (budget.user_id or budget.key_id):
            budgeted.add(budget.team_id)
        projected = status.projected_spend(today)
        rows.append(
            {
                "team": budget.team.name,
                "slug": budget.team.slug,
                "budget_id": budget.pk,
                "scope": budget.scope_label,
                "period": f"{status.period_start:%Y-%m-%d} – {status.period_end:%Y-%m-%d}"
                if status.running
                else "not running",
                "spend": status.spend,
                "amount": budget.amount,
                "used": status.used,
                "projected": projected,
                "projected_used": projected / budget.amount if projected is not None else None,
                "reaches_100": status.projected_date() if status.running else None,
            }
        )
    unbudgeted = [team for team in teams if team.pk not in budgeted] if user is None else []
    month_spend = (
        dict(
            TeamModelDay.objects.filter(
                team_id__in=[team.pk for team in unbudgeted], day__gte=month.start, day__lte=month.end
            )
            .values("team_id")
            .annotate(cost=_money_sum("cost"))
            .values_list("team_id", "cost")
            .order_by()
        )
        if unbudgeted
        else {}
    )
    for team in unbudgeted:
        status = BudgetStatus(None, month.start, month.end, month_spend.get(team.pk) or ZERO, ZERO)
        rows.append(
            {
                "team": team.name,
                "slug": team.slug,
                "budget_id": None,
                "scope": f"{team.name} (no team budget)",
                "period": f"{month.start:%Y-%m-%d} – {month.end:%Y-%m-%d}",
                "spend": status.spend,
                "amount": None,
                "used": None,
                "projected": status.projected_spend(today),
                "projected_used": None,
                "reaches_100": None,
            }
        )
    rows.sort(key=lambda row: (row["team"].lower(), row["budget_id"] is None, row["scope"].lower()))
    return rows


# --- the pages --------------------------------------------------------------------------------------------------


@dataclass
class CostDashboard:
    scope: Scope
    period: Period
    stack: str
    totals: dict
    over_time: dict
    models: list[dict]
    tools: list[dict]
    teams: list[dict]
    latency: list[dict]
    tags: list[dict]
    budgets: list[dict]
    people: list[dict] | None = None
    refusals: list[dict] | None = None
    summary: list[dict] = field(default_factory=list)


def previous_period(period: Period) -> Period:
    """The same number of days just before: what "change" is measured against."""
    end = period.start - timedelta(days=1)
    return Period(end - timedelta(days=period.days - 1), end, "the period before")


def previous_costs(scope: Scope, period: Period, by: str) -> dict:
    """Cost per team (`by` "team") or per model over the period just before `period`: one grouped query,
    whatever the number of lines."""
    before = in_period(TeamModelDay, scope, previous_period(period))
    column = "team_id" if by == "team" else "model"
    return dict(before.values(column).annotate(cost=_money_sum("cost")).values_list(column, "cost"))


def summary_rows(*, dashboard: CostDashboard, previous: dict, by: str) -> list[dict]:
    """The dashboard's opening lines: per team (the org), per model (one team), with the spend, its change
    against the previous period of the same length (`previous`, from previous_costs), and for teams their
    budget used and projection."""
    if by == "team":
        current = {row["team_id"]: (row["team"], row["cost"], row.get("slug")) for row in dashboard.teams}
        budgets = {
            row["slug"]: row for row in dashboard.budgets if row.get("budget_id") and row["scope"] == row["team"]
        }
    else:
        current = {row["model"]: (row["model"] or "(no model)", row["cost"], None) for row in dashboard.models}
        budgets = {}
    rows = []
    for key, (name, cost, slug) in current.items():
        was = previous.get(key)
        budget = budgets.get(slug) if slug else None
        rows.append(
            {
                "name": name,
                "slug": slug,
                "cost": cost,
                "previous": was,
                "change": (cost - was) / was if cost is not None and was else None,
                "used": budget["used"] if budget else None,
                "projected": budget["projected"] if budget else None,
                "amount": budget["amount"] if budget else None,
            }
        )
    rows.sort(key=lambda row: -(row["cost"] or 0))
    return rows


def _rolled_up(scope: Scope, period: Period, stack: str, one_team: bool) -> dict:
    """What a cost dashboard adds up from the rollups alone (kept by cost_dashboard until they change)."""
    team_days = in_period(TeamModelDay, scope, period)
    models = by_model(team_days)
    by = "team_id" if stack == "team" else "model"
    label = scope.team_name if by == "team_id" else (lambda model: model or "(no model)")
    active = active_people(scope, period)
    figures = totals(team_days)
    # A person active in two teams is one active person of the org.
    figures["active_people"] = len(set().union(*active.values()))
    figures["cost_per_person"] = figures["cost"] / figures["active_people"] if figures["active_people"] else None
    return {
        "totals": figures,
        "over_time": spend_over_time(team_days, period, by, label),
        "models": models,
        "tools": by_tool(in_period(TeamToolDay, scope, period)),
        "teams": [] if one_team else by_team(team_days, scope, active),
        "latency": latency_by_model(period, None if scope.whole_org else [row["model"] for row in models]),
        "tags": tag_costs(scope, period),
        "keys_and_people": key_person_rows(in_period(DailyRollup, scope, period)) if one_team else None,
        "previous": previous_costs(scope, period, "model" if one_team else "team"),
    }


def cost_dashboard(
    *, scope: Scope, period: Period, today: date, stack: str = "team", people: bool = False, one_team: bool = False
) -> CostDashboard:
    """The org dashboard (scope: every team and whole_org, or an approver's teams) with a row per team,
    or one team's (`one_team`) with its keys' refusals and, when the viewer may see cost per person,
    its people.

    The rollups' figures of a named period (this month, the last 30 days, ...) are kept until the rollups change
    (budgets.generation), keyed by the scope's teams with their names, the dates and the layout; a custom period's
    are computed each time, so that what is kept stays bounded whatever dates people ask for. Budgets, people's
    names and keys are read each time."""
    if period.name == "custom":
        rolled = _rolled_up(scope, period, stack, one_team)
    else:
        teams = tuple((team.pk, team.name, team.slug) for team in scope.teams)
        rolled = remembered(
            "cost_dashboard",
            (scope.whole_org, teams, period.start, period.end, stack, one_team),
            lambda: _rolled_up(scope, period, stack, one_team),
        )
    keys_and_people = rolled["keys_and_people"]
    dashboard = CostDashboard(
        scope=scope,
        period=period,
        stack=stack,
        totals=rolled["totals"],
        over_time=rolled["over_time"],
        models=rolled["models"],
        tools=rolled["tools"],
        teams=rolled["teams"],
        latency=rolled["latency"],
        tags=rolled["tags"],
        budgets=budget_bars(scope.teams, today),
        people=by_person(keys_and_people) if one_team and people else None,
        refusals=refusals_by_key(keys_and_people, scope) if one_team else None,
    )
    by = "model" if one_team else "team"
    dashboard.summary = summary_rows(dashboard=dashboard, previous=rolled["previous"], by=by)
    return dashboard


@dataclass
class ModelDashboard:
    model: str
    period: Period
    totals: dict
    over_time: dict
    teams: list[dict]
    latency: dict | None


def model_dashboard(*, model: str, period: Period, scope: Scope) -> ModelDashboard:
    team_days = in_period(TeamModelDay, scope, period).filter(model=model)
    latency = latency_by_model(period, [model])
    return ModelDashboard(
        model=model,
        period=period,
        totals=totals(team_days),
        over_time=spend_over_time(team_days, period, "team_id", scope.team_name),
        teams=by_team(team_days, scope, {}),
        latency=latency[0] if latency else None,
    )


# --- my usage ----------------------------------------------------------------------------------------------------

CALENDAR_WEEKS = 26


@dataclass
class MyUsage:
    period: Period
    totals: dict
    over_time: dict
    models: list[dict]
    tools: list[dict]
    keys: list
    key_rows: list[dict]
    calendar: dict
    budgets: list[dict]
    activity: dict


def _calendar(user, today: date) -> dict:
    """The last 26 ISO weeks (Monday to Sunday) of the person's requests, for a GitHub-style grid."""
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=CALENDAR_WEEKS - 1)
    days = {
        row["day"]: row
        for row in DailyRollup.objects.filter(user=user, day__gte=first, day__lte=today)
        .values("day")
        .annotate(requests=Sum("requests"), cost=_money_sum("cost"))
        .order_by()
    }
    peak = max((row["requests"] for row in days.values()), default=0)
    weeks = []
    for week in range(CALENDAR_WEEKS):
        monday = first + timedelta(weeks=week)
        cells = []
        for offset in range(7):
            day = monday + timedelta(days=offset)
            row = days.get(day)
            requests = row["requests"] if row else 0
            level = 0 if not requests else min(4, 1 + (4 * requests - 1) // peak) if peak else 0
            cells.append(
                {
                    "day": day,
                    "requests": requests,
                    "cost": row["cost"] if row else ZERO,
                    "level": level,
                    "future": day > today,
                }
            )
        weeks.append(
            {
                "monday": monday,
                "cells": cells,
                "active_days": sum(1 for cell in cells if cell["requests"]),
                "requests": sum(cell["requests"] for cell in cells),
                "cost": sum((cell["cost"] for cell in cells), ZERO),
            }
        )
    # rows of the grid are weekdays (Monday first), columns are weeks
    grid = [[week["cells"][weekday] for week in weeks] for weekday in range(7)]
    return {"weeks": weeks, "grid": grid, "first": first}


def _own_activity(user, today: date) -> dict:
    """The person's own numbers, counted the way the team adoption figures count them (personal keys)."""
    this_monday = today - timedelta(days=today.weekday())
    weeks = PersonWeek.objects.filter(user=user, week__gte=this_monday - timedelta(weeks=4), week__lte=this_monday)
    days, bits = set(), 0
    for monday, active, tools in weeks.values_list("week", "days", "tools").order_by():
        days |= {monday + timedelta(days=n) for n in range(7) if active & (1 << n)}
        bits |= tools
    return {
        "active_days_14": sum(1 for day in days if today - timedelta(days=14) < day <= today),
        "active_days_28": sum(1 for day in days if today - timedelta(days=28) < day <= today),
        "tools_28": tools_from_bits(bits),
    }


def my_usage(*, user, period: Period, today: date) -> MyUsage:
    queryset = DailyRollup.objects.filter(user=user, day__gte=period.start, day__lte=period.end)
    first_use = DailyRollup.objects.filter(key_id=OuterRef("pk")).order_by("day").values("day")[:1]
    last_use = DailyRollup.objects.filter(key_id=OuterRef("pk")).order_by("-day").values("day")[:1]
    keys = list(
        VirtualKey.objects.filter(owner=user)
        .select_related("team")
        .annotate(first_day=Subquery(first_use), last_day=Subquery(last_use))
        .order_by("-created_at")
    )
    key_rows = list(queryset.values("key_id").annotate(**SUMS).order_by())
    aliases = {key.pk: key for key in keys}
    for row in key_rows:
        key = aliases.get(row["key_id"])
        row["key"] = key.alias if key else "(a key you no longer own)"
        row["team"] = key.team.name if key else ""
    key_rows.sort(key=lambda row: row["key"])
    teams = list(Team.objects.filter(memberships__user=user).order_by("name"))
    figures = queryset.aggregate(**SUMS)
    figures["error_rate"] = _rate(figures["errors"], figures["requests"])
    return MyUsage(
        period=period,
        totals=figures,
        over_time=spend_over_time(queryset, period, "model", lambda model: model or "(no model)"),
        models=by_model(queryset, SUMS),
        tools=by_tool(queryset, SUMS),
        keys=keys,
        key_rows=key_rows,
        calendar=_calendar(user, today),
        budgets=budget_bars(teams, today, user=user),
        activity=_own_activity(user, today),
    )


def home_summary(*, user, today: date) -> dict:
    """The home page's spend card: the person's own last 30 days, and the teams whose cost they may see."""
    period = named_period("30d", today)
    mine = DailyRollup.objects.filter(user=user, day__gte=period.start, day__lte=period.end).aggregate(
        requests=TEAM_SUMS["requests"], cost=TEAM_SUMS["cost"]
    )
    summary = {"period": period, "mine": mine, "teams": None}
    if permissions.can_view_team_dashboards(user):
        whole_org = permissions.can_view_org_costs(user)
        scope = Scope(permissions.teams_with_costs_visible_to(user), whole_org=whole_org)
        summary["teams"] = totals(in_period(TeamModelDay, scope, period)) | {"whole_org": whole_org}
    return summary
