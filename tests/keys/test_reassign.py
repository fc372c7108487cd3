"""Reassigning a key never hands over its one reveal: the unrevealed secret is destroyed and the new
owner gets a rotation with a secret of their own; nobody makes themselves a key's owner."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from audit.models import AuditEvent
from govsite.accounts import permissions
from keys import services
from keys.models import GatewayCommand, KeyKind, VirtualKey
from tests.keys.conftest import request_input
from tests.keys.url_cases import _key


def _events(key, action):
    return AuditEvent.objects.filter(action=action, target_id=str(key.pk))


@pytest.mark.django_db(transaction=True)
def test_reassign_then_reveal_the_new_owner_never_sees_the_old_secret(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, approver_a_client, open_model
):
    kr = services.key_request_create(
        requester=member_a_user,
        data=request_input(team_a, [open_model], kind=KeyKind.SERVICE, service_name="ci", owner=member_a_user),
    )
    old = services.key_request_approve(request=kr, approver=approver_a_user)
    old.refresh_from_db()
    assert old.status == VirtualKey.Status.ACTIVE and old.can_reveal  # approved, not yet revealed

    # The approver cannot take it for himself, not by the service and not by the page.
    with pytest.raises(PermissionDenied, match="Nobody makes themselves"):
        services.key_reassign_owner(key=old, actor=approver_a_user, new_owner=approver_a_user)
    page = approver_a_client.post(reverse("key_reassign", args=[old.pk]), {"owner": approver_a_user.pk})
    assert page.status_code == 403
    old.refresh_from_db()
    assert old.owner == member_a_user and old.can_reveal

    # An admin does it for him: the old secret is destroyed, a rotation is made for him.
    result = services.key_reassign_owner(key=old, actor=admin_user, new_owner=approver_a_user)
    old.refresh_from_db()
    assert old.owner == approver_a_user and old.secret_encrypted is None and old.revealed_at is None
    assert (event := _events(old, "key.owner_reassigned").get()).actor == admin_user
    assert event.data["unrevealed_secret_destroyed"] is True
    assert _events(old, "key.rotated").exists()
    new = VirtualKey.objects.get(pk=result.rotation.pk)
    assert new.rotated_from == old and new.owner == approver_a_user
    assert GatewayCommand.objects.filter(key=new, kind=GatewayCommand.Kind.KEY_GENERATE).exists()

    with pytest.raises(services.InvalidTransition, match="holds no secret"):
        services.key_reveal(key=old, actor=approver_a_user)
    assert not permissions.key_actions_for(approver_a_user, old).reveal
    new.refresh_from_db()
    assert new.status == VirtualKey.Status.ACTIVE  # provisioned through the outbox (jobs in-process)
    secret = services.key_reveal(key=new, actor=approver_a_user)
    assert secret[-4:] == new.last4 != old.last4


@pytest.mark.django_db
def test_a_revealed_key_changes_owner_without_a_rotation(world):
    key = _key(world, world.team_a, kind=KeyKind.SERVICE)
    VirtualKey.objects.filter(pk=key.pk).update(secret_encrypted=None, revealed_at=key.created_at)
    member = world.users["member_a"]
    admin = world.users["admin"]
    approver = world.users["approver_a"]
    result = services.key_reassign_owner(key=key, actor=admin, new_owner=approver)
    assert result.rotation is None and result.key.owner == approver
    assert not VirtualKey.objects.filter(rotated_from=key).exists()
    assert _events(key, "key.owner_reassigned").get().data["unrevealed_secret_destroyed"] is False
    # Nobody, admins included, makes themselves the owner.
    with pytest.raises(PermissionDenied):
        services.key_reassign_owner(key=key, actor=admin, new_owner=admin)
    assert member not in permissions.key_owner_candidates(member, key)


@pytest.mark.django_db
def test_a_key_still_being_made_does_not_change_owner(world):
    key = _key(world, world.team_a, kind=KeyKind.SERVICE)
    VirtualKey.objects.filter(pk=key.pk).update(status=VirtualKey.Status.PROVISIONING)
    key.refresh_from_db()
    assert not permissions.key_actions_for(world.users["admin"], key).reassign
    with pytest.raises(services.InvalidTransition, match="still being made"):
        services.key_reassign_owner(key=key, actor=world.users["admin"], new_owner=world.users["approver_a"])


@pytest.mark.django_db
def test_the_page_offers_neither_the_viewer_nor_outsiders_as_owner(world):
    key = _key(world, world.team_a, kind=KeyKind.SERVICE)
    page = world.client("approver_a").get(reverse("key_detail", args=[key.pk]))
    choices = list(page.context["reassign_form"].fields["owner"].queryset)
    assert world.users["approver_a"] not in choices and world.users["member_b"] not in choices
    assert world.users["member_a"] in choices
