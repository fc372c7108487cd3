"""Schema-driven testing against the running app: govsite served by gunicorn (a real server process, on the
test database, with the sandbox gateway) and schemathesis calling it over HTTP from the schema it serves at
/api/schema/. Every operation is called as an admin, a member, an approver, finance and an auditor, each with
a personal API token.

Every answer must be a non-5xx, with a documented status code, content type, headers and body. Generation
is deterministic and bounded (EXAMPLES per operation and mode), so the two runs take well under a minute
each; the server's log is printed when one fails.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import schemathesis
from django.db import connection
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.adoption.builders import PROVISIONED, at, book
from tests.adoption.builders import spend as spend_row
from tests.api.helpers import api_operations, make_token
from tests.api.server import start_api_server
from tests.audit.url_cases import _export
from tests.budgets.url_cases import _budget, _increase_kwargs
from tests.factories import TeamFactory, VirtualKeyFactory
from tests.gateway_fixtures import unavailable
from tests.keys.conftest import classification
from tests.keys.url_cases import _key, _policy, _request
from tests.permissions import ADMIN, APPROVER_A, AUDITOR, FINANCE, MEMBER_A, MEMBER_B

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES = 15
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
CONFIG = """
[generation]
# Credentials are ours (the Authorization header below), not generated.
with-security-parameters = false
"""


def _checks():
    load_all_checks()
    return [CHECKS.get_one(name) for name in CHECK_NAMES]


@pytest.fixture(scope="module")
def api_server(django_db_setup, django_db_blocker, sandbox_gateway, tmp_path_factory):
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            unavailable("govsite runs as its own process on the test database, which needs PostgreSQL")
    server = start_api_server(tmp_path_factory.mktemp("api-server"), sandbox_gateway)
    yield server
    server.stop()


@pytest.fixture
def seeded(world, api_server, settings):
    """Objects of both teams, so generated ids sometimes hit real ones (and the 200/409 answers get checked).
    Evidence files are written where the server reads them."""
    settings.EVIDENCE_EXPORT_DIR = api_server.export_dir
    # Spend, some of it unpriced only (a team's and a model's cost is then null, never $0), so the spend
    # summary's answers carry the figures the schema must describe.
    today = timezone.now().date()
    for role, model in ((MEMBER_A, "gpt-4o"), (MEMBER_B, "acme-internal-llm")):
        key = VirtualKeyFactory(team=world.home_team(role), owner=world.users[role], provisioned_at=PROVISIONED)
        book([spend_row(key, at(today, 9), model=model) for _ in range(2)])
    ids = set()
    for team in (world.team_a, world.team_b):
        ids |= {_request(world, team).pk, _key(world, team).pk, _budget(world, team).pk}
        ids |= {_increase_kwargs(world, team)["pk"], _export(world, team)["pk"]}
    return world, sorted(ids)


def _load_schema(server, user) -> schemathesis.BaseSchema:
    """The schema as the running server serves it (to a read token of the person)."""
    return schemathesis.openapi.from_url(
        f"{server.url}/api/schema/",
        headers={"Authorization": f"Bearer {make_token(user, scope='read')}"},
        timeout=30,
        config=schemathesis.Config.from_str(CONFIG),
    )


def _every_operation() -> set[str]:
    """ "METHOD /path" of every endpoint in the URL configuration, as the schema labels them."""
    labels = set()
    for name, method in api_operations():
        try:
            path = reverse(name)
        except NoReverseMatch:
            try:
                path = reverse(name, kwargs={"pk": 4242}).replace("/4242/", "/{id}/")
            except NoReverseMatch:  # the chargeback's months
                path = reverse(name, kwargs={"month": "2026-02"}).replace("/2026-02/", "/{month}/")
        labels.add(f"{method.upper()} {path}")
    return labels


def _valid_bodies(world) -> dict[str, dict]:
    """Bodies that can succeed, mixed into the generated ones so the 2xx answers are checked too."""
    classification("internal")
    today = timezone.now().date()
    return {
        "POST /api/v1/key-requests/": {
            "team": world.team_a.slug,
            "purpose": "schema test",
            "data_classification": "internal",
            "models": [_policy().name],
            "monthly_budget": "10",
            "expiry_days": 7,
        },
        "POST /api/v1/budgets/": {"team": TeamFactory().slug, "amount": "100"},
        "PATCH /api/v1/budgets/{id}/": {"amount": "120", "thresholds": [80]},
        "POST /api/v1/budgets/{id}/increases/": {"amount": "5", "justification": "schema test"},
        "POST /api/v1/approvals/{id}/decide/": {"decision": "approve"},
        "POST /api/v1/budget-increases/{id}/decide/": {"decision": "reject", "note": "schema test"},
        "POST /api/v1/keys/{id}/revoke/": {"reason": "schema test"},
        "POST /api/v1/evidence-exports/": {"period_start": str(today - timedelta(days=30)), "period_end": str(today)},
    }


def _strategy(operation, mode: GenerationMode, ids: list[int], bodies: dict):
    generated = operation.as_strategy(generation_mode=mode)
    if mode != GenerationMode.POSITIVE:
        return generated
    variants = [generated]
    body = bodies.get(operation.label)
    for pk in ids if "{id}" in operation.path else [None]:
        fixed = {"path_parameters": {"id": pk}} if pk else {}
        if pk:
            variants.append(operation.as_strategy(generation_mode=mode, **fixed))
        if body is not None:
            variants.append(operation.as_strategy(generation_mode=mode, body=body, **fixed))
    return st.one_of(variants)


def _run(operation, mode: GenerationMode, session: requests.Session, ids: list[int], bodies: dict) -> int:
    checks = _checks()
    calls = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, mode, ids, bodies))
    def run(case):
        nonlocal calls
        calls += 1
        case.call_and_validate(session=session, checks=checks, timeout=30)

    run()
    return calls


@pytest.mark.parametrize("role", [ADMIN, MEMBER_A, APPROVER_A, FINANCE, AUDITOR])
def test_every_operation_answers_as_documented_by_the_running_server(api_server, seeded, role):
    world, ids = seeded
    user = world.users[role]
    schema = _load_schema(api_server, user)
    assert schema.get_base_url() == api_server.url + "/"  # every call goes to the server process
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {make_token(user, scope='write')}"
    bodies = _valid_bodies(world)
    failures, calls = [], {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == _every_operation(), "the schema leaves out an endpoint"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                calls[operation.label] = calls.get(operation.label, 0) + _run(operation, mode, session, ids, bodies)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing to make invalid (no input)
            except (Exception, BaseExceptionGroup) as exc:  # collected: one run names every failing operation
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    session.close()
    api_server.check_alive()
    assert not failures, "\n\n".join(failures) + f"\n\n--- gunicorn log ---\n{api_server.tail()}"
    assert all(calls.get(op.label) for op in operations), f"operations never called: {calls}"
