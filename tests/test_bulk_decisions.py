"""Decide in bulk where it is safe: access-review items from one table (keep / reduce / revoke per row, one
rationale, revocations confirmed first) and approval-queue items with one decision and one note. Each item goes
through the single decision's service: separation of duties and second approvals hold per item, and each item
gets its own audit event."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import reviews
from audit.models import AccessReviewDecision, AccessReviewItem, AuditEvent
from govsite.accounts.models import TeamRole
from keys.models import KeyRequest, VirtualKey
from tests.factories import KeyRequestFactory, VirtualKeyFactory, make_user
from tests.keys.conftest import open_model, request_input, restricted_model  # noqa: F401

pytestmark = pytest.mark.django_db


def _events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def test_approvals_in_bulk_hold_separation_of_duties_and_second_approvals_per_item(
    team_a,
    team_b,
    approver_a_user,
    member_a_user,
    member_b_user,
    approver_a_client,
    open_model,  # noqa: F811
    restricted_model,  # noqa: F811
):
    plain = [
        KeyRequestFactory(requested_by=member_a_user, team=team_a, requested_models=[open_model]) for _ in range(2)
    ]
    from keys import services

    restricted = services.key_request_create(requester=member_a_user, data=request_input(team_a, [restricted_model]))
    own = KeyRequestFactory(requested_by=approver_a_user, team=team_a, requested_models=[open_model])
    elsewhere = KeyRequestFactory(requested_by=member_b_user, team=team_b, requested_models=[open_model])
    before = _events("key_request.approval_recorded")

    ids = [*(kr.pk for kr in plain), restricted.pk, own.pk, elsewhere.pk]
    response = approver_a_client.post(
        reverse("approval_decide_bulk"), {"ids": ids, "decision": "approve", "note": "sprint work"}, follow=True
    )
    assert response.status_code == 200
    for kr in plain:
        assert KeyRequest.objects.get(pk=kr.pk).status == KeyRequest.Status.APPROVED
    # A restricted model still needs an admin's approval: recorded, still pending, and now waiting for others.
    assert KeyRequest.objects.get(pk=restricted.pk).status == KeyRequest.Status.PENDING
    assert list(response.context["awaiting_others"]) == [KeyRequest.objects.get(pk=restricted.pk)]
    # Their own request and another team's are not decided, and the page says so.
    assert KeyRequest.objects.get(pk=own.pk).status == KeyRequest.Status.PENDING
    assert KeyRequest.objects.get(pk=elsewhere.pk).status == KeyRequest.Status.PENDING
    body = response.content.decode()
    assert f"#{own.pk}: not in your queue" in body and f"#{elsewhere.pk}: not in your queue" in body
    # One audit event per decided item.
    assert _events("key_request.approval_recorded") - before == 3
    assert (
        AuditEvent.objects.filter(action="key_request.approved", target_id__in=[str(k.pk) for k in plain]).count() == 2
    )


def test_rejecting_in_bulk_needs_a_note(team_a, member_a_user, approver_a_client, open_model):  # noqa: F811
    kr = KeyRequestFactory(requested_by=member_a_user, team=team_a, requested_models=[open_model])
    approver_a_client.post(reverse("approval_decide_bulk"), {"ids": [kr.pk], "decision": "reject", "note": ""})
    assert KeyRequest.objects.get(pk=kr.pk).status == KeyRequest.Status.PENDING


@pytest.fixture
def campaign(team_a, admin_user, approver_a_user):
    people = [make_user(teams={team_a: TeamRole.MEMBER}) for _ in range(5)]
    keys = [VirtualKeyFactory(team=team_a, owner=person, max_budget=Decimal("50")) for person in people]
    own = VirtualKeyFactory(team=team_a, owner=approver_a_user)
    review = reviews.access_review_open(
        actor=admin_user, name="Q4", due_on=timezone.now().date() + timedelta(days=7), on_due="escalate", teams=[team_a]
    )
    items = {i.key_id: i for i in AccessReviewItem.objects.filter(review=review)}
    return [items[k.pk] for k in keys], items[own.pk]


def test_five_review_items_in_one_decision_each_audited_revocations_confirmed_first(
    campaign, approver_a_user, approver_a_client
):
    items, own = campaign
    keep, keep2, reduce, revoke, later = items
    form = {
        f"decision_{keep.pk}": "keep",
        f"decision_{keep2.pk}": "keep",
        f"decision_{reduce.pk}": "reduce",
        f"budget_{reduce.pk}": "10",
        f"decision_{revoke.pk}": "revoke",
        f"decision_{later.pk}": "",
        f"decision_{own.pk}": "keep",  # their own key: another approver or an admin reviews it
        "rationale": "quarterly review with the team",
    }
    before = _events("access_review.decided")
    confirm = approver_a_client.post(reverse("access_review_decide_bulk"), form)
    assert confirm.status_code == 200 and "Revoke 1 key?" in confirm.content.decode()
    assert AccessReviewDecision.objects.count() == 0 and _events("access_review.decided") == before

    done = approver_a_client.post(reverse("access_review_decide_bulk"), {**form, "confirm_revoke": "yes"}, follow=True)
    assert done.status_code == 200
    decided = dict(AccessReviewDecision.objects.values_list("item_id", "decision"))
    assert decided == {keep.pk: "keep", keep2.pk: "keep", reduce.pk: "reduce", revoke.pk: "revoke"}
    assert set(AccessReviewDecision.objects.values_list("rationale", flat=True)) == {"quarterly review with the team"}
    assert _events("access_review.decided") - before == 4
    assert VirtualKey.objects.get(pk=reduce.key_id).max_budget == Decimal("10")
    assert VirtualKey.objects.get(pk=revoke.key_id).status == VirtualKey.Status.REVOKING
    assert "not waiting for you" in done.content.decode()  # their own key's row
    assert [i.pk for i in done.context["page"].object_list] == [later.pk]


def test_a_bulk_review_without_a_rationale_decides_nothing(campaign, approver_a_client):
    items, _own = campaign
    approver_a_client.post(reverse("access_review_decide_bulk"), {f"decision_{items[0].pk}": "keep", "rationale": " "})
    assert AccessReviewDecision.objects.count() == 0
