"""Permission rows for the cost dashboards, the usage page and adoption (see tests/permissions.py)."""

from __future__ import annotations

from tests.permissions import ADMIN, ALL_ROLES, APPROVER_A, AUDITOR, FINANCE, UrlCase, register

ORG = frozenset({ADMIN, FINANCE, AUDITOR})
DASHBOARDS = ORG | {APPROVER_A}


def _team(world, team):
    return {"slug": team.slug}


def _no_team(world):
    return {"slug": "no-such-team"}


register(
    # approvers get their own teams' figures; members only their own usage page
    UrlCase("dashboard_org", allowed=DASHBOARDS),
    UrlCase("dashboard_team", kwargs=_team, scoped=True, allowed=DASHBOARDS, unreachable=_no_team),
    UrlCase("dashboard_model", kwargs=lambda w, t: {"model": "openai/gpt-4o"}, allowed=ORG),
    UrlCase("my_usage", allowed=ALL_ROLES),
    UrlCase("adoption_org", allowed=DASHBOARDS),
    UrlCase("adoption_team", kwargs=_team, scoped=True, allowed=DASHBOARDS, unreachable=_no_team),
    UrlCase("plotly_js", allowed=ALL_ROLES),
    UrlCase("plotly_css", allowed=ALL_ROLES),
)
