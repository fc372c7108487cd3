"""Budget increases: who decides, what changes, and that a temporary one goes away by itself."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from budgets import selectors, services
from budgets.models import Budget, BudgetIncreaseRequest
from govsite.accounts import permissions
from govsite.accounts.models import TeamRole
from keys.models import GatewayCommand
from tests.api.helpers import make_token
from tests.concurrency import at_once
from tests.factories import BudgetIncreaseRequestFactory, VirtualKeyFactory, make_user

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


# --- nobody decides an increase they benefit from ----------------------------------------------------


@pytest.fixture
def approvers_key_budget(team_a, approver_a_user, admin_user):
    """A key budget of approver A's own key, raised at the request of a second approver of the team."""
    key = VirtualKeyFactory(owner=approver_a_user, team=team_a)
    budget = Budget.objects.create(
        team=team_a, key=key, amount=Decimal("40"), approver_limit=Decimal("50"), created_by=admin_user
    )
    other_approver = make_user(email="approver-2@example.com", teams={team_a: TeamRole.APPROVER})
    return _ask(budget, other_approver, "10")


def test_the_keys_owner_does_not_decide_an_increase_of_its_budget_by_page_or_api(
    approvers_key_budget, approver_a_user, approver_a_client, finance_user
):
    increase = approvers_key_budget
    assert not permissions.can_decide_budget_increase(approver_a_user, increase)
    assert increase not in selectors.increase_queue(user=approver_a_user)
    with pytest.raises(PermissionDenied, match="of their own budget or key"):
        services.budget_increase_approve(increase=increase, approver=approver_a_user)

    page = approver_a_client.post(
        reverse("budget_increase_decide", args=[increase.pk]), {"decision": "approve", "note": ""}
    )
    assert page.status_code == 403
    api = Client(headers={"Authorization": f"Bearer {make_token(approver_a_user)}"})
    response = api.post(
        reverse("api_budget_increase_decide", args=[increase.pk]),
        {"decision": "approve"},
        content_type="application/json",
    )
    assert response.status_code == 403
    increase.refresh_from_db()
    assert increase.status == BudgetIncreaseRequest.Status.PENDING
    assert services.budget_increase_approve(increase=increase, approver=finance_user).amount == Decimal("50")


def test_a_persons_budget_is_not_raised_by_that_person(team_a, approver_a_user, admin_user):
    budget = Budget.objects.create(
        team=team_a, user=approver_a_user, amount=Decimal("40"), approver_limit=Decimal("50"), created_by=admin_user
    )
    increase = BudgetIncreaseRequestFactory(budget=budget, requested_by=admin_user)  # asked for on his behalf
    assert not permissions.can_decide_budget_increase(approver_a_user, increase)
    assert increase not in selectors.increase_queue(user=approver_a_user)
    with pytest.raises(PermissionDenied):
        services.budget_increase_reject(increase=increase, approver=approver_a_user, note="no")
