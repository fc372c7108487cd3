"""Schema-driven testing: schemathesis calls every operation of /api/schema/ against the app itself (WSGI,
in this process, on the test database), as an admin and as a member with personal API tokens.

Every answer must be a non-5xx, with a documented status code, content type, headers and body. Generation
is deterministic and bounded (EXAMPLES per operation and mode) so `make test` stays well under two minutes.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.api.helpers import make_token, token_client
from tests.audit.url_cases import _export
from tests.budgets.url_cases import _budget, _increase_kwargs
from tests.factories import TeamFactory
from tests.keys.conftest import classification
from tests.keys.url_cases import _key, _policy, _request
from tests.permissions import ADMIN, MEMBER_A

pytestmark = pytest.mark.django_db

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


@pytest.fixture
def seeded(world):
    """Objects of both teams, so generated ids sometimes hit real ones (and the 200/409 answers get checked)."""
    ids = set()
    for team in (world.team_a, world.team_b):
        ids |= {_request(world, team).pk, _key(world, team).pk, _budget(world, team).pk}
        ids |= {_increase_kwargs(world, team)["pk"], _export(world, team)["pk"]}
    return world, sorted(ids)


@pytest.fixture
def wsgi_app():
    """The site's WSGI application on the test's own database connection and transaction. Like Django's test
    client, it must not close that connection around each request (and the test client, used meanwhile,
    switches the closing back on after each of its own requests, hence the check on every call)."""
    handler = get_wsgi_application()

    def app(environ, start_response):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        return handler(environ, start_response)

    try:
        yield app
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _load_schema(user, app) -> schemathesis.BaseSchema:
    response = token_client(user, scope="read").get(reverse("api_schema"))
    assert response.status_code == 200
    schema = schemathesis.openapi.from_dict(json.loads(response.content), config=schemathesis.Config.from_str(CONFIG))
    schema.app = app
    return schema


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


def _run(operation, mode: GenerationMode, headers: dict, ids: list[int], bodies: dict) -> None:
    checks = _checks()

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
        case.call_and_validate(headers=headers, checks=checks)

    run()


@pytest.mark.parametrize("role", [ADMIN, MEMBER_A])
def test_every_operation_answers_as_documented(seeded, wsgi_app, role):
    world, ids = seeded
    user = world.users[role]
    headers = {"Authorization": f"Bearer {make_token(user, scope='write')}"}
    schema = _load_schema(user, wsgi_app)
    bodies = _valid_bodies(world)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, headers, ids, bodies)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing to make invalid (no input)
            except Exception as exc:  # collected, so one run names every operation that failed
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
