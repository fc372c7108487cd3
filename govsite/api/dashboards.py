"""Spend and adoption summaries over the API: the dashboards' own figures (adoption.costs,
adoption.selectors), for the same people (approvers their teams; finance, admins and auditors the org)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from adoption import costs, pages, selectors
from adoption.forms import PeriodForm
from adoption.tables import HIDDEN, by_name
from govsite.accounts import permissions
from govsite.accounts.models import Team
from govsite.api.common import ApiView, errors, validated

NO_DASHBOARD = "Cost and adoption figures are for approvers, finance, admins and auditors; see /me/usage/ for yours."
MONEY = {"max_digits": None, "decimal_places": 6}


def _visible_team(user, slug: str | None) -> Team | None:
    """The team asked for, if the user may see its figures (404 otherwise, like the team dashboards)."""
    if not slug:
        return None
    return get_object_or_404(permissions.teams_with_costs_visible_to(user), slug=slug)


def _shown(row: dict, fields: dict[str, str]) -> dict:
    """`row` renamed by `fields`, with figures about too few people as null and named in `hidden`."""
    out = {new: (None if row.get(old) is HIDDEN else row.get(old)) for old, new in fields.items()}
    out["hidden"] = [new for old, new in fields.items() if row.get(old) is HIDDEN]
    return out


# --- spend -------------------------------------------------------------------------------------------------


# adoption.costs: a group whose every request is unpriced has no known cost, shown as null, never $0.
UNKNOWN_COST = "Ledger cost (USD); null when every request of the row is unpriced (unknown, never $0)."


class PeriodOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendPeriod"

    start = serializers.DateField()
    end = serializers.DateField(help_text="Inclusive.")
    label = serializers.CharField()


class SpendTotalsOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendTotals"

    requests = serializers.IntegerField()
    tokens = serializers.IntegerField()
    cost = serializers.DecimalField(**MONEY, help_text="Ledger cost (USD); unpriced requests add nothing.")
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    unpriced = serializers.IntegerField(help_text="Requests the ledger could not price.")
    flat_rate = serializers.IntegerField()
    refusals_rate_limit = serializers.IntegerField()
    refusals_budget = serializers.IntegerField()
    active_people = serializers.IntegerField(
        allow_null=True,
        default=None,
        help_text="People with a request through a personal key in the period (once across teams); null for one model.",
    )
    cost_per_person = serializers.DecimalField(
        **MONEY, allow_null=True, default=None, help_text="cost ÷ active_people."
    )


class SpendSeriesOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendSeries"

    group = serializers.CharField()
    costs = serializers.ListField(child=serializers.DecimalField(**MONEY), help_text="One per day of `days`.")


class SpendOverTimeOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendOverTime"

    days = serializers.ListField(child=serializers.DateField())
    groups = serializers.ListField(child=serializers.CharField(), help_text="The top ten, then Other.")
    series = SpendSeriesOutput(many=True)


class SpendModelOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendByModel"

    model = serializers.CharField()
    requests = serializers.IntegerField()
    tokens = serializers.IntegerField()
    cost = serializers.DecimalField(**MONEY, allow_null=True, help_text=UNKNOWN_COST)
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    unpriced = serializers.IntegerField()
    flat_rate = serializers.IntegerField()


class SpendTeamOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendByTeam"

    team = serializers.CharField(source="slug", allow_null=True, help_text="Slug; null for unmanaged keys.")
    team_name = serializers.CharField(source="team")
    people = serializers.IntegerField(help_text="People with at least one request in the period.")
    requests = serializers.IntegerField()
    tokens = serializers.IntegerField()
    cost = serializers.DecimalField(**MONEY, allow_null=True, help_text=UNKNOWN_COST)
    cost_per_person = serializers.DecimalField(**MONEY, allow_null=True, help_text="Null without active people.")
    error_rate = serializers.FloatField(allow_null=True)
    refusals_rate_limit = serializers.IntegerField()
    refusals_budget = serializers.IntegerField()
    unpriced = serializers.IntegerField()


class SpendToolOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendByTool"

    client_tool = serializers.CharField()
    tool = serializers.CharField()
    requests = serializers.IntegerField()
    tokens = serializers.IntegerField()
    cost = serializers.DecimalField(**MONEY)


class SpendPersonOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendByPerson"

    person = serializers.CharField()
    email = serializers.CharField()
    requests = serializers.IntegerField()
    tokens = serializers.IntegerField()
    cost = serializers.DecimalField(**MONEY, allow_null=True, help_text=UNKNOWN_COST)
    unpriced = serializers.IntegerField()
    refusals_rate_limit = serializers.IntegerField()
    refusals_budget = serializers.IntegerField()


class SpendOutput(serializers.Serializer):
    class Meta:
        ref_name = "SpendSummary"

    period = PeriodOutput()
    whole_org = serializers.BooleanField(help_text="Includes keys govsite does not manage (no team).")
    teams = serializers.ListField(child=serializers.CharField(), help_text="Slugs of the teams added up.")
    model = serializers.CharField(allow_null=True)
    totals = SpendTotalsOutput()
    over_time = SpendOverTimeOutput(help_text="Cost per day, by team (by model for one team).")
    by_model = SpendModelOutput(many=True, allow_null=True, help_text="Null when filtered to one model.")
    by_team = SpendTeamOutput(many=True)
    by_tool = SpendToolOutput(many=True, allow_null=True, help_text="Null when filtered to one model.")
    by_person = SpendPersonOutput(
        many=True, allow_null=True, help_text="One team's cost per person, for its approvers and the org roles."
    )


class SpendFilter(serializers.Serializer):
    period = serializers.ChoiceField(choices=PeriodForm.PERIODS, required=False, help_text="Default: 30d.")
    start = serializers.DateField(required=False, help_text="For period=custom: the first day.")
    end = serializers.DateField(required=False, help_text="For period=custom: the last day (inclusive).")
    team = serializers.SlugField(required=False, help_text="One team's figures (a team's slug).")
    model = serializers.CharField(required=False, max_length=200, help_text="One model's figures (org roles).")


def _period(query, today):
    """The dashboards' period chooser, with its rules (custom needs both days, at most 400 days...)."""
    form = PeriodForm({k: query[k] for k in ("period", "start", "end") if k in query}, today=today)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    return form.chosen_period()


def _over_time(over_time: dict) -> dict:
    days = over_time["days"]
    return {
        "days": days,
        "groups": over_time["groups"],
        "series": [
            {"group": group, "costs": [over_time["series"][group][day] for day in days]}
            for group in over_time["groups"]
        ],
    }


class SpendSummaryApi(ApiView):
    @extend_schema(
        operation_id="spend_summary",
        summary="Spend: the cost dashboard's figures",
        description="The whole org for finance, admins and auditors; an approver's own teams for them. "
        "Filter by period, one team or one model.",
        tags=["dashboards"],
        parameters=[SpendFilter],
        responses={200: SpendOutput, **errors(400, 404)},
    )
    def get(self, request):
        user = request.user
        permissions.require(permissions.can_view_team_dashboards(user), NO_DASHBOARD)
        filters = validated(SpendFilter, request.query_params)
        today = timezone.now().date()
        period = _period(request.query_params, today)
        team = _visible_team(user, filters.get("team"))
        model = filters.get("model")
        if team is not None:
            scope = costs.Scope([team])
        else:
            whole_org = permissions.can_view_org_costs(user)
            scope = costs.Scope(permissions.teams_with_costs_visible_to(user).order_by("name"), whole_org=whole_org)
        if model:
            permissions.require(permissions.can_view_org_costs(user), "One model's figures are for the org roles.")
            figures = costs.model_dashboard(model=model, period=period, scope=scope)
            models, tools, people = None, None, None
        else:
            sees_people = team is not None and permissions.can_view_team_costs(user, team)
            figures = costs.cost_dashboard(
                scope=scope,
                period=period,
                today=today,
                stack="model" if team else "team",
                people=sees_people,
                one_team=team is not None,
            )
            models, tools, people = figures.models, figures.tools, figures.people
        body = {
            "period": period,
            "whole_org": scope.whole_org,
            "teams": [t.slug for t in scope.teams],
            "model": model or None,
            "totals": figures.totals,
            "over_time": _over_time(figures.over_time),
            "by_model": models,
            "by_team": figures.teams,
            "by_tool": tools,
            "by_person": people,
        }
        return Response(SpendOutput(body).data)


# --- adoption ----------------------------------------------------------------------------------------------


class AdoptionGroupOutput(serializers.Serializer):
    class Meta:
        ref_name = "AdoptionGroup"

    team = serializers.CharField(allow_null=True, help_text="Slug; null for the whole org.")
    name = serializers.CharField()
    people = serializers.IntegerField()
    weekly_active = serializers.FloatField(allow_null=True)
    retention = serializers.FloatField(allow_null=True)
    repeat_use = serializers.FloatField(allow_null=True)
    tools_per_person = serializers.FloatField(allow_null=True)
    median_days_to_first_request = serializers.FloatField(allow_null=True)
    zombie_keys = serializers.IntegerField(allow_null=True)
    unused_keys = serializers.IntegerField(allow_null=True)
    hidden = serializers.ListField(
        child=serializers.CharField(), help_text="Figures about too few people to show (they are null)."
    )


class AdoptionWeekOutput(serializers.Serializer):
    class Meta:
        ref_name = "AdoptionWeek"

    week = serializers.CharField(help_text="ISO week, e.g. 2026-W07.")
    people = serializers.IntegerField()
    active = serializers.IntegerField(allow_null=True)
    rate = serializers.FloatField(allow_null=True)
    retention_base = serializers.IntegerField(allow_null=True)
    retained = serializers.IntegerField(allow_null=True)
    retention = serializers.FloatField(allow_null=True)
    hidden = serializers.ListField(child=serializers.CharField())


class AdoptionOutput(serializers.Serializer):
    class Meta:
        ref_name = "AdoptionSummary"

    as_of = serializers.DateField()
    weeks = serializers.ListField(child=serializers.CharField(), help_text="The report's complete ISO weeks.")
    min_group = serializers.IntegerField(help_text="Figures about fewer people are hidden.")
    groups = AdoptionGroupOutput(many=True, help_text="The org first (org roles), then each team.")
    weekly = AdoptionWeekOutput(many=True, allow_null=True, help_text="Week by week, for one team.")
    definitions = serializers.DictField(child=serializers.CharField())


class AdoptionFilter(serializers.Serializer):
    as_of = serializers.DateField(required=False, help_text="Report the 12 complete ISO weeks before this day's week.")
    team = serializers.SlugField(required=False, help_text="One team (a team's slug).")


GROUP_FIELDS = {
    "team": "team",
    "name": "name",
    "people": "people",
    "weekly_active": "weekly_active",
    "retention": "retention",
    "repeat": "repeat_use",
    "tools": "tools_per_person",
    "median_days": "median_days_to_first_request",
    "zombie": "zombie_keys",
    "unused": "unused_keys",
}
WEEK_FIELDS = {name: name for name in ("week", "people", "active", "rate", "retention_base", "retained", "retention")}


def _group_row(group) -> dict:
    return pages.group_row(group) | {"team": group.team.slug if group.team else None}


class AdoptionSummaryApi(ApiView):
    @extend_schema(
        operation_id="adoption_summary",
        summary="Adoption: weekly-active, retention, repeat use, tools, key activation",
        description="Per team and for the org, never per person; a figure about fewer than `min_group` people "
        "is null and named in `hidden`.",
        tags=["dashboards"],
        parameters=[AdoptionFilter],
        responses={200: AdoptionOutput, **errors(400, 404)},
    )
    def get(self, request):
        user = request.user
        permissions.require(permissions.can_view_team_dashboards(user), NO_DASHBOARD)
        filters = validated(AdoptionFilter, request.query_params)
        as_of = filters.get("as_of") or timezone.now().date()
        team = _visible_team(user, filters.get("team"))
        if team is not None:
            report = selectors.adoption_report(teams=[team], as_of=as_of, whole_org=False)
            weekly = by_name(pages.adoption_tables(report, single=True))["weekly"].rows
        else:
            teams = list(permissions.teams_with_costs_visible_to(user).order_by("name"))
            report = selectors.adoption_report(teams=teams, as_of=as_of, whole_org=permissions.can_view_org_costs(user))
            weekly = None
        groups = ([report.org] if report.org else []) + report.teams
        body = {
            "as_of": report.as_of,
            "weeks": [week.label for week in report.weeks],
            "min_group": report.min_group,
            "groups": [_shown(_group_row(group), GROUP_FIELDS) for group in groups],
            "weekly": None if weekly is None else [_shown(row, WEEK_FIELDS) for row in weekly],
            "definitions": {
                name: text.format(n=report.min_group) if name == "min_group" else text
                for name, text in selectors.DEFINITIONS.items()
            },
        }
        return Response(AdoptionOutput(body).data)
