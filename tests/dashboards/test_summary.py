"""Pages that read at a glance: a cost dashboard opens with one line per team (per model for one team) with the
spend, its change against the previous period of the same length (the ledger's sums), and the tables folded
under their titles; the adoption page shows the groups large enough and names the hidden ones once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse

from budgets.models import SpendRecord
from tests.adoption.conftest import adoption_world, cost_world, flat_rate_kimi  # noqa: F401

pytestmark = pytest.mark.django_db


def _ledger(team, start, end):
    return SpendRecord.objects.filter(team=team, time__date__gte=start, time__date__lte=end).aggregate(
        total=Sum("cost")
    )["total"]


def test_the_org_dashboard_opens_with_a_line_per_team_and_its_change(cost_world, admin_client):  # noqa: F811
    response = admin_client.get(f"{reverse('dashboard_org')}?{cost_world.query}")
    summary = {row["name"]: row for row in response.context["dashboard"].summary}
    world = cost_world.world
    days = (cost_world.end - cost_world.start).days + 1
    before = (cost_world.start - timedelta(days=days), cost_world.start - timedelta(days=1))
    for team in (world.team_a, world.team_b):
        row = summary[team.name]
        assert row["cost"] == _ledger(team, cost_world.start, cost_world.end)
        assert row["previous"] == _ledger(team, *before)
        assert row["change"] == (row["cost"] - row["previous"]) / row["previous"]
    body = response.content.decode()
    assert body.index("Summary:") < body.index('id="table-spend_over_time"')
    assert '<details class="card figure-table" id="table-models">' in body  # the detail is folded


def test_one_teams_dashboard_opens_with_a_line_per_model(cost_world, approver_a_client):  # noqa: F811
    team = cost_world.world.team_a
    response = approver_a_client.get(f"{reverse('dashboard_team', args=[team.slug])}?{cost_world.query}")
    models = [row["name"] for row in response.context["dashboard"].summary]
    assert "gpt-4o" in models and "claude-sonnet-4-5" in models


def test_adoption_shows_the_groups_large_enough_and_names_the_hidden_ones_once(adoption_world):  # noqa: F811
    from django.test import Client

    from tests.factories import make_user

    admin = make_user(org_roles=["admin"], email="adopter@example.com")
    client = Client()
    client.force_login(admin)
    response = client.get(reverse("adoption_org"), {"as_of": "2026-11-16"})
    assert response.context["hidden_groups"] == ["Four"]
    summary = response.context["tables"]["summary"]
    assert [row["name"] for row in summary.rows] == ["Whole org", "Five"]
    assert response.content.decode().count("Not shown, too few people") == 1
