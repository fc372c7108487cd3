"""The key-request API keeps the same rules as the pages: scope, separation of duties, field errors."""

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from keys.models import KeyRequest, VirtualKey
from tests.keys.conftest import classification

pytestmark = pytest.mark.django_db


def _body(team, model, **overrides):
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


def _post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_anonymous_gets_401_with_a_json_error(client):
    response = client.get(reverse("api_key_requests"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_member_files_a_request_and_lists_it(member_a_client, team_a, open_model):
    response = _post(member_a_client, reverse("api_key_requests"), _body(team_a, open_model))
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending"
    listed = member_a_client.get(reverse("api_key_requests")).json()["results"]
    assert [r["id"] for r in listed] == [response.json()["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"monthly_budget": "0"}, "monthly_budget"),
        ({"monthly_budget": "lots"}, "monthly_budget"),
        ({"purpose": ""}, "purpose"),
        ({"expiry_days": 999}, "expiry_days"),
        ({"models": ["no-such-model"]}, "models"),
        ({"data_classification": "restricted"}, "models"),
        ({"colour": "blue"}, "colour"),
        ({"kind": "service", "service_name": "bot"}, "owner"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(member_a_client, team_a, open_model, change, field):
    events = AuditEvent.objects.count()
    response = _post(member_a_client, reverse("api_key_requests"), _body(team_a, open_model, **change))
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert KeyRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_another_teams_id_is_refused(member_a_client, team_b, open_model):
    response = _post(member_a_client, reverse("api_key_requests"), _body(team_b, open_model))
    assert response.status_code == 400
    assert "team" in response.json()["error"]["fields"]
    assert KeyRequest.objects.count() == 0


def test_own_request_is_not_in_the_queue_and_cannot_be_decided(approver_a_client, team_a, open_model):
    own = _post(approver_a_client, reverse("api_key_requests"), _body(team_a, open_model)).json()
    assert approver_a_client.get(reverse("api_approval_queue")).json()["results"] == []
    response = _post(approver_a_client, reverse("api_approval_decide", args=[own["id"]]), {"decision": "approve"})
    assert response.status_code == 404
    assert KeyRequest.objects.get(pk=own["id"]).status == "pending"


def test_an_approver_decides_in_scope_only(
    member_a_client, member_b_client, approver_a_client, team_a, team_b, open_model
):
    mine = _post(member_a_client, reverse("api_key_requests"), _body(team_a, open_model)).json()
    other = _post(member_b_client, reverse("api_key_requests"), _body(team_b, open_model)).json()
    assert [r["id"] for r in approver_a_client.get(reverse("api_approval_queue")).json()["results"]] == [mine["id"]]
    assert (
        _post(
            approver_a_client, reverse("api_approval_decide", args=[other["id"]]), {"decision": "approve"}
        ).status_code
        == 404
    )
    response = _post(approver_a_client, reverse("api_approval_decide", args=[mine["id"]]), {"decision": "approve"})
    assert response.status_code == 200
    assert VirtualKey.objects.filter(pk=response.json()["key_id"]).exists()
    again = _post(approver_a_client, reverse("api_approval_decide", args=[mine["id"]]), {"decision": "approve"})
    assert again.status_code == 404  # no longer pending: out of the queue


def test_a_member_has_no_decisions_and_a_reject_needs_a_note(member_a_client, approver_a_client, team_a, open_model):
    mine = _post(member_a_client, reverse("api_key_requests"), _body(team_a, open_model)).json()
    refused = _post(member_a_client, reverse("api_approval_decide", args=[mine["id"]]), {"decision": "approve"})
    assert refused.status_code == 403  # no queue at all, like the page
    assert refused.json()["error"]["code"] == "permission_denied"
    response = _post(approver_a_client, reverse("api_approval_decide", args=[mine["id"]]), {"decision": "reject"})
    assert response.status_code == 400 and "note" in response.json()["error"]["fields"]


def test_cancel_is_the_requesters_and_a_second_cancel_conflicts(member_a_client, approver_a_client, team_a, open_model):
    mine = _post(member_a_client, reverse("api_key_requests"), _body(team_a, open_model)).json()
    url = reverse("api_key_request_cancel", args=[mine["id"]])
    assert approver_a_client.post(url).status_code == 403
    assert member_a_client.post(url).json()["status"] == "cancelled"
    assert member_a_client.post(url).status_code == 409
