"""Every API endpoint has a permission row (tests/api/api_cases.py), and every row passes the four checks."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.api.api_cases import CASES, ApiCase
from tests.api.helpers import api_operations, call, token_client
from tests.permissions import Call, World


def test_every_api_operation_has_a_permission_row():
    missing = sorted(api_operations() - {(case.name, case.method) for case in CASES})
    assert not missing, f"API operations without a permission row in tests/api/api_cases.py: {missing}"


def test_every_row_names_an_operation_that_exists():
    stale = sorted({(case.name, case.method) for case in CASES} - api_operations())
    assert not stale, f"permission rows for API operations that do not exist: {stale}"


def test_every_row_that_writes_says_what_it_changes():
    vague = sorted(case.id for case in CASES if case.writes and case.effect is None)
    assert not vague, f"rows that write but name no `effect` (what the allowed call changes): {vague}"


def test_no_operation_has_two_rows():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def _events() -> int:
    return AuditEvent.objects.count()


def _error_code(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]["code"]


def _call(case: ApiCase, client: Client, world: World, team, url: str | None = None):
    return call(client, case.method, url or case.url(world, team), case.body(world, team) if case.body else None)


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_anonymous_gets_401(case, world):
    before = _events()
    response = _call(case, Client(), world, world.team_a)
    assert response.status_code == 401, f"anonymous {case.id}: {response.status_code}"
    assert _error_code(response) == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert _events() == before


@pytest.mark.django_db
@pytest.mark.parametrize("case", [c for c in CASES if c.denied], ids=lambda c: c.id)
def test_role_without_permission_gets_403_and_nothing_is_written(case, world):
    for role in case.denied:
        before = _events()
        response = _call(case, token_client(world.users[role]), world, world.home_team(role))
        assert response.status_code == 403, f"{role} on {case.id}: {response.status_code} {response.content[:300]}"
        assert _error_code(response) == "permission_denied"
        assert _events() == before, f"{role} was refused {case.id} but audit events were written"


@pytest.mark.django_db
@pytest.mark.parametrize("case", [c for c in CASES if c.checks_other_team], ids=lambda c: c.id)
def test_another_teams_object_is_not_found(case, world):
    for role in case.allowed:
        client = token_client(world.users[role])
        if case.unreachable is not None:
            before = _events()
            url = reverse(case.name, kwargs=case.unreachable(world))
            response = _call(case, client, world, world.home_team(role), url)
            assert response.status_code == 404, f"{role} on unreachable {case.id}: {response.status_code}"
            assert _error_code(response) == "not_found"
            assert _events() == before
        other = world.other_team(role)
        if case.scoped and other is not None:
            before = _events()
            response = _call(case, client, world, other)
            assert response.status_code == 404, f"{role} on {other.slug}'s {case.id}: {response.status_code}"
            assert _error_code(response) == "not_found"
            assert _events() == before, f"{role} got 404 on {case.id} but audit events were written"


@pytest.mark.django_db
@pytest.mark.parametrize("auth", ["token", "session"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_allowed_role_succeeds(case, auth, world):
    for role in case.allowed:
        team = world.home_team(role)
        kwargs = case.kwargs(world, team) if case.kwargs else {}
        body = case.body(world, team) if case.body else None
        done = Call(world, team, world.users[role], kwargs, body or {})
        if case.effect is not None:
            assert not case.effect(done), f"{role} on {case.id}: its effect already holds before the call"
        url = reverse(case.name, kwargs=kwargs or None)
        if case.query:
            url = f"{url}?{urlencode(case.query(world, team))}"
        before = _events()
        client = token_client(world.users[role]) if auth == "token" else world.client(role)
        response = call(client, case.method, url, body)
        assert response.status_code == case.ok, (
            f"{role} on {case.id} ({auth}): {response.status_code}, expected {case.ok}: {response.content[:500]}"
        )
        assert response["Content-Type"].startswith(case.content_type)
        if case.writes:
            assert _events() > before, f"{role} changed state through {case.id} but no audit event was written"
        if case.effect is not None:
            assert case.effect(done), (
                f"{role} on {case.id} ({auth}): answered {response.status_code} but changed nothing"
            )
