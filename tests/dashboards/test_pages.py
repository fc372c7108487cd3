"""The pages: who sees what, CSV downloads equal the tables, the period chooser, charts, plotly.js."""

from __future__ import annotations

import re
from datetime import timedelta

import plotly.graph_objects as go
import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from adoption import pages
from budgets.models import SpendRecord
from tests.adoption.builders import at, book, spend
from tests.dashboards.conftest import csv_rows, html_tables
from tests.permissions import APPROVER_A, AUDITOR, MEMBER_A, MEMBER_B

pytestmark = pytest.mark.django_db


def _pages(cost_world):
    team_a = cost_world.world.team_a.slug
    return [
        f"{reverse('dashboard_org')}?{cost_world.query}",
        f"{reverse('dashboard_org')}?{cost_world.query}&stack=model",
        f"{reverse('dashboard_team', args=[team_a])}?{cost_world.query}",
        f"{reverse('dashboard_model', args=['gpt-4o'])}?{cost_world.query}",
        f"{reverse('my_usage')}?{cost_world.query}",
        reverse("adoption_org"),
        reverse("adoption_team", args=[team_a]),
    ]


def _ungrouped(cell: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", cell)


def test_every_table_downloads_as_the_csv_of_what_the_page_shows(cost_world, admin_client):
    for url in _pages(cost_world):
        page = admin_client.get(url)
        assert page.status_code == 200, url
        tables = html_tables(page)
        assert tables, url
        for name, rows in tables.items():
            download = admin_client.get(f"{url}{'&' if '?' in url else '?'}format=csv&table={name}")
            assert download.status_code == 200
            assert download["Content-Type"].startswith("text/csv")
            assert "attachment" in download["Content-Disposition"]
            # The same figures; the page groups them by thousands, the CSV keeps the plain numbers.
            assert csv_rows(download) == [[_ungrouped(cell) for cell in row] for row in rows], f"{url} table {name}"


def test_csv_of_a_table_the_page_does_not_have_is_not_found(cost_world, admin_client):
    assert admin_client.get(f"{reverse('dashboard_org')}?format=csv&table=nope").status_code == 404


def test_every_chart_is_a_valid_plotly_figure_and_has_its_numbers_in_a_table(cost_world, admin_client):
    for url in _pages(cost_world):
        response = admin_client.get(url)
        charts, tables = response.context["charts"], response.context["tables"]
        for chart in charts.values():
            go.Figure(chart.figure)  # raises on any property plotly does not know
            assert chart.table in tables, f"{chart.name} on {url} has no table of its numbers"
            assert f'id="chart-{chart.name}"' in response.content.decode()


def test_plotly_js_is_served_by_the_site_never_a_cdn(cost_world, member_a_client):
    page = member_a_client.get(reverse("my_usage")).content.decode()
    assert f"{reverse('plotly_js')}?v=" in page
    assert "cdn.plot.ly" not in page and "https://cdn" not in page
    script = member_a_client.get(reverse("plotly_js"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("text/javascript")
    assert "max-age=31536000" in script["Cache-Control"]
    assert b"plotly.js" in b"".join(script.streaming_content)[:2000]


def test_end_before_start_is_a_form_error(admin_client):
    url = reverse("dashboard_org")
    response = admin_client.get(f"{url}?period=custom&start=2026-11-10&end=2026-11-01")
    assert response.status_code == 400
    assert "The period ends before it starts." in response.content.decode()
    assert (
        admin_client.get(f"{url}?period=custom&start=2026-11-10&end=2026-11-01&format=csv&table=models").status_code
        == 400
    )
    missing = admin_client.get(f"{url}?period=custom&start=2026-11-10")
    assert missing.status_code == 400 and "Give the last day of the period." in missing.content.decode()
    too_long = admin_client.get(f"{url}?period=custom&start=2024-01-01&end=2026-01-01")
    assert too_long.status_code == 400


@pytest.mark.parametrize("period", ["this_month", "last_month", "7d", "30d", "90d"])
def test_named_periods(cost_world, finance_client, period):
    response = finance_client.get(f"{reverse('dashboard_org')}?period={period}")
    assert response.status_code == 200
    chosen = response.context["dashboard"].period
    assert chosen.start <= chosen.end


def test_unpriced_requests_are_flagged_on_the_page(cost_world, admin_client):
    page = admin_client.get(f"{reverse('dashboard_org')}?{cost_world.query}").content.decode()
    assert "6 requests could not be priced" in page
    team_b = admin_client.get(f"{reverse('dashboard_team', args=['team-b'])}?{cost_world.query}").content.decode()
    assert "3 requests could not be priced" in team_b


def test_an_approver_sees_cost_per_person_only_for_their_teams(cost_world):
    world = cost_world.world
    approver = world.client(APPROVER_A)
    own = approver.get(f"{reverse('dashboard_team', args=['team-a'])}?{cost_world.query}")
    people = html_tables(own)["people"]
    assert {row[1] for row in people[1:]} == {world.users[MEMBER_A].email, world.users[APPROVER_A].email}
    assert approver.get(reverse("dashboard_team", args=["team-b"])).status_code == 404
    # The approver's overview holds their team only: no other team, no org totals, no unmanaged keys.
    overview = approver.get(f"{reverse('dashboard_org')}?{cost_world.query}")
    teams = [row[0] for row in html_tables(overview)["teams"][1:]]
    assert teams == ["Team A"]
    assert world.users[MEMBER_B].email not in overview.content.decode()
    assert approver.get(reverse("dashboard_model", args=["gpt-4o"])).status_code == 403


def test_a_member_sees_only_their_own_page(cost_world):
    world = cost_world.world
    member = world.client(MEMBER_A)
    for name, args in (
        ("dashboard_org", []),
        ("dashboard_team", ["team-a"]),
        ("dashboard_model", ["gpt-4o"]),
        ("adoption_org", []),
        ("adoption_team", ["team-a"]),
    ):
        assert member.get(reverse(name, args=args)).status_code == 403, name
    page = member.get(f"{reverse('my_usage')}?{cost_world.query}")
    text = page.content.decode()
    assert cost_world.keys["a"].alias in text
    assert cost_world.keys["b"].alias not in text  # the approver's key in the same team
    for other in (APPROVER_A, MEMBER_B):
        assert world.users[other].email not in text and world.users[other].full_name not in text


def test_no_page_shows_a_members_adoption_figures_to_another_person(cost_world):
    """Adoption pages hold team figures only: no person's name or email appears on them, for anyone."""
    world = cost_world.world
    for role in ("admin", APPROVER_A):
        client = world.client(role)
        for url in (reverse("adoption_org"), reverse("adoption_team", args=["team-a"])):
            text = client.get(url).content.decode()
            for person in (MEMBER_A, MEMBER_B):
                assert world.users[person].email not in text.replace(world.users[role].email, "")
                assert world.users[person].full_name not in text


def test_an_auditor_reads_but_cannot_change(cost_world):
    auditor = cost_world.world.client(AUDITOR)
    for url in _pages(cost_world):
        assert auditor.get(url).status_code == 200, url
        assert auditor.post(url.split("?")[0], {}).status_code == 405, url
        page = auditor.get(url).content.decode()
        # the only form that posts is the sign-out form of the page header
        assert page.count('method="post"') == 1, url


def test_tags_cannot_inject_script_into_the_charts(cost_world, admin_client):
    book([spend(cost_world.keys["a"], at(cost_world.start, 8), tags=["project:</script><script>alert(1)</script>"])])
    page = admin_client.get(f"{reverse('dashboard_org')}?{cost_world.query}").content.decode()
    assert "<script>alert(1)" not in page


def test_the_calendar_shows_the_persons_days(cost_world, member_a_client):
    response = member_a_client.get(reverse("my_usage"))
    grid = response.context["usage"].calendar["grid"]
    active = {cell["day"] for row in grid for cell in row if cell["requests"]}
    assert cost_world.start in active and cost_world.end in active
    assert len(grid) == 7 and len(grid[0]) == 26


def test_team_cost_tables_feed_their_charts(cost_world, admin_client):
    response = admin_client.get(f"{reverse('dashboard_org')}?{cost_world.query}")
    dashboard = response.context["dashboard"]
    charts = pages.cost_charts(dashboard, one_team=False)
    models = [row["model"] for row in dashboard.models[:15]]
    assert charts["models"].figure["data"][0]["y"] == models[::-1]


def test_the_home_page_shows_own_spend_to_everyone_and_team_spend_to_who_may_see_it(cost_world):
    world = cost_world.world
    since = timezone.now().date() - timedelta(days=29)
    recent = SpendRecord.objects.filter(time__date__gte=since)
    for role, mine, teams in (
        (MEMBER_A, {"user": world.users[MEMBER_A]}, None),
        (APPROVER_A, {"user": world.users[APPROVER_A]}, {"team": world.team_a}),
        (AUDITOR, {"user": world.users[AUDITOR]}, {}),
    ):
        spend = world.client(role).get(reverse("home")).context["spend"]
        assert spend["mine"]["cost"] == (recent.filter(**mine).aggregate(c=Sum("cost"))["c"] or 0), role
        if teams is None:
            assert spend["teams"] is None
        else:
            assert spend["teams"]["cost"] == recent.filter(**teams).aggregate(c=Sum("cost"))["c"] > 0, role
