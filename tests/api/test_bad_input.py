"""Bad input through the API: wrong types, unknown fields, oversized or malformed bodies, another team's
ids. Each is a 4xx whose JSON names the field, and nothing is written."""

import io
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from budgets.models import Budget, BudgetIncreaseRequest
from govsite.api.common import LimitedJSONParser
from govsite.api.errors import MAX_BODY_BYTES, PayloadTooLarge
from keys.models import KeyRequest, VirtualKey
from tests.api.helpers import call, token_client
from tests.keys.conftest import classification

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget_a(team_a, admin_user):
    return Budget.objects.create(
        team=team_a, amount=Decimal("100"), approver_limit=Decimal("50"), created_by=admin_user
    )


@pytest.fixture
def budget_b(team_b, admin_user):
    return Budget.objects.create(team=team_b, amount=Decimal("100"), created_by=admin_user)


def _key_request(team, model, /, **overrides):
    classification("internal")
    body = {
        "team": team.slug,
        "purpose": "Codex for migrations",
        "data_classification": "internal",
        "models": [model.name],
        "monthly_budget": "40",
        "expiry_days": 30,
    }
    body.update(overrides)
    return body


def _written() -> tuple[int, ...]:
    return (
        KeyRequest.objects.count(),
        VirtualKey.objects.count(),
        Budget.objects.count(),
        BudgetIncreaseRequest.objects.count(),
        AuditEvent.objects.count(),
    )


def _fields(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return error["fields"]


# --- wrong types and unknown fields -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"monthly_budget": "lots"}, "monthly_budget"),
        ({"monthly_budget": [40]}, "monthly_budget"),
        ({"monthly_budget": "1e400"}, "monthly_budget"),
        ({"monthly_budget": "NaN"}, "monthly_budget"),
        ({"expiry_days": "thirty"}, "expiry_days"),
        ({"expiry_days": 10**30}, "expiry_days"),
        ({"rpm_limit": 10**12}, "rpm_limit"),
        ({"models": "gpt-4o"}, "models"),
        ({"team": 5}, "team"),
        ({"team": {"slug": "team-a"}}, "team"),
        ({"purpose": None}, "purpose"),
        ({"purpose": "x\x00y"}, "purpose"),
        ({"kind": "robot"}, "kind"),
        ({"colour": "blue", "size": 3}, "colour"),
    ],
)
def test_a_key_request_with_a_wrong_type_or_unknown_field_is_400_and_writes_nothing(
    member_a_user, team_a, open_model, change, field
):
    before = _written()
    response = call(
        token_client(member_a_user), "post", reverse("api_key_requests"), _key_request(team_a, open_model, **change)
    )
    assert field in _fields(response)
    assert _written() == before


def test_every_unknown_field_is_named(member_a_user, team_a, open_model):
    body = _key_request(team_a, open_model, colour="blue", size=3)
    fields = _fields(call(token_client(member_a_user), "post", reverse("api_key_requests"), body))
    assert fields == {"colour": ["Unknown field."], "size": ["Unknown field."]}


def test_unknown_fields_are_named_with_the_other_fields_errors(member_a_user, team_a, open_model):
    before = _written()
    body = {"team": team_a.slug, "monthly_budget": "lots", "colour": "blue"}
    fields = _fields(call(token_client(member_a_user), "post", reverse("api_key_requests"), body))
    assert fields["colour"] == ["Unknown field."]
    assert {"monthly_budget", "purpose", "data_classification", "models"} <= set(fields)
    assert "team" not in fields
    assert _written() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "a lot"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"thresholds": "50, 80"}, "thresholds"),
        ({"thresholds": [50, "eighty"]}, "thresholds.1"),
        ({"thresholds": [0, 5000]}, "thresholds"),
        ({"block_at_100": "maybe"}, "block_at_100"),
        ({"period": "weekly"}, "period"),
        ({"period": "custom"}, "period_start"),
        ({"period": "custom", "period_start": "2026-02-01", "period_end": "2026-01-01"}, "period_end"),
        ({"period_start": "yesterday"}, "period_start"),
        ({"user": "nobody@example.com"}, "user"),
        ({"key": "one"}, "key"),
        ({"owner": "admin@example.com"}, "owner"),
    ],
)
def test_a_budget_with_a_wrong_type_is_400_naming_the_field(admin_user, team_a, change, field):
    before = _written()
    body = {"team": team_a.slug, "amount": "100", **change}
    assert field in _fields(call(token_client(admin_user), "post", reverse("api_budgets"), body))
    assert _written() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "lots", "justification": "x"}, "amount"),
        ({"amount": "10", "justification": ""}, "justification"),
        ({"amount": "10", "justification": "x", "until": "next week"}, "until"),
        ({"amount": "10", "justification": "x", "until": "2001-01-01"}, "until"),
        ({"amount": "10", "justification": "x", "budget": 7}, "budget"),
    ],
)
def test_a_budget_increase_with_bad_input_is_400_naming_the_field(member_a_user, budget_a, body, field):
    before = _written()
    url = reverse("api_budget_increase_create", args=[budget_a.pk])
    assert field in _fields(call(token_client(member_a_user), "post", url, body))
    assert _written() == before


@pytest.mark.parametrize("body", [[], "approve", 42, None, {"decision": "yes"}, {"decision": "approve", "by": 1}])
def test_a_decision_that_is_not_an_object_or_has_a_wrong_value_is_400(
    approver_a_user, member_a_user, team_a, open_model, file_request, body
):
    request = file_request(member_a_user, team_a, [open_model])
    before = _written()
    client = token_client(approver_a_user)
    url = reverse("api_approval_decide", args=[request.pk])
    response = client.post(url, data=json.dumps(body), content_type="application/json")
    _fields(response)
    assert _written() == before
    assert KeyRequest.objects.get(pk=request.pk).status == "pending"


@pytest.mark.parametrize(
    ("url_name", "query", "field"),
    [
        ("api_keys", "page=abc", "page"),
        ("api_keys", "page=0", "page"),
        ("api_keys", "page_size=-1", "page_size"),
        ("api_keys", "scope=everything", "scope"),
        ("api_keys", "status=lost", "status"),
        ("api_keys", "team=not%20a%20slug", "team"),
        ("api_key_requests", "status=maybe", "status"),
        ("api_budget_increases", "status=x", "status"),
        ("api_audit_events", "date_from=yesterday", "date_from"),
        ("api_audit_events", "date_from=2026-02-01&date_to=2026-01-01", "date_to"),
        ("api_audit_events", "team=no-such-team", "team"),
        ("api_audit_events", "actor=a%00b", "actor"),
    ],
)
def test_a_filter_of_the_wrong_type_is_400_naming_it(admin_user, url_name, query, field):
    response = token_client(admin_user).get(f"{reverse(url_name)}?{query}")
    assert field in _fields(response)


def test_page_size_is_capped_and_a_page_past_the_end_is_404(admin_user):
    client = token_client(admin_user)
    body = client.get(reverse("api_audit_events") + "?page_size=100000").json()
    assert body["count"] == 0 and body["results"] == []
    response = client.get(reverse("api_audit_events") + "?page=99")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- bodies that are too large, malformed or not JSON -----------------------------------------------------


@pytest.mark.parametrize("url_name", ["api_key_requests", "api_budgets"])
def test_a_body_over_1_mb_is_413_and_writes_nothing(admin_user, member_a_user, team_a, open_model, url_name):
    user = admin_user if url_name == "api_budgets" else member_a_user
    body = _key_request(team_a, open_model, purpose="x" * (MAX_BODY_BYTES + 10))
    before = _written()
    response = call(token_client(user), "post", reverse(url_name), body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert _written() == before


def test_a_body_over_1_mb_without_a_length_is_refused_too():
    # A chunked body has no Content-Length: the parser itself stops reading after 1 MB.
    with pytest.raises(PayloadTooLarge):
        LimitedJSONParser().parse(io.BytesIO(b'{"purpose": "' + b"x" * MAX_BODY_BYTES + b'"}'))


def test_malformed_json_is_a_400_parse_error(member_a_user):
    response = token_client(member_a_user).post(
        reverse("api_key_requests"), data='{"team": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_json_constants_are_not_numbers(member_a_user, team_a, open_model):
    raw = json.dumps(_key_request(team_a, open_model)).replace('"40"', "NaN")
    response = token_client(member_a_user).post(reverse("api_key_requests"), data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"


def test_a_form_encoded_body_is_415(member_a_user):
    response = token_client(member_a_user).post(reverse("api_key_requests"), {"team": "team-a"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_an_unknown_api_address_is_a_json_404(member_a_user):
    for url in ("/api/v1/nothing-here/", "/api/v1/keys/-1/", "/api/v1/keys/1/explode/"):
        response = token_client(member_a_user).get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


def test_a_wrong_method_is_405(member_a_user):
    response = call(token_client(member_a_user), "delete", reverse("api_key_requests"))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- another team's ids ------------------------------------------------------------------------------------


def test_a_key_request_in_another_team_is_refused_by_field(member_a_user, team_b, open_model):
    before = _written()
    body = _key_request(team_b, open_model)
    assert "team" in _fields(call(token_client(member_a_user), "post", reverse("api_key_requests"), body))
    assert _written() == before


def test_a_service_key_owned_by_someone_of_another_team_is_refused(member_a_user, member_b_user, team_a, open_model):
    before = _written()
    body = _key_request(team_a, open_model, kind="service", service_name="bot", owner=member_b_user.email)
    assert "owner" in _fields(call(token_client(member_a_user), "post", reverse("api_key_requests"), body))
    assert _written() == before


def test_another_teams_budget_and_objects_are_not_found(
    member_a_user, budget_b, member_b_user, team_b, open_model, file_request
):
    client = token_client(member_a_user)
    before = _written()
    increase = call(
        client, "post", reverse("api_budget_increase_create", args=[budget_b.pk]), {"amount": "5", "justification": "x"}
    )
    assert increase.status_code == 404
    request = file_request(member_b_user, team_b, [open_model])
    before = _written()
    assert call(client, "post", reverse("api_key_request_cancel", args=[request.pk])).status_code == 404
    assert client.get(reverse("api_budget_detail", args=[budget_b.pk])).status_code == 404
    assert _written() == before


def test_filters_never_reach_past_scope(member_a_user, member_b_user, team_b, open_model, file_request):
    file_request(member_b_user, team_b, [open_model])
    body = token_client(member_a_user).get(reverse("api_key_requests") + "?status=pending").json()
    assert body["count"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"models": ["gpt", "a\x00b"]}, "models.1"),  # PostgreSQL text cannot hold NUL
        ({"purpose": "half a pair \ud917"}, "purpose"),  # valid JSON escape, but no character
        ({"\ud917": 1}, "non_field_errors"),
    ],
)
def test_text_no_database_can_store_is_a_400_naming_the_field(member_a_user, team_a, open_model, change, field):
    body = json.dumps({**_key_request(team_a, open_model), **change})  # json escapes the lone surrogate as \ud917
    response = token_client(member_a_user).post(reverse("api_key_requests"), data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not KeyRequest.objects.exists()
