"""Provisioning through the gateway: the sandbox gateway runs as its own process, jobs run through a
real Redis and a real `rqworker` process where the test says so, in-process otherwise."""

import sqlite3
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from govsite.accounts import services as account_services
from keys import crypto, gateway_handlers, services
from keys.models import GatewayCommand, KeyKind, KeyRequest, UnmanagedKey, VirtualKey
from tests.keys.conftest import chat, classification, request_input
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _approved_key(member, approver, team, models, **overrides) -> VirtualKey:
    kr = services.key_request_create(requester=member, data=request_input(team, models, **overrides))
    return services.key_request_approve(request=kr, approver=approver)


def _refresh(obj):
    obj.refresh_from_db()
    return obj


def _gateway_aliases(gateway, alias: str) -> list[dict]:
    with gateway.client() as client:
        return [k for k in client.key_list(key_alias=alias)["keys"] if k.get("key_alias") == alias]


# --- the whole path ----------------------------------------------------------------------------------------


def test_request_approve_provision_reveal_call_revoke_through_a_real_worker(
    rq_worker, live_gateway, team_a, member_a_user, approver_a_user, member_a_client, approver_a_client, open_model
):
    form = {
        "team": team_a.pk,
        "kind": "personal",
        "purpose": "Claude Code for the payments refactor",
        "data_classification": classification("internal").pk,
        "models": [open_model.pk],
        "monthly_budget": "30",
        "expiry_days": "30",
    }
    assert member_a_client.post(reverse("key_request_create"), form).status_code == 302
    kr = KeyRequest.objects.get()
    assert "Pending" in member_a_client.get(reverse("key_request_detail", args=[kr.pk])).content.decode()

    queue = approver_a_client.get(reverse("approval_queue")).content.decode()
    assert f"request-{kr.pk}" in queue
    approver_a_client.post(reverse("approval_decide", args=[kr.pk]), {"decision": "approve", "note": "ok"})

    key = VirtualKey.objects.get(request=kr)
    wait_until(
        lambda: _refresh(key).status == VirtualKey.Status.ACTIVE,
        what="the worker to provision the key",
        process=rq_worker.process,
    )
    assert GatewayCommand.objects.get(key=key).status == GatewayCommand.Status.DONE

    page = member_a_client.post(reverse("key_reveal", args=[key.pk]))
    assert page.status_code == 200
    secret = page.context["secret"]
    assert secret.startswith("sk-") and secret.endswith(key.last4)
    assert "ANTHROPIC_BASE_URL" in page.content.decode()
    again = member_a_client.post(reverse("key_reveal", args=[key.pk]), follow=True)
    assert secret not in again.content.decode()
    assert "already revealed" in again.content.decode()
    assert f"sk-...{key.last4}" in member_a_client.get(reverse("key_detail", args=[key.pk])).content.decode()

    assert chat(live_gateway.url, secret).status_code == 200

    member_a_client.post(reverse("key_revoke", args=[key.pk]), {"reason": "done with it"})
    wait_until(
        lambda: _refresh(key).status == VirtualKey.Status.REVOKED,
        what="the worker to delete the key",
        process=rq_worker.process,
    )
    assert key.revoked_at is not None
    assert chat(live_gateway.url, secret).status_code == 401


# --- faults -----------------------------------------------------------------------------------------------


def test_gateway_down_at_approval_provisions_after_it_comes_back_without_a_hand(
    live_gateway, settings, team_a, member_a_user, approver_a_user, open_model, admin_client
):
    settings.LITELLM_URL = "http://127.0.0.1:9"  # nothing listens there
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    command = GatewayCommand.objects.get(key=key)
    assert command.status == GatewayCommand.Status.PENDING and command.attempts == 1
    assert "Unavailable" in command.last_error
    assert _refresh(key).status == VirtualKey.Status.PROVISIONING
    page = admin_client.get(reverse("gateway_commands")).content.decode()
    assert "Unavailable" in page
    # The status filter says how many commands have each status.
    assert ">Pending (1)</option>" in page and ">Failed — needs a hand (0)</option>" in page

    settings.LITELLM_URL = live_gateway.url
    # The cron sweeper finds the command once its backoff is over.
    assert services.gateway_commands_sweep(now=timezone.now() + timedelta(hours=2)) == 1
    assert _refresh(key).status == VirtualKey.Status.ACTIVE
    assert len(_gateway_aliases(live_gateway, key.alias)) == 1


def test_redis_flushed_after_approval_is_recovered_by_the_sweeper(
    rq_worker, redis_queue, live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    rq_worker.kill()  # nothing consumes the job before Redis loses it
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    redis_queue.flushdb()
    rq_worker.restart()
    assert _refresh(key).status == VirtualKey.Status.PROVISIONING
    assert services.gateway_commands_sweep() == 1
    wait_until(
        lambda: _refresh(key).status == VirtualKey.Status.ACTIVE,
        what="the re-enqueued command",
        process=rq_worker.process,
    )


def test_a_command_rerun_after_the_worker_died_mid_command_makes_one_key_not_two(
    live_gateway, team_a, member_a_user, approver_a_user, open_model, settings
):
    settings.LITELLM_URL = "http://127.0.0.1:9"
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    settings.LITELLM_URL = live_gateway.url
    command = GatewayCommand.objects.get(key=key)
    # A worker takes the command, the gateway creates the key, and the worker dies before recording it.
    command = services.COMMANDS.claim(command.pk, now=timezone.now() + timedelta(hours=1))
    gateway_handlers.key_generate(command)
    assert _refresh(command).status == GatewayCommand.Status.RUNNING
    assert len(_gateway_aliases(live_gateway, key.alias)) == 1
    # Time passes: the dead worker's lease runs out.
    GatewayCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert services.gateway_commands_sweep() == 1
    assert _refresh(key).status == VirtualKey.Status.ACTIVE
    assert _refresh(command).status == GatewayCommand.Status.DONE
    assert len(_gateway_aliases(live_gateway, key.alias)) == 1
    assert AuditEvent.objects.filter(action="key.provisioned", target_id=str(key.pk)).count() == 1


def test_an_alias_taken_in_the_gateway_fails_visibly_and_can_be_retried_by_hand(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, admin_client, open_model
):
    kr = services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    alias = f"govsite-r{kr.pk}-k1"
    with live_gateway.client() as client:
        squatter = client.key_generate(key_alias=alias)
    key = services.key_request_approve(request=kr, approver=approver_a_user)
    command = GatewayCommand.objects.get(key=key)
    assert command.status == GatewayCommand.Status.FAILED
    assert "alias" in command.last_error
    assert _refresh(key).status == VirtualKey.Status.FAILED
    assert AuditEvent.objects.filter(action="gateway_command.failed").exists()
    assert "Retry" in admin_client.get(reverse("gateway_commands") + "?status=failed").content.decode()

    with live_gateway.client() as client:
        client.key_delete(keys=[squatter["token"]])
    assert admin_client.post(reverse("gateway_command_retry", args=[command.pk])).status_code == 302
    assert _refresh(key).status == VirtualKey.Status.ACTIVE


def test_disabled_custom_keys_fail_at_once_and_show_as_a_gateway_configuration_problem(
    live_gateway, team_a, member_a_user, approver_a_user, admin_client, open_model
):
    live_gateway.gateway_settings(disable_custom_api_keys=True)
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    command = GatewayCommand.objects.get(key=key)

    assert (command.status, command.attempts) == (GatewayCommand.Status.FAILED, 1), "retrying cannot help"
    assert command.last_error.startswith("CustomKeysDisabled:") and command.is_gateway_misconfigured
    assert _refresh(key).status == VirtualKey.Status.FAILED
    page = admin_client.get(reverse("gateway_commands") + "?status=failed").content.decode()
    assert "Gateway configuration" in page and "disable_custom_api_keys" in page
    assert "master key" not in page

    live_gateway.gateway_settings(disable_custom_api_keys=False)
    assert admin_client.post(reverse("gateway_command_retry", args=[command.pk])).status_code == 302
    assert _refresh(key).status == VirtualKey.Status.ACTIVE


def test_a_secret_the_gateway_already_holds_is_never_reported_as_provisioned(
    live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    """LiteLLM keeps the old key and answers 200; govsite must not mark its own key active."""
    live_gateway.faults(fail_next=1, status=500)
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    command = GatewayCommand.objects.get(key=key)
    assert _refresh(command).status == GatewayCommand.Status.PENDING
    with live_gateway.client() as client:  # someone else's key, with the very secret govsite sends
        client.key_generate(key=crypto.decrypt(key.secret_encrypted), key_alias=live_gateway.unique("other"))

    services.gateway_commands_sweep(now=timezone.now() + timedelta(hours=2))

    assert _refresh(command).status == GatewayCommand.Status.FAILED
    assert command.last_error.startswith("SecretAlreadyUsed:")
    assert _refresh(key).status == VirtualKey.Status.FAILED
    assert not _gateway_aliases(live_gateway, key.alias), "no key under govsite's alias"


def test_the_keys_user_is_created_in_the_gateway_before_the_key(
    live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    """/key/generate does not create the user it names; the handler does, with /user/new."""
    # The sandbox lives for the whole session: an e-mail no earlier test gave another gateway user.
    member_a_user.email = f"{live_gateway.unique('member')}@example.com"
    member_a_user.save(update_fields=["email"])
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    assert _refresh(key).status == VirtualKey.Status.ACTIVE
    with sqlite3.connect(live_gateway.db_path) as conn:
        users = conn.execute(
            "SELECT user_email FROM users WHERE user_id = ?", (gateway_handlers.gateway_user_id(member_a_user.pk),)
        ).fetchall()
    assert users == [(member_a_user.email,)]


def test_an_email_another_gateway_user_holds_does_not_leave_the_keys_user_missing(
    live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    """LiteLLM keeps user e-mails unique: with a hand-made gateway user holding the person's e-mail, the
    handler still makes govsite's own user for the key (without the e-mail) instead of assuming it exists."""
    member_a_user.email = f"{live_gateway.unique('taken')}@example.com"
    member_a_user.save(update_fields=["email"])
    with live_gateway.client() as client:
        client.user_new(user_id=live_gateway.unique("hand-made"), user_email=member_a_user.email)
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    assert _refresh(key).status == VirtualKey.Status.ACTIVE
    with sqlite3.connect(live_gateway.db_path) as conn:
        users = conn.execute(
            "SELECT user_email FROM users WHERE user_id = ?", (gateway_handlers.gateway_user_id(member_a_user.pk),)
        ).fetchall()
    assert users == [(None,)], "the key's own user exists, without the e-mail another user holds"


def test_gateway_500s_are_retried_until_the_key_exists(
    live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    live_gateway.faults(fail_next=2, status=500)
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    command = GatewayCommand.objects.get(key=key)
    later = timezone.now()
    for _ in range(3):
        if _refresh(command).status == GatewayCommand.Status.DONE:
            break
        assert command.status == GatewayCommand.Status.PENDING and command.last_error
        later += timedelta(hours=2)
        services.gateway_commands_sweep(now=later)
    assert _refresh(command).status == GatewayCommand.Status.DONE and command.attempts >= 2
    assert _refresh(key).status == VirtualKey.Status.ACTIVE


def test_gateway_timeouts_are_retried(live_gateway, settings, team_a, member_a_user, approver_a_user, open_model):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.5
    live_gateway.faults(delay_next=1, seconds=2)
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    command = GatewayCommand.objects.get(key=key)
    assert command.status == GatewayCommand.Status.PENDING and "timed out" in command.last_error
    services.gateway_commands_sweep(now=timezone.now() + timedelta(hours=2))
    assert _refresh(key).status == VirtualKey.Status.ACTIVE


# --- after provisioning ------------------------------------------------------------------------------------


def _reveal(key, owner) -> str:
    return services.key_reveal(key=_refresh(key), actor=owner)


def test_rotation_keeps_the_old_key_for_the_grace_period_then_deletes_it(
    live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    old = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    old_secret = _reveal(old, member_a_user)
    new = services.key_rotate(key=_refresh(old), actor=member_a_user)
    assert _refresh(new).status == VirtualKey.Status.ACTIVE
    assert new.allowed_models == old.allowed_models and new.max_budget == old.max_budget
    new_secret = _reveal(new, member_a_user)
    assert chat(live_gateway.url, old_secret).status_code == 200
    assert chat(live_gateway.url, new_secret).status_code == 200

    assert services.rotation_grace_sweep(now=timezone.now() + timedelta(hours=1)) == 0
    assert services.rotation_grace_sweep(now=timezone.now() + timedelta(hours=25)) == 1
    assert _refresh(old).status == VirtualKey.Status.REVOKED
    assert chat(live_gateway.url, old_secret).status_code == 401
    assert chat(live_gateway.url, new_secret).status_code == 200


def test_keys_expire_at_their_date_and_owners_are_reminded_a_week_before(
    live_gateway, team_a, member_a_user, approver_a_user, open_model
):
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model], expiry_days=10)
    _refresh(key)
    mail.outbox.clear()
    services.keys_expire(now=key.expires_at - timedelta(days=6))
    assert [m.to for m in mail.outbox] == [[member_a_user.email]]
    services.keys_expire(now=key.expires_at - timedelta(days=5))
    assert len(mail.outbox) == 1  # reminded once
    assert services.keys_expire(now=key.expires_at + timedelta(seconds=1)) == 1
    assert _refresh(key).status == VirtualKey.Status.EXPIRED
    assert AuditEvent.objects.filter(action="key.expired", target_id=str(key.pk)).count() == 1


def test_a_deactivated_persons_keys_are_revoked_by_the_next_job_run(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, open_model
):
    personal = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    secret = _reveal(personal, member_a_user)
    service = _approved_key(
        member_a_user,
        approver_a_user,
        team_a,
        [open_model],
        kind=KeyKind.SERVICE,
        service_name="deploy-bot",
        owner=member_a_user,
    )
    account_services.user_deactivate(actor=admin_user, user=member_a_user)
    mail.outbox.clear()
    assert services.leaver_keys_sweep() == 1
    assert _refresh(personal).status == VirtualKey.Status.REVOKED
    assert personal.revoked_at > _refresh(member_a_user).deactivated_at
    assert chat(live_gateway.url, secret).status_code == 401
    assert _refresh(service).status == VirtualKey.Status.ACTIVE and service.owner_needs_reassignment
    assert any(approver_a_user.email in m.to for m in mail.outbox)
    assert services.leaver_keys_sweep() == 0  # nothing twice


def test_reconciliation_lists_unmanaged_keys_and_deletes_revoked_ones_still_live(
    live_gateway, team_a, member_a_user, approver_a_user, admin_user, open_model
):
    with live_gateway.client() as client:
        by_hand = client.key_generate(key_alias="made-by-hand", models=["gpt-4o"])
    key = _approved_key(member_a_user, approver_a_user, team_a, [open_model])
    # govsite believes this key is gone, but the gateway still has it.
    VirtualKey.objects.filter(pk=key.pk).update(status=VirtualKey.Status.REVOKED)

    # The sandbox process outlives each test, so keys of earlier tests are unmanaged here too.
    result = services.gateway_reconcile()
    assert result.unmanaged_new >= 1 and result.redeleted == 1
    unmanaged = UnmanagedKey.objects.get(token_hash=by_hand["token"])
    assert unmanaged.alias == "made-by-hand"
    assert _gateway_aliases(live_gateway, key.alias) == []
    found = AuditEvent.objects.filter(action="key.unmanaged_found", target_id=str(unmanaged.pk))
    assert found.count() == 1
    assert services.gateway_reconcile().unmanaged_new == 0  # each found once
    assert found.count() == 1

    services.unmanaged_key_delete(unmanaged=unmanaged, actor=admin_user)
    assert _gateway_aliases(live_gateway, "made-by-hand") == []
