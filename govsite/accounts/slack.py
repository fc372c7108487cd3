"""Messages to a team's Slack incoming webhook, through the outbox (govsite.outbox) like alert deliveries.

A team's webhook URL is a secret of sorts (whoever holds it posts into the channel): it is never logged,
never written into an audit event and never shown whole once saved — only `webhook_hint`.
The payload is what Slack's incoming webhooks take: `text` (the notification and fallback) and `blocks`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils import timezone

from govsite.accounts.models import SlackMessage, Team
from govsite.outbox import Outbox

log = logging.getLogger(__name__)

SLACK_TIMEOUT_SECONDS = 10

MESSAGES = Outbox(
    model=SlackMessage,
    job="govsite.accounts.jobs.deliver_slack_message",
    waiting=(SlackMessage.Status.PENDING, SlackMessage.Status.FAILED),
    retry=SlackMessage.Status.FAILED,
    running=SlackMessage.Status.SENDING,
    done=SlackMessage.Status.SENT,
    gave_up=SlackMessage.Status.GAVE_UP,
    max_attempts=getattr(settings, "ALERT_DELIVERY_MAX_ATTEMPTS", 10),
    lease=timedelta(minutes=5),
    backoff_base=timedelta(seconds=30),
)


class SlackRefused(Exception):
    """Slack answered with an error trying again cannot fix (the webhook was revoked, the payload refused)."""


def webhook_hint(url: str) -> str:
    """What may be shown or audited of a webhook URL: its host and the last four characters."""
    if not url:
        return ""
    return f"{urlsplit(url).hostname or 'webhook'}/…{url[-4:]}"


def escape(text: str) -> str:
    """Slack's mrkdwn gives &, < and > meanings; a person's words are shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(*, title: str, lines: list[str], link: str = "", link_label: str = "Open in govsite") -> tuple:
    """(text, blocks): the title and lines (already escaped), and a button to `link`."""
    body = "\n".join(lines)
    text = f"{title}\n{body}" + (f"\n{link}" if link else "")
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{body}"[:3000]}},
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": link_label}, "url": link[:3000]}
                ],
            }
        )
    return text, blocks


def slack_message_queue(*, team: Team, event: str, text: str, blocks: list[dict]) -> SlackMessage | None:
    """In the caller's transaction: a message for the team's webhook, sent once the transaction commits.
    None when the team has no webhook."""
    if not team.slack_webhook_url:
        return None
    message = SlackMessage.objects.create(team=team, event=event, text=text, blocks=blocks)
    MESSAGES.enqueue(message.pk)
    return message


def _post(message: SlackMessage) -> None:
    url = Team.objects.filter(pk=message.team_id).values_list("slack_webhook_url", flat=True).first()
    if not url:
        raise SlackRefused("the team has no Slack webhook any more")
    try:
        response = httpx.post(url, json={"text": message.text, "blocks": message.blocks}, timeout=SLACK_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        # httpx names the URL in some errors: only the kind of failure is kept.
        raise OSError(f"Slack could not be reached ({type(exc).__name__})") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise OSError(f"Slack answered HTTP {response.status_code}: {response.text[:200]}")
    if not response.is_success:
        raise SlackRefused(f"Slack answered HTTP {response.status_code}: {response.text[:200]}")


def slack_message_send(*, message_id: int) -> str:
    """Send one message (the job); on failure record why and when it is tried again. Returns its status."""
    message = MESSAGES.claim(message_id)
    if message is None:
        return "skipped"
    try:
        _post(message)
    except (OSError, SlackRefused) as exc:
        message = MESSAGES.fail(message.pk, str(exc), retryable=not isinstance(exc, SlackRefused))
        log.warning("Slack message %s (%s) failed: %s", message.pk, message.event, message.last_error)
        return message.status
    return MESSAGES.complete(message.pk, apply=_sent).status


def _sent(message: SlackMessage) -> None:
    message.sent_at = timezone.now()
    message.save(update_fields=["sent_at"])


def slack_messages_sweep(*, now: datetime | None = None) -> int:
    """Enqueue what is due: failed messages past their back-off, pending ones the queue lost."""
    return MESSAGES.sweep(now=now)
