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
    if case == "missing request_id":
        assert response.json()["error"]["field"] == "request_id"
    if case == "negative tokens":
        assert response.json()["error"]["field"] == "prompt_tokens"
    assert SpendRecord.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_a_revoked_token_is_refused(client, admin_user):
    row, secret = services.ingest_token_create(actor=admin_user, name="old gateway")
    services.ingest_token_revoke(actor=admin_user, token=row)
    response = _post(client, sample("standard-logging-object.plain-gpt-4o"), secret)
    assert response.status_code == 401
    assert SpendRecord.objects.count() == 0


def test_a_signed_in_session_without_a_token_is_refused(member_a_client):
    """The endpoint is CSRF-exempt only because it never trusts a session: a logged-in browser gets 401."""
    response = member_a_client.post(
        URL, data=json.dumps(sample("standard-logging-object.plain-gpt-4o")), content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert SpendRecord.objects.count() == 0


def test_only_post_is_answered_and_in_json(client, token):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_batch_with_one_bad_row_writes_none_of_it(client, token):
    good = sample("standard-logging-object.plain-gpt-4o")
    bad = sample("standard-logging-object.streamed-claude-sonnet-4-5")
    bad["completion_tokens"] = -1
    response = _post(client, [good, bad], token)
    assert response.status_code == 400
    assert (response.json()["error"]["field"], response.json()["error"]["index"]) == ("completion_tokens", 1)
    assert SpendRecord.objects.count() == 0
