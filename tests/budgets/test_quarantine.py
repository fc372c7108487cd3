"""One bad row never stops the ledger: it is quarantined with its reason, the rest is booked, the
pull moves past it, the push endpoint answers 4xx naming the problem, and an admin's retry (after a
fix) books it once, a discard keeps it out — both audited."""

import hashlib
import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from budgets import services
from budgets.ingest import ingest_spend_rows
from budgets.models import PullState, QuarantinedRow, SpendRecord
from budgets.pull import spend_pull_run
from tests.budgets.conftest import sample, spend_row

pytestmark = pytest.mark.django_db
URL = "/api/ingest/spend"


def _deep(levels: int):
    value: object = "bottom"
    for _ in range(levels):
        value = {"next": value}
    return value


def _payload(**fields) -> dict:
    row = sample("standard-logging-object.plain-gpt-4o")
    row["id"] = f"chatcmpl-{uuid.uuid4()}"
    row["startTime"] = row["endTime"] = row["completionStartTime"] = time.time()
    row.update(fields)
    return row


def _bad_payloads() -> dict[str, dict]:
    nul = _payload()
    nul["metadata"]["user_api_key_alias"] = "alias\x00with-nul"
    deep = _payload()
    deep["metadata"]["spend_logs_metadata"] = _deep(200)
    return {
        "NUL character": nul,
        "tokens out of range": _payload(prompt_tokens=2**80),
        "cost out of range": _payload(response_cost=1e300),
        "tokens of the wrong type": _payload(prompt_tokens={"n": 3}),
        "metadata of the wrong type": _payload(metadata=["not", "an", "object"]),
        "deep nesting": deep,
        "tags holding a NUL": _payload(request_tags=["ok", "b\x00d"]),
        "not a number at all": _payload(response_cost="lots"),
    }


BAD = sorted(_bad_payloads())


@pytest.mark.parametrize("case", BAD)
def test_a_bad_row_in_a_page_is_quarantined_and_the_rest_is_booked(case):
    good_before, good_after = _payload(), _payload()
    bad = _bad_payloads()[case]
    result = ingest_spend_rows([good_before, bad, good_after], "pull")
    assert result.inserted == 2 and result.rejected_count == 1
    assert set(SpendRecord.objects.values_list("request_id", flat=True)) == {good_before["id"], good_after["id"]}
    held = QuarantinedRow.objects.get()
    assert (held.status, held.source, held.request_id) == ("held", "pull", bad["id"])
    assert held.reason and held.field
    assert "\x00" not in held.raw and json.loads(held.raw)["id"] == bad["id"]
    # Read again by the next pull's overlap: still one row in the quarantine.
    ingest_spend_rows([bad], "pull")
    assert QuarantinedRow.objects.count() == 1


@pytest.fixture
def token(admin_user):
    _token, secret = services.ingest_token_create(actor=admin_user, name="litellm test")
    return secret


@pytest.mark.parametrize("case", BAD)
def test_the_push_endpoint_answers_each_bad_row_with_4xx_naming_the_problem(client, token, case):
    bad = _bad_payloads()[case]
    response = client.post(
        URL, data=json.dumps(bad), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["field"] and error["message"]
    assert SpendRecord.objects.count() == 0
    assert QuarantinedRow.objects.get().source == "push"


def test_a_body_nested_too_deeply_to_parse_is_a_400_not_a_500(client, token):
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_deep"


@pytest.mark.django_db(transaction=True)
def test_the_pull_moves_past_a_bad_row(ledger_gateway):
    token = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    now = datetime.now(UTC)
    rows = [spend_row(api_key=token, spend=0.001, start_time=now - timedelta(minutes=m)) for m in (9, 6, 3)]
    rows[1]["prompt_tokens"] = "a great many"
    ledger_gateway.insert_spend_rows(rows)
    result = spend_pull_run()
    assert not result.error and result.rejected == 1
    assert SpendRecord.objects.filter(token_hash=token).count() == 2
    assert QuarantinedRow.objects.get().request_id == rows[1]["request_id"]
    assert PullState.objects.get(name="spend_logs").watermark >= now
    later = spend_row(api_key=token, spend=0.001, start_time=datetime.now(UTC))
    ledger_gateway.insert_spend_rows([later])
    assert not spend_pull_run().error
    assert SpendRecord.objects.filter(token_hash=token).count() == 3


def test_a_retry_after_a_fix_books_the_row_once_and_is_audited(admin_user):
    bad = _bad_payloads()["NUL character"]
    ingest_spend_rows([bad], "pull")
    held = QuarantinedRow.objects.get()
    with pytest.raises(ValidationError):  # unchanged, it still cannot be booked: nothing changes
        services.quarantined_row_retry(row=held, actor=admin_user)
    held.refresh_from_db()
    assert held.status == "held" and not AuditEvent.objects.filter(action__startswith="spend_quarantine").exists()
    fixed = json.loads(held.raw)
    fixed["metadata"]["user_api_key_alias"] = "alias-without-nul"
    services.quarantined_row_retry(row=held, actor=admin_user, raw=json.dumps(fixed))
    held.refresh_from_db()
    assert (held.status, held.resolved_by) == ("booked", admin_user)
    assert SpendRecord.objects.get().request_id == bad["id"]
    event = AuditEvent.objects.get(action="spend_quarantine.retried")
    assert event.data["edited"] is True and event.data["booked"] == 1
    with pytest.raises(services.InvalidTransition):
        services.quarantined_row_retry(row=held, actor=admin_user, raw=json.dumps(fixed))
    assert SpendRecord.objects.count() == 1


def test_a_discard_is_audited_and_a_row_read_again_stays_discarded(admin_user):
    bad = _bad_payloads()["tokens out of range"]
    ingest_spend_rows([bad], "pull")
    services.quarantined_row_discard(row=QuarantinedRow.objects.get(), actor=admin_user, note="gateway bug")
    assert AuditEvent.objects.get(action="spend_quarantine.discarded").data["note"] == "gateway bug"
    ingest_spend_rows([bad], "pull")
    assert list(QuarantinedRow.objects.values_list("status", flat=True)) == ["discarded"]


def test_only_admins_retry_and_discard(auditor_user):
    ingest_spend_rows([_bad_payloads()["tokens out of range"]], "pull")
    with pytest.raises(PermissionDenied):
        services.quarantined_row_discard(row=QuarantinedRow.objects.get(), actor=auditor_user)
