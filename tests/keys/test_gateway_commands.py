"""Gateway commands: issued in the decision's transaction and run once it commits; what their success,
give-up and retry change in a key is written to the audit log on the key (the evidence reports read it)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.reports import KEY_TARGET
from keys import services
from keys.models import GatewayCommand, VirtualKey
from tests.keys.conftest import request_input

pytestmark = pytest.mark.django_db(transaction=True)


def _key_events(key) -> list[str]:
    events = AuditEvent.objects.filter(target_type=KEY_TARGET, target_id=str(key.pk)).order_by("seq")
    return list(events.values_list("action", flat=True))


def test_a_command_is_enqueued_when_its_transaction_commits_not_before(live_gateway, team_a):
    with transaction.atomic():
        command = services.gateway_command_issue(GatewayCommand.Kind.TEAM_SYNC, team=team_a, payload={})
        command.refresh_from_db()
        assert command.status == GatewayCommand.Status.PENDING and command.attempts == 0
    command.refresh_from_db()
    assert command.status == GatewayCommand.Status.DONE and command.attempts == 1


def test_a_command_of_a_decision_rolled_back_is_neither_kept_nor_run(live_gateway, team_a):
    with pytest.raises(ValueError, match="the decision failed"), transaction.atomic():
        services.gateway_command_issue(GatewayCommand.Kind.TEAM_SYNC, team=team_a, payload={})
        raise ValueError("the decision failed")
    assert not GatewayCommand.objects.exists()


def test_a_command_is_issued_only_inside_a_transaction(team_a):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        services.gateway_command_issue(GatewayCommand.Kind.TEAM_SYNC, team=team_a)
    assert not GatewayCommand.objects.exists()


def test_a_key_commands_belong_to_its_team(live_gateway, team_a, member_a_user, approver_a_user, open_model):
    request = services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    key = services.key_request_approve(request=request, approver=approver_a_user)
    assert GatewayCommand.objects.get(key=key).team == team_a


def test_provisioning_given_up_then_retried_by_hand_writes_each_status_change_on_the_key(
    live_gateway, settings, team_a, member_a_user, approver_a_user, admin_user, open_model
):
    settings.LITELLM_URL = "http://127.0.0.1:9"  # nothing listens there
    request = services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    key = services.key_request_approve(request=request, approver=approver_a_user)
    command = GatewayCommand.objects.get(key=key)
    assert command.status == GatewayCommand.Status.PENDING  # the first attempt failed; it will be retried
    GatewayCommand.objects.filter(pk=command.pk).update(attempts=services.MAX_ATTEMPTS - 1)
    services.gateway_commands_sweep(now=timezone.now() + timedelta(hours=2))  # the last allowed attempt

    key.refresh_from_db()
    command.refresh_from_db()
    assert command.status == GatewayCommand.Status.FAILED and key.status == VirtualKey.Status.FAILED
    assert _key_events(key) == ["key.provisioning_requested", "key.provisioning_failed"]

    settings.LITELLM_URL = live_gateway.url
    services.gateway_command_retry(command=command, actor=admin_user)
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.ACTIVE
    assert _key_events(key)[-2:] == ["key.provisioning_retried", "key.provisioned"]
    retried = AuditEvent.objects.get(action="key.provisioning_retried", target_id=str(key.pk))
    assert retried.actor_id == admin_user.pk


def test_a_revocation_confirmed_by_the_gateway_is_an_event_on_the_key(
    live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    request = services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    key = services.key_request_approve(request=request, approver=approver_a_user)
    services.key_revoke(key=key, actor=member_a_user, reason="done with it")
    key.refresh_from_db()
    assert key.status == VirtualKey.Status.REVOKED
    assert _key_events(key)[-2:] == ["key.revoked", "key.deleted_in_gateway"]
