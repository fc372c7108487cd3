"""Emails about access reviews. Sent after the transaction commits, so a rollback sends nothing."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from govsite.accounts import permissions

log = logging.getLogger(__name__)


def _send(subject: str, body: str, recipients: list[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return

    def send():
        for recipient in recipients:
            try:
                send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
            except OSError:
                # Mail is a courtesy: the campaign, its queue and its due date do not depend on it.
                log.exception("could not send %r to a reviewer", subject)

    transaction.on_commit(send)


def _url(name: str, *args) -> str:
    return settings.SITE_URL + reverse(name, args=args)


def _per_reviewer(review, pending: dict[str, int], subject: str, opening: str) -> None:
    due = review.due_at.strftime("%Y-%m-%d")
    for email, count in pending.items():
        _send(
            subject,
            f"{opening}\n\n{count} key{'s' if count != 1 else ''} wait for your decision (keep, reduce or revoke, "
            f"with your reason) by {due}. Your own keys go to another approver.\n\n"
            f"Review them here: {_url('access_review_queue')}\n",
            [email],
        )


def review_opened(review, *, reviewers: dict[str, int]) -> None:
    _per_reviewer(
        review,
        reviewers,
        f"[govsite] Access review: {review.name}",
        f"{review.opened_by.display_name} opened the access review '{review.name}'.",
    )


def review_reminders(review, pending: dict[str, int]) -> None:
    _per_reviewer(
        review,
        pending,
        f"[govsite] Reminder: access review {review.name} is due {review.due_at:%Y-%m-%d}",
        f"The access review '{review.name}' is still open.",
    )


def review_escalated(review, undecided: int) -> None:
    _send(
        f"[govsite] Access review {review.name} passed its due date with {undecided} keys undecided",
        f"The access review '{review.name}' passed its due date; {undecided} key(s) were not reviewed and are now "
        f"yours to decide.\n\nDecide them here: {_url('access_review_queue')}\n"
        f"Campaign: {_url('access_review_detail', review.pk)}\n",
        list(permissions.admins().values_list("email", flat=True)),
    )
