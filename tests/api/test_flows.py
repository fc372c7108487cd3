"""Whole journeys through the API, with the rules the pages keep: reveal once, rotate, revoke,
budget increases decided by the right person, and nobody deciding their own request."""

from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from budgets.models import Budget, BudgetIncreaseRequest
from keys.models import VirtualKey
from tests.api.helpers import call, token_client
from tests.keys.url_cases import _key

pytestmark = pytest.mark.django_db


def test_the_owner_reveals_once_then_rotates_and_revokes(world, member_a_user, approver_a_user):
    key = _key(world, world.team_a)
    owner = token_client(member_a_user)
    listed = owner.get(reverse("api_keys")).json()
    assert [k["id"] for k in listed["results"]] == [key.pk] and listed["results"][0]["can_reveal"] is True

    revealed = call(owner, "post", reverse("api_key_reveal", args=[key.pk]))
    assert revealed.status_code == 200 and revealed["Cache-Control"] == "no-store"
    assert revealed.json()["secret"].endswith(key.last4)
    again = call(owner, "post", reverse("api_key_reveal", args=[key.pk]))
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

    rotated = call(owner, "post", reverse("api_key_rotate", args=[key.pk]))
    assert rotated.status_code == 201 and rotated.json()["rotated_from"] == key.pk
    assert call(owner, "post", reverse("api_key_rotate", args=[key.pk])).status_code == 409

    # The team's approver sees it among the team's keys and may revoke it.
    approver = token_client(approver_a_user)
    team_keys = approver.get(reverse("api_keys") + "?scope=team&status=active").json()["results"]
    assert key.pk in [k["id"] for k in team_keys]
    revoked = call(approver, "post", reverse("api_key_revoke", args=[key.pk]), {"reason": "rotated"})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoking"
    assert VirtualKey.objects.get(pk=key.pk).revoke_reason == "rotated"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"key.revealed", "key.rotated", "key.revoked"} <= actions


def test_only_the_owner_reveals(world, admin_user):
    key = _key(world, world.team_a)
    response = call(token_client(admin_user), "post", reverse("api_key_reveal", args=[key.pk]))
    assert response.status_code == 403
    assert VirtualKey.objects.get(pk=key.pk).can_reveal


@pytest.fixture
def budget_a(team_a, admin_user):
    return Budget.objects.create(
        team=team_a, amount=Decimal("100"), approver_limit=Decimal("50"), created_by=admin_user
    )


def _ask(user, budget, amount):
    url = reverse("api_budget_increase_create", args=[budget.pk])
    return call(token_client(user), "post", url, {"amount": amount, "justification": "launch week"})


def test_an_increase_within_the_limit_is_the_approvers_and_raises_the_budget(member_a_user, approver_a_user, budget_a):
    increase = _ask(member_a_user, budget_a, "30").json()
    approver = token_client(approver_a_user)
    queue = approver.get(reverse("api_budget_increase_queue")).json()["results"]
    assert [i["id"] for i in queue] == [increase["id"]]
    url = reverse("api_budget_increase_decide", args=[increase["id"]])
    decided = call(approver, "post", url, {"decision": "approve"})
    assert decided.status_code == 200 and decided.json()["amount_after"] == "130.00"
    budget = token_client(member_a_user).get(reverse("api_budget_detail", args=[budget_a.pk])).json()
    assert budget["amount"] == "130.00" and budget["current_period"]["spend"] == "0.000000"
    assert call(approver, "post", url, {"decision": "approve"}).status_code == 409


def test_above_the_limit_finance_decides_not_the_approver(member_a_user, approver_a_user, finance_user, budget_a):
    increase = _ask(member_a_user, budget_a, "80").json()
    approver = token_client(approver_a_user)
    assert approver.get(reverse("api_budget_increase_queue")).json()["count"] == 0
    url = reverse("api_budget_increase_decide", args=[increase["id"]])
    refused = call(approver, "post", url, {"decision": "approve"})
    assert refused.status_code == 403 and "finance" in refused.json()["error"]["message"]
    rejected = call(token_client(finance_user), "post", url, {"decision": "reject"})
    assert rejected.status_code == 400 and "note" in rejected.json()["error"]["fields"]
    rejected = call(token_client(finance_user), "post", url, {"decision": "reject", "note": "next quarter"})
    assert rejected.json()["status"] == "rejected"


def test_nobody_decides_their_own_budget_increase(approver_a_user, budget_a):
    increase = _ask(approver_a_user, budget_a, "10").json()
    client = token_client(approver_a_user)
    assert client.get(reverse("api_budget_increase_queue")).json()["count"] == 0
    response = call(
        client, "post", reverse("api_budget_increase_decide", args=[increase["id"]]), {"decision": "approve"}
    )
    assert response.status_code == 403
    assert "own" in response.json()["error"]["message"]
    assert BudgetIncreaseRequest.objects.get().status == "pending"


def test_nobody_decides_their_own_key_request(approver_a_user, team_a, open_model, file_request):
    own = file_request(approver_a_user, team_a, [open_model])
    client = token_client(approver_a_user)
    assert client.get(reverse("api_approval_queue")).json()["count"] == 0
    response = call(client, "post", reverse("api_approval_decide", args=[own.pk]), {"decision": "approve"})
    assert response.status_code == 404
    own.refresh_from_db()
    assert own.status == "pending" and not VirtualKey.objects.exists()


def test_an_admin_sets_and_changes_a_budget(admin_user, team_a):
    client = token_client(admin_user)
    created = call(client, "post", reverse("api_budgets"), {"team": team_a.slug, "amount": "500", "block_at_100": True})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["scope"] == "team" and body["thresholds"] == [50, 80, 100] and body["block_at_100"] is True
    duplicate = call(client, "post", reverse("api_budgets"), {"team": team_a.slug, "amount": "5"})
    assert duplicate.status_code == 400
    changed = call(
        client, "patch", reverse("api_budget_detail", args=[body["id"]]), {"thresholds": [90], "is_active": False}
    )
    assert changed.status_code == 200 and changed.json()["thresholds"] == [90] and changed.json()["is_active"] is False
    filtered = client.get(reverse("api_budgets") + f"?team={team_a.slug}&scope=team").json()
    assert [b["id"] for b in filtered["results"]] == [body["id"]]


def test_the_audit_log_filters_like_the_page(auditor_user, admin_user, team_a):
    call(token_client(admin_user), "post", reverse("api_budgets"), {"team": team_a.slug, "amount": "500"})
    client = token_client(auditor_user)
    events = client.get(reverse("api_audit_events") + f"?action=budget.&team={team_a.slug}").json()
    assert [e["action"] for e in events["results"]] == ["budget.created"]
    event = events["results"][0]
    assert event["actor"] == admin_user.email and event["team"] == team_a.slug and len(event["hash"]) == 64
    assert client.get(reverse("api_audit_events") + "?actor=nobody").json()["count"] == 0


def test_lists_do_not_grow_queries_with_their_length(world, member_a_user, django_assert_max_num_queries):
    for _ in range(12):
        _key(world, world.team_a)
    client = token_client(member_a_user)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("api_keys") + "?page_size=100").json()["count"] == 12
    with django_assert_max_num_queries(12):
        assert client.get(reverse("api_key_requests")).json()["count"] == 12
