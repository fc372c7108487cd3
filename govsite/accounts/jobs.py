"""RQ entry points of the accounts app (thin: call a service)."""

from govsite.accounts import slack


def deliver_slack_message(message_id: int) -> str:
    return slack.slack_message_send(message_id=message_id)


def sweep_slack_messages() -> int:
    return slack.slack_messages_sweep()
