"""What a person may do with a key or a request: permissions/ answers it once, and the key page, the
API and the services agree with that answer for every role, the other team's approver included."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from govsite.accounts import permissions
from govsite.accounts.models import TeamRole
from keys import services
from keys.models import KeyKind, KeyRequest, VirtualKey
from tests.api.helpers import make_token
from tests.factories import make_user
from tests.keys.url_cases import _key, _request
from tests.permissions import ADMIN, APPROVER_A, AUDITOR, FINANCE, MEMBER_A, MEMBER_B, ROLES

pytestmark = pytest.mark.django_db

NOTHING = permissions.KeyActions(reveal=False, rotate=False, revoke=False, reassign=False)


def _allowed(world, key, action: str) -> set[str]:
    return {role for role in ROLES if getattr(permissions.key_actions_for(world.users[role], key), action)}


def test_an_active_personal_key_is_revealed_by_its_owner_and_rotated_or_revoked_by_owner_approver_admin(world):
    key = _key(world, world.team_a)  # member A's, in team A
    assert _allowed(world, key, "reveal") == {MEMBER_A}
    assert _allowed(world, key, "rotate") == {ADMIN, APPROVER_A, MEMBER_A}
    assert _allowed(world, key, "revoke") == {ADMIN, APPROVER_A, MEMBER_A}
    assert _allowed(world, key, "reassign") == set()  # a personal key stays with its person
    for role in (FINANCE, AUDITOR, MEMBER_B):
        assert permissions.key_actions_for(world.users[role], key) == NOTHING


def test_another_teams_approver_may_do_nothing_with_the_key(world):
    key = _key(world, world.team_b)  # member B's, in team B
    assert permissions.key_actions_for(world.users[APPROVER_A], key) == NOTHING
    assert _allowed(world, key, "revoke") == {ADMIN, MEMBER_B}


def test_a_service_key_changes_owner_by_the_teams_approvers_and_admins_only(world):
    key = _key(world, world.team_a, kind=KeyKind.SERVICE)
    assert _allowed(world, key, "reassign") == {ADMIN, APPROVER_A}


def test_the_keys_state_limits_every_role(world):
    key = _key(world, world.team_a)
    owner = world.users[MEMBER_A]
    key.secret_encrypted, key.revealed_at = None, key.created_at
    assert not permissions.key_actions_for(owner, key).reveal
    assert permissions.key_reveal_refusal(key) == "This key was already revealed; it is shown only once."

    key.status = VirtualKey.Status.FAILED  # never made in the gateway: revoke it, nothing else
    assert permissions.key_actions_for(owner, key) == permissions.KeyActions(
        reveal=False, rotate=False, revoke=True, reassign=False
    )
    key.status = VirtualKey.Status.REVOKED
    assert all(permissions.key_actions_for(world.users[role], key) == NOTHING for role in ROLES)


def test_a_rotated_key_is_not_rotated_again(world):
    key = _key(world, world.team_a)
    owner = world.users[MEMBER_A]
    assert permissions.key_actions_for(owner, key).rotate
    VirtualKey.objects.filter(pk=_key(world, world.team_a).pk).update(rotated_from=key)
    key = VirtualKey.objects.get(pk=key.pk)
    assert not permissions.key_actions_for(owner, key).rotate
    assert permissions.key_rotate_refusal(key) == "This key was already rotated."


def test_a_request_is_cancelled_by_its_requester_and_decided_by_someone_else_while_pending(world):
    kr = _request(world, world.team_a)  # member A asks
    cancel = {r for r in ROLES if permissions.key_request_actions_for(world.users[r], kr).cancel}
    decide = {r for r in ROLES if permissions.key_request_actions_for(world.users[r], kr).decide}
    assert cancel == {MEMBER_A}
    assert decide == {ADMIN, APPROVER_A}
    kr.status = KeyRequest.Status.CANCELLED
    assert not any(permissions.key_request_actions_for(world.users[r], kr) != NOTHING_REQUEST for r in ROLES)


NOTHING_REQUEST = permissions.KeyRequestActions(cancel=False, decide=False)


def test_the_owner_asked_for_does_not_cancel_someone_elses_request(world):
    requester = make_user(teams={world.team_a: TeamRole.MEMBER})
    kr = _request(world, world.team_a)
    KeyRequest.objects.filter(pk=kr.pk).update(requested_by=requester)
    kr.refresh_from_db()
    assert permissions.key_request_actions_for(requester, kr).cancel
    assert not permissions.key_request_actions_for(world.users[MEMBER_A], kr).cancel  # the owner, not the asker


# --- the page, the API and the services read the same answer ---------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_key_page_shows_the_buttons_permissions_allow(world, role):
    key = _key(world, world.team_a, kind=KeyKind.SERVICE)
    response = world.client(role).get(reverse("key_detail", args=[key.pk]))
    if response.status_code == 404:
        assert not VirtualKey.objects.filter(permissions.key_scope(world.users[role])).filter(pk=key.pk).exists()
        return
    page = response.content.decode()
    actions = permissions.key_actions_for(world.users[role], key)
    assert (reverse("key_reveal", args=[key.pk]) in page) == actions.reveal
    assert (reverse("key_rotate", args=[key.pk]) in page) == actions.rotate
    assert (reverse("key_revoke", args=[key.pk]) in page) == actions.revoke
    assert (reverse("key_reassign", args=[key.pk]) in page) == actions.reassign


def test_the_key_list_marks_only_keys_its_viewer_may_reveal(world, member_a_client):
    ready = _key(world, world.team_a)
    shown = _key(world, world.team_a)
    VirtualKey.objects.filter(pk=shown.pk).update(secret_encrypted=None, revealed_at=shown.created_at)
    page = member_a_client.get(reverse("key_list")).content.decode()
    assert page.count("ready to reveal") == 1 and ready.alias in page


@pytest.mark.parametrize("role", ROLES)
def test_the_api_reports_the_same_actions(world, role):
    key = _key(world, world.team_a)
    secret = make_token(world.users[role])
    api = Client(headers={"Authorization": f"Bearer {secret}"})
    response = api.get(reverse("api_key_detail", args=[key.pk]))
    if response.status_code == 404:
        return  # outside the role's scope: nothing to report
    expected = permissions.key_actions_for(world.users[role], key)
    assert response.json()["actions"] == {
        "reveal": expected.reveal,
        "rotate": expected.rotate,
        "revoke": expected.revoke,
        "reassign": expected.reassign,
    }


@pytest.mark.parametrize("role", ROLES)
def test_the_revoke_service_does_what_the_answer_says(world, role):
    key = _key(world, world.team_a)
    allowed = permissions.key_actions_for(world.users[role], key).revoke
    try:
        services.key_revoke(key=key, actor=world.users[role])
        done = True
    except (PermissionDenied, services.InvalidTransition):
        done = False
    key.refresh_from_db()
    assert done == allowed
    assert (key.status == VirtualKey.Status.REVOKING) == allowed
