"""Raise one key's own cap through the increase flow (same rules and approvers as the budget it falls under), and
the budget page's blocked alert shown only when a block exists."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from budgets import services
from budgets.models import BudgetBlock, BudgetIncreaseRequest
from keys.models import GatewayCommand, VirtualKey
from tests.factories import BudgetFactory, VirtualKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_budget(team_a, admin_user):
    return BudgetFactory(team=team_a, amount=Decimal("500"), approver_limit=Decimal("50"), created_by=admin_user)


@pytest.fixture
def key(team_a, member_a_user):
    return VirtualKeyFactory(team=team_a, owner=member_a_user, max_budget=Decimal("20"))


def test_a_member_asks_for_more_on_one_key_and_an_approver_raises_its_cap(
    team_budget, key, member_a_client, approver_a_user, approver_a_client
):
    response = member_a_client.post(
        reverse("key_cap_increase", args=[key.pk]), {"amount": "30", "permanent": "yes", "justification": "evals"}
    )
    increase = BudgetIncreaseRequest.objects.get(key=key)
    assert response.status_code == 302 and increase.budget == team_budget
    assert increase in approver_a_client.get(reverse("budget_increase_queue")).context["page"].object_list

    approver_a_client.post(reverse("budget_increase_decide", args=[increase.pk]), {"decision": "approve"})
    key.refresh_from_db()
    team_budget.refresh_from_db()
    assert key.max_budget == Decimal("50") and team_budget.amount == Decimal("500")  # the key's cap, not the team's
    command = GatewayCommand.objects.get(key=key, kind=GatewayCommand.Kind.KEY_UPDATE)
    assert command.payload == {"max_budget": 50.0}
    assert AuditEvent.objects.filter(action="key.cap_changed", target_id=str(key.pk)).count() == 1
    assert AuditEvent.objects.filter(action="budget_increase.approved", target_id=str(increase.pk)).count() == 1


def test_above_the_approver_limit_finance_decides_and_the_owner_never_does(
    team_budget, key, member_a_user, approver_a_user, finance_user
):
    increase = services.key_cap_increase_request_create(
        key=key, requester=approver_a_user, amount=Decimal("80"), justification="load test"
    )
    with pytest.raises(PermissionDenied):
        services.budget_increase_approve(increase=increase, approver=approver_a_user)  # asked for it, above limit
    with pytest.raises(PermissionDenied):
        services.budget_increase_approve(increase=increase, approver=member_a_user)  # the key's owner
    services.budget_increase_approve(increase=increase, approver=finance_user)
    assert VirtualKey.objects.get(pk=key.pk).max_budget == Decimal("100")


def test_a_temporary_raise_is_taken_back_after_its_last_day(team_budget, key, member_a_user, approver_a_user):
    until = timezone.now().date()
    increase = services.key_cap_increase_request_create(
        key=key, requester=member_a_user, amount=Decimal("5"), justification="demo day", until=until
    )
    services.budget_increase_approve(increase=increase, approver=approver_a_user)
    assert VirtualKey.objects.get(pk=key.pk).max_budget == Decimal("25")
    assert services.budget_increase_revert(increase=increase, today=until + timedelta(days=1))
    assert VirtualKey.objects.get(pk=key.pk).max_budget == Decimal("20")


def test_a_key_of_a_team_without_a_budget_is_refused_with_the_reason(key, member_a_user):
    with pytest.raises(ValidationError) as refused:
        services.key_cap_increase_request_create(
            key=key, requester=member_a_user, amount=Decimal("5"), justification="x"
        )
    assert "no budget yet" in str(refused.value)


def test_someone_elses_key_cap_is_not_theirs_to_ask(team_budget, team_a, approver_a_user, member_a_client):
    VirtualKeyFactory(team=team_a, owner=approver_a_user)
    other = VirtualKey.objects.get(owner=approver_a_user)
    # An approver's key is not in a member's scope at all.
    assert member_a_client.get(reverse("key_cap_increase", args=[other.pk])).status_code == 404


def test_the_budget_page_shows_the_blocked_alert_only_when_a_block_exists(team_budget, admin_client):
    page = admin_client.get(reverse("budget_detail", args=[team_budget.pk]))
    assert "blocked at the gateway" not in page.content.decode()
    block = BudgetBlock.objects.create(budget=team_budget, period_start=timezone.now().date().replace(day=1))
    assert (
        "blocked at the gateway" in admin_client.get(reverse("budget_detail", args=[team_budget.pk])).content.decode()
    )
    block.lifted_at = timezone.now()
    block.save()
    assert (
        "blocked at the gateway"
        not in admin_client.get(reverse("budget_detail", args=[team_budget.pk])).content.decode()
    )
