"""Reconciliation against the sandbox gateway: missing keys recorded once per episode; unmanaged keys
deleted through a gateway command after commit, never by a call inside the transaction."""

import secrets

import pytest

from audit.models import AuditEvent
from audit.reports import KEY_TARGET
from keys import services
from keys.models import GatewayCommand, UnmanagedKey, VirtualKey
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db


def test_a_key_missing_in_the_gateway_is_recorded_once_per_episode(live_gateway, team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)  # active in govsite, absent from the gateway
    missing = AuditEvent.objects.filter(action="key.missing_in_gateway", target_type=KEY_TARGET, target_id=str(key.pk))

    assert services.gateway_reconcile().missing == 1
    assert services.gateway_reconcile().missing == 0  # the next hourly run: same episode
    assert missing.count() == 1

    with live_gateway.client() as client:
        client.key_generate(key=key.secret, key_alias=key.alias)
    result = services.gateway_reconcile()
    assert result.back == 1 and result.missing == 0
    assert AuditEvent.objects.filter(action="key.back_in_gateway", target_id=str(key.pk)).count() == 1

    with live_gateway.client() as client:
        client.key_delete(keys=[key.token_hash])
    assert services.gateway_reconcile().missing == 1  # a new episode
    assert services.gateway_reconcile().missing == 0
    assert missing.count() == 2


def test_revoking_a_missing_key_ends_its_episode(live_gateway, team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    services.gateway_reconcile()
    services.key_revoke(key=key, actor=member_a_user, reason="gone anyway")
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.REVOKING and key.missing_in_gateway_since is None


def test_an_unmanaged_key_is_deleted_by_a_command_after_commit(
    live_gateway, settings, admin_user, django_capture_on_commit_callbacks
):
    alias = f"made-by-hand-{secrets.token_hex(3)}"
    with live_gateway.client() as client:
        by_hand = client.key_generate(key_alias=alias)
    unmanaged = UnmanagedKey.objects.create(token_hash=by_hand["token"], alias=alias)

    settings.LITELLM_URL = "http://127.0.0.1:9"  # a call to the gateway inside the transaction would fail
    with django_capture_on_commit_callbacks() as after_commit:
        command = services.unmanaged_key_delete(unmanaged=unmanaged, actor=admin_user)
    unmanaged.refresh_from_db()
    assert unmanaged.status == UnmanagedKey.Status.DELETING
    assert command.kind == GatewayCommand.Kind.UNMANAGED_DELETE and command.status == GatewayCommand.Status.PENDING
    assert AuditEvent.objects.filter(action="key.unmanaged_delete_requested", actor=admin_user).exists()
    with pytest.raises(services.InvalidTransition):
        services.unmanaged_key_delete(unmanaged=unmanaged, actor=admin_user)

    settings.LITELLM_URL = live_gateway.url
    for job in after_commit:
        job()
    unmanaged.refresh_from_db()
    assert unmanaged.status == UnmanagedKey.Status.DELETED
    assert AuditEvent.objects.filter(action="key.unmanaged_deleted", target_id=str(unmanaged.pk)).exists()
    with live_gateway.client() as client:
        assert not [k for k in client.key_list(key_alias=alias)["keys"] if k.get("key_alias") == alias]
