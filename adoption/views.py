"""Cost dashboards, the usage page and adoption: each page's tables download as CSV with
`?format=csv&table=<name>` (the same selector feeds both)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from django import forms
from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from adoption import costs, pages, selectors
from adoption.charts import plotly_bundled_styles
from adoption.charts import plotly_css as plotly_stylesheet
from adoption.forms import PeriodForm
from adoption.tables import Table, by_name, csv_response
from govsite.accounts import permissions
from govsite.accounts.models import Team
from govsite.replica import on_replica
from govsite.web import login_required, role_required

# The charts use only scatter and bar traces: plotly.js's "basic" distribution (npm plotly.js-basic-dist-min,
# MIT; its version, licence and package.json beside it in static/vendor/plotly/) instead of the full 4.8 MB
# bundle that ships with the plotly package. Its version matches that bundle's (plotly.py's figures).
PLOTLY_DIR = Path(settings.BASE_DIR) / "static" / "vendor" / "plotly"
PLOTLY_JS = PLOTLY_DIR / "plotly-basic.min.js"
PLOTLY_JS_VERSION = json.loads((PLOTLY_DIR / "package.json").read_text())["version"]


@lru_cache(maxsize=1)
def _plotly_js_gzip() -> bytes:
    # Compressed once per process (about 1.2 MB to about 0.4 MB on the wire); the file never changes at run time.
    return gzip.compress(PLOTLY_JS.read_bytes(), compresslevel=9, mtime=0)


NO_DASHBOARD = (
    "Cost and adoption dashboards are for approvers, finance, admins and auditors; your own usage is on “My usage”."
)


def _today():
    return timezone.now().date()


def _respond(request, template: str, tables: list[Table], charts: Callable[[dict], dict], context: dict, filename: str):
    """The page, or one of its tables as CSV. Charts are drawn only for the page."""
    named = by_name(tables)
    bad_input = bool(context.get("form") is not None and context["form"].errors)
    if request.GET.get("format") == "csv":
        if bad_input:
            return HttpResponseBadRequest("The period is not valid: " + context["form"].errors.as_text())
        table = named.get(request.GET.get("table", ""))
        if table is None:
            raise Http404("This page has no such table.")
        return csv_response(table, f"{filename}-{table.name}")
    query = request.GET.copy()
    for name in ("format", "table"):
        query.pop(name, None)
    context.update(
        tables=named,
        charts=charts(named),
        csv_query=query.urlencode(),
        plotly_version=PLOTLY_JS_VERSION,
        plotly_styles=plotly_bundled_styles(PLOTLY_JS),
    )
    return render(request, template, context, status=400 if bad_input else 200)


def _period(request):
    form = PeriodForm(request.GET or None, today=_today())
    return form, form.chosen_period()


def _stack(request, default: str) -> str:
    stack = request.GET.get("stack", default)
    return stack if stack in ("team", "model") else default


# --- cost dashboards -------------------------------------------------------------------------------------------


@require_GET
@role_required(permissions.can_view_team_dashboards, NO_DASHBOARD)
@on_replica
def dashboard_org(request):
    """The whole org for admins, finance and auditors; an approver's own teams for them."""
    whole_org = permissions.can_view_org_costs(request.user)
    teams = list(permissions.teams_with_costs_visible_to(request.user).order_by("name"))
    form, period = _period(request)
    stack = _stack(request, "team")
    dashboard = costs.cost_dashboard(
        scope=costs.Scope(teams, whole_org=whole_org), period=period, today=_today(), stack=stack
    )
    tables = pages.cost_tables(dashboard, link_models=whole_org, one_team=False)
    context = {"form": form, "dashboard": dashboard, "whole_org": whole_org, "stack": stack}
    return _respond(
        request,
        "adoption/dashboard_costs.html",
        tables,
        lambda named: pages.cost_charts(dashboard, one_team=False),
        context,
        f"cost-{'org' if whole_org else 'teams'}-{period.start}-{period.end}",
    )


@require_GET
@role_required(permissions.can_view_team_dashboards, NO_DASHBOARD)
@on_replica
def dashboard_team(request, slug):
    team = get_object_or_404(permissions.teams_with_costs_visible_to(request.user), slug=slug)
    form, period = _period(request)
    stack = _stack(request, "model")
    dashboard = costs.cost_dashboard(
        scope=costs.Scope([team]),
        period=period,
        today=_today(),
        stack=stack,
        people=permissions.can_view_team_costs(request.user, team),
        one_team=True,
    )
    tables = pages.cost_tables(dashboard, link_models=permissions.can_view_org_costs(request.user), one_team=True)
    context = {"form": form, "dashboard": dashboard, "team": team, "stack": stack}
    return _respond(
        request,
        "adoption/dashboard_costs.html",
        tables,
        lambda named: pages.cost_charts(dashboard, one_team=True),
        context,
        f"cost-{team.slug}-{period.start}-{period.end}",
    )


@require_GET
@role_required(permissions.can_view_org_costs, "The model view is for finance, admins and auditors.")
@on_replica
def dashboard_model(request, model):
    form, period = _period(request)
    scope = costs.Scope(Team.objects.order_by("name"), whole_org=True)
    dashboard = costs.model_dashboard(model=model, period=period, scope=scope)
    tables = pages.model_tables(dashboard)
    return _respond(
        request,
        "adoption/dashboard_model.html",
        tables,
        lambda named: pages.model_charts(dashboard, named),
        {"form": form, "dashboard": dashboard},
        f"model-{period.start}-{period.end}",
    )


# --- my usage ----------------------------------------------------------------------------------------------------


@require_GET
@role_required(permissions.can_view_own_usage)
def my_usage(request):
    form, period = _period(request)
    usage = costs.my_usage(user=request.user, period=period, today=_today())
    return _respond(
        request,
        "adoption/my_usage.html",
        pages.usage_tables(usage),
        lambda named: pages.usage_charts(usage),
        {"form": form, "usage": usage},
        f"my-usage-{period.start}-{period.end}",
    )


# --- adoption ----------------------------------------------------------------------------------------------------


class AsOfForm(forms.Form):
    as_of = forms.DateField(
        required=False,
        label="Report up to the week before",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The report covers the 12 complete ISO weeks before this day's week.",
    )


def _as_of(request):
    form = AsOfForm(request.GET or None)
    as_of = (form.cleaned_data.get("as_of") if form.is_valid() else None) or _today()
    return form, as_of


def _adoption_context(form, report) -> dict:
    return {
        "form": form,
        "report": report,
        "definitions": selectors.DEFINITIONS,
        "min_group_note": selectors.DEFINITIONS["min_group"].format(n=report.min_group),
        "first_week": report.weeks[0],
        "last_week": report.weeks[-1],
        "hidden_groups": pages.hidden_groups(report),
    }


@require_GET
@role_required(permissions.can_view_team_dashboards, NO_DASHBOARD)
@on_replica
def adoption_org(request):
    whole_org = permissions.can_view_org_costs(request.user)
    teams = list(permissions.teams_with_costs_visible_to(request.user).order_by("name"))
    form, as_of = _as_of(request)
    report = selectors.adoption_report(teams=teams, as_of=as_of, whole_org=whole_org)
    tables = pages.adoption_tables(report, single=False)
    return _respond(
        request,
        "adoption/adoption.html",
        tables,
        lambda named: pages.adoption_charts(report, named, single=False),
        {**_adoption_context(form, report), "whole_org": whole_org},
        f"adoption-{report.weeks[-1].label}",
    )


@require_GET
@role_required(permissions.can_view_team_dashboards, NO_DASHBOARD)
@on_replica
def adoption_team(request, slug):
    team = get_object_or_404(permissions.teams_with_costs_visible_to(request.user), slug=slug)
    form, as_of = _as_of(request)
    report = selectors.adoption_report(teams=[team], as_of=as_of, whole_org=False)
    tables = pages.adoption_tables(report, single=True)
    return _respond(
        request,
        "adoption/adoption.html",
        tables,
        lambda named: pages.adoption_charts(report, named, single=True),
        {**_adoption_context(form, report), "team": team, "group": report.teams[0]},
        f"adoption-{team.slug}-{report.weeks[-1].label}",
    )


# --- plotly.js, served by the site ------------------------------------------------------------------------------


@require_GET
@login_required
def plotly_js(request):
    """plotly.js's basic distribution, vendored: no CDN. Its URL carries the version, so it is cached for a
    year; it is sent compressed to every browser that accepts gzip."""
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(_plotly_js_gzip(), content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
    else:
        response = FileResponse(PLOTLY_JS.open("rb"), content_type="text/javascript; charset=utf-8")
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@require_GET
@login_required
def plotly_css(request):
    """The stylesheet plotly.js would inject inline (refused by the Content-Security-Policy), from the same
    bundle as plotly_js."""
    part = request.GET.get("part")
    if part:
        css = plotly_bundled_styles(PLOTLY_JS).get(part)
        if css is None:
            raise Http404("No such stylesheet in plotly.js")
    else:
        css = plotly_stylesheet(PLOTLY_JS)
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
