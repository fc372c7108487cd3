"""Budget increases: who decides, what changes, and that a temporary one goes away by itself."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from budgets import services
from budgets.models import Budget, BudgetIncreaseRequest
from keys.models import GatewayCommand
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget(team_a, admin_user):
    return Budget.objects.create(
        team=team_a, amount=Decimal("100"), approver_limit=Decimal("50"), created_by=admin_user
    )


def _ask(budget, who, amount="20", until=None):
    return services.budget_increase_request_create(
        budget=budget, requester=who, amount=Decimal(amount), justification="release week", until=until
    )


def test_nobody_decides_their_own_increase(budget, approver_a_user):
    own = _ask(budget, approver_a_user)
    with pytest.raises(PermissionDenied):
        services.budget_increase_approve(increase=own, approver=approver_a_user)
    own.refresh_from_db()
    assert own.status == BudgetIncreaseRequest.Status.PENDING


def test_within_the_limit_the_approver_decides_and_the_gateway_is_told(budget, member_a_user, approver_a_user):
    increase = _ask(budget, member_a_user, "30")
    updated = services.budget_increase_approve(increase=increase, approver=approver_a_user, note="fine")
    assert updated.amount == Decimal("130")
    assert AuditEvent.objects.filter(action="budget_increase.approved", target_id=str(increase.pk)).exists()
    sync = GatewayCommand.objects.filter(team=budget.team, kind=GatewayCommand.Kind.TEAM_SYNC).latest("pk")
    assert sync.payload["max_budget"] == 130.0


def test_above_the_team_limit_only_finance_decides(budget, member_a_user, approver_a_user, finance_user):
    increase = _ask(budget, member_a_user, "80")
    with pytest.raises(PermissionDenied):
        services.budget_increase_approve(increase=increase, approver=approver_a_user)
    assert services.budget_increase_approve(increase=increase, approver=finance_user).amount == Decimal("180")


def test_a_temporary_increase_reverts_after_its_last_day(budget, member_a_user, approver_a_user):
    last_day = timezone.now().date() + timedelta(days=3)
    increase = _ask(budget, member_a_user, "25", until=last_day)
    services.budget_increase_approve(increase=increase, approver=approver_a_user)
    assert services.budget_increases_revert_due(today=last_day) == 0
    assert services.budget_increases_revert_due(today=last_day + timedelta(days=1)) == 1
    budget.refresh_from_db()
    assert budget.amount == Decimal("100")
    assert services.budget_increases_revert_due(today=last_day + timedelta(days=2)) == 0


def test_bad_input_names_the_field_and_writes_nothing(budget, member_a_user):
    events = AuditEvent.objects.count()
    for amount, justification, field in (("0", "why", "amount"), ("10", " ", "justification")):
        with pytest.raises(ValidationError) as err:
            services.budget_increase_request_create(
                budget=budget, requester=member_a_user, amount=Decimal(amount), justification=justification
            )
        assert field in err.value.error_dict
    assert BudgetIncreaseRequest.objects.count() == 0
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db(transaction=True)
def test_two_deciders_at_once_give_one_outcome(team_a, admin_user, member_a_user, approver_a_user, finance_user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    budget = Budget.objects.create(
        team=team_a, amount=Decimal("100"), approver_limit=Decimal("50"), created_by=admin_user
    )
    increase = _ask(budget, member_a_user, "30")
    outcomes = at_once(
        *(
            lambda w=w: services.budget_increase_approve(increase=increase, approver=w)
            for w in (approver_a_user, finance_user)
        ),
        expected=services.InvalidTransition,
        held_after_reading=BudgetIncreaseRequest._meta.db_table,
    )
    budget.refresh_from_db()
    assert budget.amount == Decimal("130")
    assert sum(isinstance(o, services.InvalidTransition) for o in outcomes) == 1
    assert AuditEvent.objects.filter(action="budget_increase.approved").count() == 1
