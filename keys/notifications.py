"""Emails about keys, and the team's Slack messages about its key requests. Always sent after the transaction
commits, so a rollback sends nothing (a Slack message is an outbox row written in the transaction)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from govsite.accounts import permissions, slack

log = logging.getLogger(__name__)


def _send(subject: str, body: str, recipients: list[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return

    def send():
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        except OSError:
            # Mail is a courtesy; the decision itself is already committed and shown in the site.
            log.exception("could not send %r to %d recipients", subject, len(recipients))

    transaction.on_commit(send)


def _url(name: str, *args) -> str:
    return settings.SITE_URL + reverse(name, args=args)


def _emails(people) -> list[str]:
    return list(people.values_list("email", flat=True))


def request_waiting(key_request, *, admins_only: bool = False) -> None:
    """Tell the people who can decide; a restricted model's second approval is the admins'."""
    who = key_request.requested_by
    recipients = _emails(permissions.admins() if admins_only else permissions.deciders_of(key_request.team_id))
    recipients = [r for r in recipients if r not in (who.email, key_request.owner.email)]
    _send(
        f"[govsite] Key request #{key_request.pk} from {who.display_name} waits for you",
        f"{who.display_name} asks for a key in {key_request.team.name}.\n\n"
        f"Purpose: {key_request.purpose}\n\nDecide it here: {_url('approval_queue')}\n",
        recipients,
    )
    deciders = "an admin (a restricted model)" if admins_only else f"the approvers of {key_request.team.name}"
    models = ", ".join(sorted(key_request.requested_models.values_list("name", flat=True)))
    text, blocks = slack.payload(
        title=f"Key request #{key_request.pk} from {slack.escape(who.display_name)} waits for {deciders}",
        lines=[
            f"Purpose: {slack.escape(key_request.purpose)}",
            f"Models: {slack.escape(models) or '—'}; monthly budget ${key_request.monthly_budget}",
        ],
        link=_url("key_request_detail", key_request.pk),
        link_label="Decide",
    )
    slack.slack_message_queue(
        team=key_request.team,
        event="key_request.waiting_admin" if admins_only else "key_request.waiting",
        text=text,
        blocks=blocks,
    )


def request_decided(key_request, *, outcome: str, note: str = "", by=None) -> None:
    body = f"Your key request #{key_request.pk} for {key_request.team.name} was {outcome}.\n"
    if note:
        body += f"\nNote from the approver: {note}\n"
    body += f"\nSee it here: {_url('key_request_detail', key_request.pk)}\n"
    _send(f"[govsite] Key request #{key_request.pk} {outcome}", body, [key_request.requested_by.email])
    if key_request.approved_by_policy:
        return  # never posted as waiting: the team's rule approved it
    lines = [f"Note: {slack.escape(note)}"] if note else []
    decider = f" by {slack.escape(by.display_name)}" if by is not None else ""
    text, blocks = slack.payload(
        title=f"Key request #{key_request.pk} from {slack.escape(key_request.requested_by.display_name)} "
        f"was {outcome}{decider}",
        lines=lines,
        link=_url("key_request_detail", key_request.pk),
    )
    slack.slack_message_queue(team=key_request.team, event=f"key_request.{outcome}", text=text, blocks=blocks)


def key_ready(key) -> None:
    rollout_id = key.request.rollout_id if key.request_id else None
    if rollout_id:
        # A rollout's key was not asked for by its owner: say where it comes from and what it is for.
        rollout = key.request.rollout
        _send(
            f"[govsite] A key for {key.team.name} waits for you",
            f"{rollout.requested_by.display_name} rolled out keys to {key.team.name} (rollout #{rollout_id}), "
            f"and yours is ready: {key.alias}.\n\nWhat it is for: {rollout.purpose}\n"
            f"Models: {', '.join(key.allowed_models)}; budget ${key.max_budget} a month; "
            f"until {key.expires_at:%Y-%m-%d}.\n\nReveal it once here: {_url('key_detail', key.pk)}\n",
            [key.owner.email],
        )
        return
    _send(
        f"[govsite] Your key {key.alias} is ready",
        f"Your key {key.alias} is provisioned. Reveal it once here: {_url('key_detail', key.pk)}\n",
        [key.owner.email],
    )


def rollout_waiting(rollout, *, people: int, admins_only: bool = False) -> None:
    """Tell who can decide a rollout (a restricted model's second approval is the admins')."""
    who = rollout.requested_by
    deciders = permissions.admins() if admins_only else permissions.deciders_of(rollout.team_id)
    members = set(rollout.members.values_list("user__email", flat=True))
    recipients = [r for r in _emails(deciders) if r != who.email and r not in members]
    if not recipients and not admins_only:
        recipients = [r for r in _emails(permissions.admins()) if r != who.email and r not in members]
    _send(
        f"[govsite] Rollout #{rollout.pk} to {rollout.team.name} waits for you",
        f"{who.display_name} asks for keys for {people} people in {rollout.team.name}.\n\n"
        f"Purpose: {rollout.purpose}\n\nDecide it here: {_url('rollout_detail', rollout.pk)}\n",
        recipients,
    )


def rollout_decided(rollout, *, outcome: str, note: str = "", keys: int = 0) -> None:
    body = f"Your rollout #{rollout.pk} to {rollout.team.name} was {outcome}"
    body += f": {keys} keys are being made.\n" if outcome == "approved" else ".\n"
    if note:
        body += f"\nNote from the approver: {note}\n"
    body += f"\nSee it here: {_url('rollout_detail', rollout.pk)}\n"
    _send(f"[govsite] Rollout #{rollout.pk} {outcome}", body, [rollout.requested_by.email])


def key_expiring(key) -> None:
    _send(
        f"[govsite] Your key {key.alias} expires on {key.expires_at:%Y-%m-%d}",
        f"Your key {key.alias} ({key.masked}) expires on {key.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        f"Request a new one before then: {_url('key_request_create')}\n",
        [key.owner.email],
    )


def key_revoked(key, *, reason: str) -> None:
    _send(
        f"[govsite] Your key {key.alias} was revoked",
        f"Your key {key.alias} ({key.masked}) was revoked: {reason}.\n",
        [key.owner.email],
    )


def service_key_needs_owner(key) -> None:
    _send(
        f"[govsite] Service key {key.alias} has lost its owner",
        f"{key.owner.email}, owner of the service key {key.alias} ({key.service_name}), has left.\n"
        f"Reassign an owner or revoke it: {_url('key_detail', key.pk)}\n",
        _emails(permissions.deciders_of(key.team_id)),
    )
