"""Spend and adoption summaries over the API: the dashboards' figures, for the dashboards' readers."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from budgets.models import SpendRecord
from tests.adoption.builders import PROVISIONED, at, book
from tests.adoption.builders import spend as spend_row
from tests.api.helpers import token_client
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db


def _ledger_cost(**filters) -> Decimal:
    return SpendRecord.objects.filter(**filters).aggregate(cost=Sum("cost"))["cost"] or Decimal("0")


@pytest.fixture
def spend(world):
    """Requests booked through the real ingest: member A and approver A in team A, member B in team B."""
    today = timezone.now().date()
    keys = {
        role: VirtualKeyFactory(team=world.home_team(role), owner=world.users[role], provisioned_at=PROVISIONED)
        for role in ("member_a", "approver_a", "member_b")
    }
    rows = (
        [spend_row(keys["member_a"], at(today, 9), model="gpt-4o", tool="claude-code") for _ in range(10)]
        + [
            spend_row(keys["approver_a"], at(today - timedelta(days=1)), model="gpt-4o-mini", tool="codex")
            for _ in range(4)
        ]
        + [spend_row(keys["member_b"], at(today, 9), model="gpt-4o", tool="other") for _ in range(3)]
    )
    book(rows)
    world.keys = keys
    return world


def _get(user, url_name, **query):
    return token_client(user, scope="read").get(reverse(url_name), query)


def test_finance_sees_the_whole_orgs_spend(spend):
    body = _get(spend.users["finance"], "api_spend_summary").json()
    total = _ledger_cost()
    assert total > 0
    assert body["whole_org"] is True and body["period"]["label"] == "the last 30 days"
    assert body["totals"]["requests"] == 17 and Decimal(body["totals"]["cost"]) == total
    assert {row["team"]: Decimal(row["cost"]) for row in body["by_team"]} == {
        "team-a": _ledger_cost(team=spend.team_a),
        "team-b": _ledger_cost(team=spend.team_b),
    }
    assert {row["model"] for row in body["by_model"]} == {"gpt-4o", "gpt-4o-mini"}
    assert sum(Decimal(c) for series in body["over_time"]["series"] for c in series["costs"]) == total
    assert body["by_person"] is None
    people = set(SpendRecord.objects.values_list("user_id", flat=True))  # every key here is a personal key
    assert body["totals"]["active_people"] == len(people) == 3
    assert Decimal(body["totals"]["cost_per_person"]) == (total / 3).quantize(Decimal("0.000001"))


def test_an_approver_sees_their_team_with_its_people_and_not_another(spend):
    approver = spend.users["approver_a"]
    body = _get(approver, "api_spend_summary").json()
    assert body["whole_org"] is False and body["teams"] == ["team-a"]
    assert Decimal(body["totals"]["cost"]) == _ledger_cost(team=spend.team_a)
    team = _get(approver, "api_spend_summary", team="team-a").json()
    assert {row["email"] for row in team["by_person"]} == {"member-a@example.com", "approver-a@example.com"}
    other = _get(approver, "api_spend_summary", team="team-b")
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert _get(approver, "api_spend_summary", model="gpt-4o").status_code == 403


def test_one_models_figures_and_a_period(spend):
    body = _get(spend.users["admin"], "api_spend_summary", model="gpt-4o", period="7d").json()
    assert body["model"] == "gpt-4o" and body["by_model"] is None
    assert body["totals"]["requests"] == 13
    yesterday = (timezone.now().date() - timedelta(days=1)).isoformat()
    custom = _get(spend.users["admin"], "api_spend_summary", start=yesterday, end=yesterday).json()
    assert custom["totals"]["requests"] == 4 and custom["period"]["start"] == yesterday


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "custom"}, "start"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "end"),
        ({"start": "2019-01-01", "end": "2019-01-02"}, "start"),
        ({"period": "forever"}, "period"),
        ({"start": "soon"}, "start"),
    ],
)
def test_a_bad_period_is_a_400_naming_the_field(spend, query, field):
    response = _get(spend.users["admin"], "api_spend_summary", **query)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_members_have_no_dashboards(spend):
    for url_name in ("api_spend_summary", "api_adoption_summary"):
        assert _get(spend.users["member_a"], url_name).status_code == 403


def test_adoption_hides_figures_about_too_few_people(spend):
    today = timezone.now().date()
    book([spend_row(spend.keys["member_a"], at(today - timedelta(days=days))) for days in range(7, 30)])
    body = _get(spend.users["auditor"], "api_adoption_summary").json()
    assert body["min_group"] == 5 and len(body["weeks"]) == 12
    org, team_a = body["groups"][0], body["groups"][1]
    assert org["team"] is None and team_a["team"] == "team-a" and team_a["people"] < 5
    assert team_a["weekly_active"] is None and "weekly_active" in team_a["hidden"]
    assert "min_group" in body["definitions"] and "{n}" not in body["definitions"]["min_group"]


def test_adoption_of_one_team_week_by_week(spend, settings):
    settings.ADOPTION_MIN_GROUP = 1
    today = timezone.now().date()
    book([spend_row(spend.keys["member_a"], at(today - timedelta(days=days))) for days in range(7, 30)])
    body = _get(spend.users["approver_a"], "api_adoption_summary", team="team-a").json()
    assert [group["team"] for group in body["groups"]] == ["team-a"]
    group = body["groups"][0]
    assert "weekly_active" not in group["hidden"] and isinstance(group["weekly_active"], float)
    assert len(body["weekly"]) == 12 and max(week["active"] or 0 for week in body["weekly"]) == 1
    assert _get(spend.users["approver_a"], "api_adoption_summary", team="team-b").status_code == 404


def test_a_group_whose_every_request_is_unpriced_has_a_null_cost_and_the_schema_says_so(world, admin_user):
    """Unknown, never $0 (adoption.costs); the schema allows the null the response carries."""
    key = VirtualKeyFactory(team=world.team_b, owner=world.users["member_b"], provisioned_at=PROVISIONED)
    book([spend_row(key, at(timezone.now().date(), 9), model="acme-internal-llm") for _ in range(2)])
    body = _get(admin_user, "api_spend_summary").json()
    assert {row["team"]: row["cost"] for row in body["by_team"]} == {"team-b": None}
    assert {row["model"]: row["cost"] for row in body["by_model"]} == {"acme-internal-llm": None}
    team_b = _get(admin_user, "api_spend_summary", team="team-b").json()
    assert [row["cost"] for row in team_b["by_person"]] == [None]

    schema = token_client(admin_user, scope="read").get("/api/schema/", {"format": "json"}).json()
    for name in ("SpendByTeam", "SpendByModel", "SpendByPerson"):
        assert schema["components"]["schemas"][name]["properties"]["cost"]["nullable"] is True, name
