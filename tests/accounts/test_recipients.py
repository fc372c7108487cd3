"""Who gets told: permissions/ names the admins, a team's deciders and an access review's reviewers, and
the key, budget and access-review notifications send to exactly those people."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from audit import reviews
from budgets import alerts
from budgets.models import Budget
from govsite.accounts import permissions
from govsite.accounts.models import OrgRole, TeamRole
from keys import notifications as key_notifications
from keys.models import VirtualKey
from tests.factories import VirtualKeyFactory, make_user
from tests.keys.url_cases import _request
from tests.permissions import ADMIN, APPROVER_A, MEMBER_A, MEMBER_B

pytestmark = pytest.mark.django_db


def test_admins_are_the_active_admins_only(world):
    make_user(org_roles=[OrgRole.ADMIN], is_active=False)
    assert list(permissions.admins()) == [world.users[ADMIN]]


def test_a_teams_deciders_are_its_active_approvers(world):
    make_user(teams={world.team_a: TeamRole.APPROVER}, is_active=False)
    other_approver = make_user(teams={world.team_b: TeamRole.APPROVER})
    assert list(permissions.deciders_of(world.team_a)) == [world.users[APPROVER_A]]
    assert list(permissions.deciders_of(world.team_b.pk)) == [other_approver]


def test_a_key_request_is_announced_to_its_teams_deciders_and_a_restricted_one_to_the_admins(
    world, django_capture_on_commit_callbacks
):
    kr = _request(world, world.team_a)
    with django_capture_on_commit_callbacks(execute=True):
        key_notifications.request_waiting(kr)
    with django_capture_on_commit_callbacks(execute=True):
        key_notifications.request_waiting(kr, admins_only=True)
    assert [m.to for m in mail.outbox] == [[world.users[APPROVER_A].email], [world.users[ADMIN].email]]


def test_a_budget_of_a_team_without_approvers_alerts_the_admins(world):
    budget_a = Budget.objects.create(team=world.team_a, amount=Decimal("10"), created_by=world.users[ADMIN])
    budget_b = Budget.objects.create(team=world.team_b, amount=Decimal("10"), created_by=world.users[ADMIN])
    assert alerts.budget_recipients(budget_a) == [world.users[APPROVER_A]]
    assert alerts.budget_recipients(budget_b) == [world.users[ADMIN]]


def test_an_access_reviews_reviewers_never_review_their_own_key_and_admins_take_the_rest(world):
    admin, approver = world.users[ADMIN], world.users[APPROVER_A]
    VirtualKeyFactory(team=world.team_a, owner=world.users[MEMBER_A], approved_by=approver)
    VirtualKeyFactory(team=world.team_a, owner=world.users[MEMBER_A], approved_by=approver)
    VirtualKeyFactory(team=world.team_a, owner=approver, approved_by=admin)  # the approver's own: an admin decides it
    VirtualKeyFactory(team=world.team_b, owner=world.users[MEMBER_B], approved_by=admin)  # team B has no approver
    VirtualKeyFactory(
        team=world.team_a, owner=world.users[MEMBER_A], status=VirtualKey.Status.REVOKED, revoked_at=timezone.now()
    )
    review = reviews.access_review_open(
        actor=admin, name="Q3", due_on=timezone.now().date() + timedelta(days=7), on_due="revoke"
    )
    assert permissions.reviewers_of(review) == {approver.email: 2, admin.email: 2}
    for item in review.items.all():  # each reviewer told about an item may decide it
        told = approver if item.team_id == world.team_a.pk and item.owner_id != approver.pk else admin
        assert permissions.can_decide_access_review_item(told, item)

    review.escalated_at = timezone.now()
    assert permissions.reviewers_of(review) == {admin.email: 4}
