"""A team may choose to block its keys at the gateway at 100% of ledger spend; the block lifts when
the period resets or an increase is approved, and the blocks reach the sandbox gateway."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from budgets import alerts, services
from budgets.models import Budget, BudgetBlock
from keys.models import GatewayCommand
from tests.budgets.test_alerts import _spend
from tests.keys.conftest import chat
from tests.keys.test_provisioning import _approved_key, _reveal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def blocking_budget(team_a, admin_user):
    return Budget.objects.create(
        team=team_a, amount=Decimal("1.00"), block_at_100=True, approver_limit=Decimal("5"), created_by=admin_user
    )


def test_keys_are_blocked_at_100_and_unblocked_when_an_increase_is_approved(
    live_gateway, blocking_budget, team_a, member_a_user, approver_a_user, open_model
):
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    secret = _reveal(key, member_a_user)
    assert chat(live_gateway.url, secret).status_code == 200

    _spend(key, "1.10")
    block = BudgetBlock.objects.get(budget=blocking_budget)
    assert block.key_ids == [key.pk]
    assert GatewayCommand.objects.get(key=key, kind=GatewayCommand.Kind.KEY_BLOCK).status == "done"
    assert chat(live_gateway.url, secret).status_code == 401
    assert alerts.budget_evaluate(budget_id=blocking_budget.pk) == 0  # blocked once a period
    assert BudgetBlock.objects.count() == 1

    increase = services.budget_increase_request_create(
        budget=blocking_budget, requester=member_a_user, amount=Decimal("4"), justification="release"
    )
    services.budget_increase_approve(increase=increase, approver=approver_a_user)
    block.refresh_from_db()
    assert block.lifted_at is not None
    assert GatewayCommand.objects.get(key=key, kind=GatewayCommand.Kind.KEY_UNBLOCK).status == "done"
    assert chat(live_gateway.url, secret).status_code == 200
    # The evidence reports read the key's own events: its block and unblock at the gateway are among them.
    on_the_key = AuditEvent.objects.filter(target_type="keys.virtualkey", target_id=str(key.pk))
    assert {"gateway.key.block", "gateway.key.unblock"} <= set(on_the_key.values_list("action", flat=True))


def test_a_new_period_lifts_the_block(
    live_gateway, blocking_budget, team_a, member_a_user, approver_a_user, open_model
):
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    _spend(key, "1.50")
    assert BudgetBlock.objects.filter(budget=blocking_budget, lifted_at=None).exists()
    assert alerts.budget_periods_roll() == 0  # still this month
    next_month = (timezone.now().replace(day=28) + timedelta(days=5)).replace(day=2)
    assert alerts.budget_periods_roll(now=next_month) == 1
    assert GatewayCommand.objects.filter(key=key, kind=GatewayCommand.Kind.KEY_UNBLOCK).exists()
