"""Each page runs a fixed number of queries whatever the number of teams, people, keys, budgets and rows:
the same bound holds at two data sizes (no N+1)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from budgets.models import Budget
from govsite.accounts.models import TeamRole
from tests.adoption.builders import PROVISIONED, at, book
from tests.adoption.conftest import cost_rows
from tests.factories import TeamFactory, VirtualKeyFactory, make_user
from tests.permissions import ADMIN, APPROVER_A, MEMBER_A

pytestmark = pytest.mark.django_db

# (role, url name, args): the bound is the same at both sizes.
PAGES = [
    (ADMIN, "dashboard_org", []),
    (ADMIN, "dashboard_team", ["team-a"]),
    (APPROVER_A, "dashboard_team", ["team-a"]),
    (APPROVER_A, "dashboard_org", []),
    (ADMIN, "dashboard_model", ["gpt-4o"]),
    (MEMBER_A, "my_usage", []),
    (ADMIN, "adoption_org", []),
    (APPROVER_A, "adoption_team", ["team-a"]),
]
BOUNDS = {
    # each cost dashboard's summary adds one grouped query: the previous period's spend per team or model
    "dashboard_org": 20,
    "dashboard_team": 22,
    "dashboard_model": 12,
    # budgets: one rollup query per kind on the page (team, person, key), whatever their number; and the
    # navigation's "Needs me" count (one query over every queue the person has)
    "my_usage": 19,
    "adoption_org": 12,
    "adoption_team": 12,
}


def _grow(cost_world, *, teams: int, people: int, days: int):
    """More of everything: teams with people, keys, budgets (team and personal) and traffic; and more
    people, keys and traffic in team A, including personal budgets of member_a."""
    world = cost_world.world
    admin = world.users[ADMIN]
    rows = []
    for n in range(teams):
        team = TeamFactory()
        Budget.objects.create(team=team, amount=Decimal("50"), created_by=admin)
        for m in range(people):
            person = make_user(teams={team: TeamRole.MEMBER, world.team_a: TeamRole.MEMBER})
            keys = {
                "a": VirtualKeyFactory(team=team, owner=person, provisioned_at=PROVISIONED),
                "b": VirtualKeyFactory(team=world.team_a, owner=person, provisioned_at=PROVISIONED),
                "c": VirtualKeyFactory(team=team, owner=person, provisioned_at=PROVISIONED),
            }
            Budget.objects.create(team=team, user=person, amount=Decimal("5"), created_by=admin)
            for day in range(days):
                rows += cost_rows(keys, cost_world.start + timedelta(days=day))[: 4 + (n + m) % 5]
    member = world.users[MEMBER_A]
    Budget.objects.create(team=world.team_a, user=member, amount=Decimal("5"), created_by=admin)
    Budget.objects.create(team=world.team_a, amount=Decimal("500"), created_by=admin)
    for extra in range(3):
        key = VirtualKeyFactory(team=world.team_a, owner=member, provisioned_at=PROVISIONED)
        Budget.objects.create(team=world.team_a, key=key, amount=Decimal("5"), created_by=admin)
        rows += cost_rows({"a": key, "b": key, "c": key}, cost_world.start + timedelta(days=extra))
    rows.append(cost_rows(cost_world.keys, cost_world.end)[0] | {"startTime": at(cost_world.end, 1).isoformat()})
    book(rows)


def _assert_bounds(cost_world, django_assert_max_num_queries):
    for role, name, args in PAGES:
        client = cost_world.world.client(role)
        url = f"{reverse(name, args=args)}?{cost_world.query if 'adoption' not in name else ''}"
        client.get(url)  # the session and per-process caches are warm, as on a real visit
        with django_assert_max_num_queries(BOUNDS[name], info=f"{role} {name}"):
            assert client.get(url).status_code == 200


def test_query_counts_are_the_same_with_little_and_with_more_data(cost_world, django_assert_max_num_queries):
    _assert_bounds(cost_world, django_assert_max_num_queries)
    _grow(cost_world, teams=4, people=4, days=3)
    _assert_bounds(cost_world, django_assert_max_num_queries)
