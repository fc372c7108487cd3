"""Slack where approvers already are: a team's incoming webhook hears of key and increase requests waiting for
its approvers (with a link to decide them) and of their decisions, through the outbox, retried on failure.
The webhook URL is a secret of sorts: audited and shown by its hint only, never logged."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from budgets import services as budget_services
from budgets.models import Budget
from govsite.accounts import slack
from govsite.accounts.models import SlackMessage, Team
from keys import services as key_services
from tests.budgets.conftest import inline_jobs, webhook  # noqa: F401  (the local Slack webhook server)
from tests.keys.conftest import live_gateway, open_model, request_input  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slack_team(team_a, webhook):  # noqa: F811
    Team.objects.filter(pk=team_a.pk).update(slack_webhook_url=webhook.url)
    team_a.refresh_from_db()
    return team_a


def _is_slack_payload(body: dict) -> None:
    """What Slack's incoming webhooks take: `text`, and `blocks` of known types with mrkdwn or buttons."""
    assert isinstance(body["text"], str) and body["text"]
    for block in body["blocks"]:
        assert block["type"] in {"section", "actions"}
        if block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn" and len(block["text"]["text"]) <= 3000
        else:
            for element in block["elements"]:
                assert element["type"] == "button" and element["text"]["type"] == "plain_text"
                assert element["url"].startswith("http")


def test_a_key_request_waiting_and_its_rejection_are_posted(
    inline_jobs,  # noqa: F811
    slack_team,
    webhook,  # noqa: F811
    member_a_user,
    approver_a_user,
    open_model,  # noqa: F811
):
    request = key_services.key_request_create(
        requester=member_a_user, data=request_input(slack_team, [open_model], purpose="Summaries <b>& more</b>")
    )
    assert len(webhook.received) == 1
    waiting = webhook.received[0]
    _is_slack_payload(waiting)
    link = f"http://govsite.test{reverse('key_request_detail', args=[request.pk])}"
    assert waiting["blocks"][-1]["elements"][0]["url"] == link
    assert waiting["blocks"][-1]["elements"][0]["text"]["text"] == "Decide"
    assert f"#{request.pk}" in waiting["text"] and "waits for the approvers of Team A" in waiting["text"]
    assert "&lt;b&gt;&amp; more&lt;/b&gt;" in waiting["blocks"][0]["text"]["text"]  # shown as written

    key_services.key_request_reject(request=request, approver=approver_a_user, note="Use the shared key")
    assert len(webhook.received) == 2
    decided = webhook.received[1]
    _is_slack_payload(decided)
    assert "was rejected by" in decided["text"] and "Use the shared key" in decided["text"]
    assert list(SlackMessage.objects.order_by("pk").values_list("event", "status")) == [
        ("key_request.waiting", "sent"),
        ("key_request.rejected", "sent"),
    ]


def test_an_approval_is_posted_back(
    inline_jobs,  # noqa: F811
    slack_team,
    webhook,  # noqa: F811
    member_a_user,
    approver_a_user,
    open_model,  # noqa: F811
    live_gateway,  # noqa: F811
):
    request = key_services.key_request_create(requester=member_a_user, data=request_input(slack_team, [open_model]))
    key_services.key_request_approve(request=request, approver=approver_a_user)
    assert [m.event for m in SlackMessage.objects.order_by("pk")] == ["key_request.waiting", "key_request.approved"]
    assert "was approved by" in webhook.received[-1]["text"]
    assert all(secret_like not in json.dumps(webhook.received) for secret_like in ("sk-", "gst_"))


def test_an_increase_request_waiting_and_its_approval_are_posted(
    inline_jobs,  # noqa: F811
    slack_team,
    webhook,  # noqa: F811
    member_a_user,
    approver_a_user,
    admin_user,
    live_gateway,  # noqa: F811
):
    budget = Budget.objects.create(
        team=slack_team, amount=Decimal("100"), approver_limit=Decimal("50"), created_by=admin_user
    )
    increase = budget_services.budget_increase_request_create(
        budget=budget, requester=member_a_user, amount=Decimal("20"), justification="release week"
    )
    waiting = webhook.received[0]
    _is_slack_payload(waiting)
    assert "$20.00 more" in waiting["text"] and "release week" in waiting["text"]
    assert waiting["blocks"][-1]["elements"][0]["url"].endswith(reverse("budget_increase_detail", args=[increase.pk]))
    budget_services.budget_increase_approve(increase=increase, approver=approver_a_user, note="ok")
    assert "was approved by" in webhook.received[-1]["text"]
    assert [m.event for m in SlackMessage.objects.order_by("pk")] == [
        "budget_increase.waiting",
        "budget_increase.approved",
    ]


def test_a_team_without_a_webhook_posts_nothing(inline_jobs, team_a, member_a_user, open_model):  # noqa: F811
    key_services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    assert not SlackMessage.objects.exists()


def test_a_failed_post_is_retried_after_its_back_off_and_shown_to_admins(
    inline_jobs,  # noqa: F811
    slack_team,
    webhook,  # noqa: F811
    member_a_user,
    open_model,  # noqa: F811
    admin_client,
):
    webhook.statuses = [500]
    key_services.key_request_create(requester=member_a_user, data=request_input(slack_team, [open_model]))
    message = SlackMessage.objects.get()
    assert message.status == SlackMessage.Status.FAILED and "HTTP 500" in message.last_error
    page = admin_client.get(reverse("team_detail", args=[slack_team.slug])).content.decode()
    assert "HTTP 500" in page and "Failed — will retry" in page

    assert slack.slack_messages_sweep() == 0  # not before its back-off
    SlackMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.next_attempt_at - timedelta(hours=1))
    assert slack.slack_messages_sweep() == 1
    message.refresh_from_db()
    assert message.status == SlackMessage.Status.SENT and message.attempts == 2
    assert len(webhook.received) == 2 and webhook.received[0] == webhook.received[1]


def test_a_revoked_webhook_is_given_up_not_hammered(
    inline_jobs,  # noqa: F811
    slack_team,
    webhook,  # noqa: F811
    member_a_user,
    open_model,  # noqa: F811
):
    webhook.statuses = [404]  # Slack's answer for a removed webhook: no_service
    key_services.key_request_create(requester=member_a_user, data=request_input(slack_team, [open_model]))
    message = SlackMessage.objects.get()
    assert message.status == SlackMessage.Status.GAVE_UP and "HTTP 404" in message.last_error
    assert slack.slack_messages_sweep() == 0


def test_an_unreachable_webhook_is_retried_and_its_url_is_not_in_the_error(
    inline_jobs,  # noqa: F811
    team_a,
    member_a_user,
    open_model,  # noqa: F811
):
    from govsite.devtools.processes import free_port

    url = f"http://127.0.0.1:{free_port()}/services/T1/B1/secretpart"
    Team.objects.filter(pk=team_a.pk).update(slack_webhook_url=url)
    team_a.refresh_from_db()
    key_services.key_request_create(requester=member_a_user, data=request_input(team_a, [open_model]))
    message = SlackMessage.objects.get()
    assert message.status == SlackMessage.Status.FAILED
    assert "secretpart" not in message.last_error and "ConnectError" in message.last_error


# --- configuring the webhook -----------------------------------------------------------------------------------


def test_setting_the_webhook_is_audited_by_its_hint_and_never_shown_or_logged_whole(
    admin_client, admin_user, team_a, caplog
):
    caplog.set_level(logging.DEBUG)
    url = "https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopWXYZ"
    form = {"name": team_a.name, "slug": team_a.slug, "description": "", "cost_centre": "", "slack_webhook_url": url}
    response = admin_client.post(reverse("team_edit", args=[team_a.slug]), form)
    assert response.status_code == 302
    team_a.refresh_from_db()
    assert team_a.slack_webhook_url == url

    event = AuditEvent.objects.get(action="team.updated")
    assert event.actor_id == admin_user.pk
    assert event.data["changes"]["slack_webhook_url"] == {"before": "", "after": "hooks.slack.com/…WXYZ"}
    assert "abcdefghijklmnop" not in json.dumps(event.data)
    for page in (reverse("team_detail", args=[team_a.slug]), reverse("team_edit", args=[team_a.slug])):
        body = admin_client.get(page).content.decode()
        assert "abcdefghijklmnop" not in body and "hooks.slack.com/…WXYZ" in body
    assert "abcdefghijklmnop" not in caplog.text

    # Saving the form again without the field keeps it; replacing it is audited even when the hint is the same.
    admin_client.post(reverse("team_edit", args=[team_a.slug]), {**form, "slack_webhook_url": "", "cost_centre": "C"})
    team_a.refresh_from_db()
    assert team_a.slack_webhook_url == url and team_a.cost_centre == "C"
    same_hint = "https://hooks.slack.com/services/T0001/B0003/anotherpathWXYZ"
    admin_client.post(reverse("team_edit", args=[team_a.slug]), {**form, "slack_webhook_url": same_hint})
    assert AuditEvent.objects.filter(action="team.updated").count() == 3

    # Removing it.
    admin_client.post(
        reverse("team_edit", args=[team_a.slug]), {**form, "slack_webhook_url": "", "remove_slack_webhook": "on"}
    )
    team_a.refresh_from_db()
    assert team_a.slack_webhook_url == ""
    last = AuditEvent.objects.filter(action="team.updated").order_by("-pk").first()
    assert last.data["changes"]["slack_webhook_url"] == {"before": "hooks.slack.com/…WXYZ", "after": ""}


def test_new_url_and_remove_together_is_a_field_error(admin_client, team_a):
    Team.objects.filter(pk=team_a.pk).update(slack_webhook_url="https://hooks.slack.com/services/A/B/C")
    form = {
        "name": team_a.name,
        "slug": team_a.slug,
        "slack_webhook_url": "https://hooks.slack.com/services/D/E/F",
        "remove_slack_webhook": "on",
    }
    response = admin_client.post(reverse("team_edit", args=[team_a.slug]), form)
    assert response.status_code == 200
    assert "Either enter a new URL or remove the webhook" in response.content.decode()


def test_only_admins_configure_the_webhook(approver_a_client, team_a):
    form = {"name": team_a.name, "slug": team_a.slug, "slack_webhook_url": "https://hooks.slack.com/services/X/Y/Z"}
    assert approver_a_client.post(reverse("team_edit", args=[team_a.slug]), form).status_code == 403
    team_a.refresh_from_db()
    assert team_a.slack_webhook_url == ""
