"""POST /api/ingest/spend, where the gateway callback pushes each request's logging payload."""

import json

import pytest

from audit.models import AuditEvent
from budgets import services
from budgets.models import SpendRecord
from tests.budgets.conftest import sample

pytestmark = pytest.mark.django_db
URL = "/api/ingest/spend"


@pytest.fixture
def token(admin_user):
    _token, secret = services.ingest_token_create(actor=admin_user, name="litellm test")
    return secret


def _post(client, body, token="", **extra):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(URL, data=data, content_type="application/json", **headers, **extra)


def test_a_logging_payload_is_booked_once(client, token):
    payload = sample("standard-logging-object.plain-gpt-4o")
    first = _post(client, payload, token)
    assert first.status_code == 200 and first.json()["inserted"] == 1
    assert _post(client, payload, token).json()["duplicates"] == 1
    assert SpendRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no token", 401, "unauthorized"),
        ("wrong token", 401, "unauthorized"),
        ("malformed json", 400, "malformed_json"),
        ("missing request_id", 400, "invalid"),
        ("negative tokens", 400, "invalid"),
        ("ten megabytes", 413, "too_large"),
    ],
)
def test_bad_input_is_refused_with_a_json_error_and_nothing_written(client, token, case, status, code):
    payload = sample("standard-logging-object.plain-gpt-4o")
    events = AuditEvent.objects.count()
    if case == "no token":
        response = _post(client, payload)
    elif case == "wrong token":
        response = _post(client, payload, "gsi_not-a-real-token")
    elif case == "malformed json":
        response = _post(client, '{"id": "x", ', token)
    elif case == "missing request_id":
        payload.pop("id", None)
        payload.pop("request_id", None)
        response = _post(client, payload, token)
    elif case == "negative tokens":
        payload["prompt_tokens"] = -5
        response = _post(client, payload, token)
    else:
        response = _post(client, b"x" * (10 * 1024 * 1024), token)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if case in ("missing request_id", "negative tokens"):
        assert response.json()["error"]["field"] in ("request_id", "id", "prompt_tokens")
    assert SpendRecord.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_a_revoked_token_is_refused(client, admin_user):
    row, secret = services.ingest_token_create(actor=admin_user, name="old gateway")
    services.ingest_token_revoke(actor=admin_user, token=row)
    response = _post(client, sample("standard-logging-object.plain-gpt-4o"), secret)
    assert response.status_code == 401
    assert SpendRecord.objects.count() == 0
