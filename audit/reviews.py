"""Access review campaigns: open (snapshot), decide, remind, handle the due date, sign off.

Each transition is one service with its audit event in the same transaction. A revocation is
keys.services.key_withdraw and a reduction keys.services.key_reduce, in the decision's transaction: they
reach the gateway as gateway commands like any other change of a key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

import audit
from audit import notifications
from audit.models import AccessReview, AccessReviewDecision, AccessReviewItem
from audit.reports import chunks
from budgets.models import DailyRollup
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.errors import InvalidTransition
from keys import services as key_services
from keys.models import VirtualKey

SPEND_WINDOW_DAYS = 90


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(microseconds=1)


def _usage(key_ids: list[int], today: date) -> dict[int, dict]:
    """Per key: last day with requests and the ledger cost of the last 90 days (from the rollups)."""
    since = today - timedelta(days=SPEND_WINDOW_DAYS)
    usage: dict[int, dict] = {}
    for batch in chunks(key_ids, 5000):
        rows = (
            DailyRollup.objects.filter(key_id__in=batch)
            .values("key_id")
            .annotate(
                last_day=Max("day", filter=Q(requests__gt=0)),
                spend=Sum("cost", filter=Q(day__gt=since, day__lte=today)),
            )
        )
        for row in rows:
            usage[row["key_id"]] = row
    return usage


def scope_keys(teams: Iterable[Team] = ()):
    """The keys a campaign over these teams (none: every team) would snapshot: every live key."""
    qs = VirtualKey.objects.filter(status__in=VirtualKey.LIVE_STATUSES)
    team_ids = [team.pk for team in teams]
    return qs.filter(team_id__in=team_ids) if team_ids else qs


@transaction.atomic(durable=True)
def access_review_open(
    *, actor: User, name: str, due_on: date | None, on_due: str, teams: Iterable[Team] = ()
) -> AccessReview:
    """Open a campaign: snapshot every live key in scope, tell the reviewers."""
    permissions.require(permissions.can_open_access_review(actor), "Only admins open access reviews.")
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Name the campaign, e.g. 'Q3 2026 key review'."
    now = timezone.now()
    if due_on is None:
        errors["due_on"] = "Give a due date."
    elif due_on <= now.date():
        errors["due_on"] = "The due date must be after today."
    if on_due not in AccessReview.OnDue.values:
        errors["on_due"] = "Choose what happens to keys nobody reviewed by the due date."
    if errors:
        raise ValidationError(errors)
    teams = sorted(teams, key=lambda team: team.name)
    keys = (
        scope_keys(teams)
        .select_related("owner", "team", "request__data_classification")
        .order_by("team__name", "owner__email", "alias")
    )
    key_ids = list(keys.values_list("pk", flat=True))
    if not key_ids:
        where = "in " + ", ".join(team.name for team in teams) if teams else "in any team"
        raise ValidationError({"teams": f"There is no live key {where}: a campaign needs at least one key to review."})
    review = AccessReview.objects.create(
        name=name[:200],
        opened_by=actor,
        opened_at=now,
        due_at=_end_of_day(due_on),
        on_due=on_due,
        all_teams=not teams,
        key_count=len(key_ids),
    )
    review.teams.set(teams)
    usage = _usage(key_ids, now.date())
    for batch in chunks(keys.iterator(chunk_size=2000), 1000):
        AccessReviewItem.objects.bulk_create(
            [
                AccessReviewItem(
                    review=review,
                    key=key,
                    snapshot_at=now,
                    key_alias=key.alias,
                    key_kind=key.kind,
                    service_name=key.service_name,
                    key_status=key.status,
                    owner=key.owner,
                    owner_email=key.owner.email,
                    owner_active=key.owner.is_active,
                    requested_by_id=key.request.requested_by_id if key.request_id else None,
                    team=key.team,
                    team_name=key.team.name,
                    data_classification=key.request.data_classification.label if key.request_id else "",
                    allowed_models=list(key.allowed_models),
                    max_budget=key.max_budget,
                    expires_at=key.expires_at,
                    key_created_at=key.created_at,
                    last_used_at=key.last_used_at,
                    last_used_day=usage.get(key.pk, {}).get("last_day"),
                    spend_90d=usage.get(key.pk, {}).get("spend") or Decimal("0"),
                )
                for key in batch
            ]
        )
    audit.record(
        actor=actor,
        action="access_review.opened",
        target=review,
        data={
            "name": review.name,
            "due_at": review.due_at,
            "on_due": on_due,
            "teams": [team.name for team in teams] or "all",
            "keys": len(key_ids),
        },
    )
    notifications.review_opened(review, reviewers=pending_by_reviewer(review))
    return review


# --- who reviews what ---------------------------------------------------------------------------------------


def pending_by_reviewer(review: AccessReview) -> dict[str, int]:
    """{email: undecided keys they may decide}: permissions/ answers who reviews what."""
    return permissions.reviewers_of(review)


# --- deciding -----------------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def access_review_decide(
    *,
    actor: User,
    item: AccessReviewItem,
    decision: str,
    rationale: str,
    keep_models: list[str] | None = None,
    max_budget: Decimal | None = None,
) -> AccessReviewDecision:
    """Keep, reduce or revoke one key of the snapshot, with the reviewer's rationale (required)."""
    item = AccessReviewItem.objects.select_related("review").get(pk=item.pk)
    permissions.require_can_decide_access_review_item(actor, item)
    review = AccessReview.objects.select_for_update().get(pk=item.review_id)
    item.review = review
    if not review.is_open:
        raise InvalidTransition(review.status, "decide", "This campaign is signed off: its decisions are final.")
    permissions.require_can_decide_access_review_item(actor, item)  # escalation may have happened meanwhile
    if AccessReviewDecision.objects.filter(item=item).exists():
        raise InvalidTransition("decided", "decide", "This key was already decided in this campaign.")
    rationale = (rationale or "").strip()
    errors = {}
    if decision not in AccessReviewDecision.Decision.values:
        errors["decision"] = "Choose keep, reduce or revoke."
    if not rationale:
        errors["rationale"] = "Give the reason for this decision: a review without a rationale is not evidence."
    if errors:
        raise ValidationError(errors)
    key = VirtualKey.objects.select_for_update().get(pk=item.key_id)
    status_before = key.status
    changes: dict = {}
    command = None
    if decision == AccessReviewDecision.Decision.REVOKE:
        command = key_services.key_withdraw(key=key, actor=actor, reason=f"access review #{review.pk}: {rationale}")
        if command is None:
            changes = {"note": f"the key was already {status_before} when it was decided"}
    elif decision == AccessReviewDecision.Decision.REDUCE:
        changes, command = key_services.key_reduce(
            key=key, actor=actor, keep_models=keep_models, max_budget=max_budget, data={"review": review.pk}
        )
    result = AccessReviewDecision.objects.create(
        item=item,
        decision=decision,
        rationale=rationale,
        decided_by=actor,
        as_admin=permissions.is_admin(actor),
        key_status_at_decision=status_before,
        changes=changes,
        gateway_command=command,
    )
    audit.record(
        actor=actor,
        action="access_review.decided",
        target=review,
        team=item.team,
        data={
            "item": item.pk,
            "key": item.key_alias,
            "owner": item.owner_email,
            "decision": decision,
            "rationale": rationale,
            "changes": changes,
        },
    )
    return result


# --- reminders and the due date ------------------------------------------------------------------------------------


def access_review_reminders(*, now: datetime | None = None) -> int:
    """Once a day per open campaign: each reviewer is told how many keys wait for them."""
    now = now or timezone.now()
    today = now.date()
    sent = 0
    for review_id in (
        AccessReview.objects.filter(status=AccessReview.Status.OPEN)
        .exclude(last_reminded_on=today)
        .values_list("pk", flat=True)
    ):
        sent += _remind(review_id, today)
    return sent


@transaction.atomic(durable=True)
def _remind(review_id: int, today: date) -> int:
    review = AccessReview.objects.select_for_update().get(pk=review_id)
    if review.last_reminded_on == today or not review.is_open:
        return 0
    review.last_reminded_on = today
    review.save(update_fields=["last_reminded_on"])
    pending = pending_by_reviewer(review)
    if not pending:
        return 0
    audit.record(
        action="access_review.reminders_sent",
        actor_label="system",
        target=review,
        data={"reviewers": len(pending), "undecided": review.items.filter(decision__isnull=True).count()},
    )
    notifications.review_reminders(review, pending)
    return len(pending)


def access_review_deadlines(*, now: datetime | None = None) -> dict:
    """At the due date: revoke what nobody decided, or escalate it to the admins, as the campaign says."""
    now = now or timezone.now()
    done = {"revoked": 0, "escalated": 0}
    due = AccessReview.objects.filter(
        status=AccessReview.Status.OPEN, deadline_handled_at__isnull=True, due_at__lte=now
    ).values_list("pk", "on_due")
    for review_id, on_due in due:
        if on_due == AccessReview.OnDue.REVOKE:
            undecided = AccessReviewItem.objects.filter(review_id=review_id, decision__isnull=True)
            for item_id in undecided.values_list("pk", flat=True):
                done["revoked"] += _revoke_undecided(item_id, now)
            _deadline_handled(review_id, now)
        else:
            done["escalated"] += _escalate(review_id, now)
    return done


@transaction.atomic(durable=True)
def _revoke_undecided(item_id: int, now: datetime) -> int:
    item = AccessReviewItem.objects.select_for_update().select_related("review").get(pk=item_id)
    if AccessReviewDecision.objects.filter(item=item).exists():
        return 0
    review = item.review
    due = review.due_at.date().isoformat()
    rationale = f"Not reviewed by the due date {due}; the campaign revokes keys nobody reviewed."
    key = VirtualKey.objects.select_for_update().get(pk=item.key_id)
    status_before = key.status
    command = key_services.key_withdraw(
        key=key, actor=None, reason=f"access review #{review.pk}: not reviewed by {due}"
    )
    AccessReviewDecision.objects.create(
        item=item,
        decision=AccessReviewDecision.Decision.REVOKE,
        rationale=rationale,
        decided_by=None,
        by_deadline=True,
        decided_at=now,
        key_status_at_decision=status_before,
        changes={} if command else {"note": f"the key was already {status_before}"},
        gateway_command=command,
    )
    audit.record(
        action="access_review.decided",
        actor_label="system",
        target=review,
        team=item.team,
        data={
            "item": item.pk,
            "key": item.key_alias,
            "owner": item.owner_email,
            "decision": "revoke",
            "rationale": rationale,
            "by_deadline": True,
        },
    )
    return 1


@transaction.atomic(durable=True)
def _deadline_handled(review_id: int, now: datetime) -> None:
    review = AccessReview.objects.select_for_update().get(pk=review_id)
    if review.deadline_handled_at:
        return
    review.deadline_handled_at = now
    review.save(update_fields=["deadline_handled_at"])
    revoked = review.items.filter(decision__by_deadline=True).count()
    audit.record(
        action="access_review.due_date_handled",
        actor_label="system",
        target=review,
        data={"on_due": review.on_due, "revoked_unreviewed": revoked},
    )


@transaction.atomic(durable=True)
def _escalate(review_id: int, now: datetime) -> int:
    review = AccessReview.objects.select_for_update().get(pk=review_id)
    if review.deadline_handled_at:
        return 0
    undecided = review.items.filter(decision__isnull=True).count()
    review.deadline_handled_at = now
    if undecided:
        review.escalated_at = now
    review.save(update_fields=["deadline_handled_at", "escalated_at"])
    audit.record(
        action="access_review.escalated" if undecided else "access_review.due_date_handled",
        actor_label="system",
        target=review,
        data={"on_due": review.on_due, "undecided": undecided},
    )
    if undecided:
        notifications.review_escalated(review, undecided)
    return undecided


# --- sign-off -------------------------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def access_review_sign_off(*, actor: User, review: AccessReview, note: str) -> AccessReview:
    """An admin closes the campaign once every key is decided and every revocation is confirmed."""
    permissions.require(permissions.can_sign_off_access_review(actor), "Only admins sign off access reviews.")
    review = AccessReview.objects.select_for_update().get(pk=review.pk)
    if not review.is_open:
        raise InvalidTransition(review.status, "sign off", "This campaign is already signed off.")
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Write the sign-off statement (what was reviewed and the outcome)."})
    undecided = review.items.filter(decision__isnull=True).count()
    if undecided:
        raise ValidationError({"note": f"{undecided} key(s) are not decided yet; sign off once every key is."})
    unconfirmed = review.items.filter(
        decision__decision=AccessReviewDecision.Decision.REVOKE,
        decision__gateway_command__isnull=False,
        key__revoked_at__isnull=True,
    ).count()
    if unconfirmed:
        raise ValidationError(
            {"note": f"{unconfirmed} revocation(s) are not confirmed by the gateway yet (see Gateway commands)."}
        )
    review.status = AccessReview.Status.CLOSED
    review.signed_off_by = actor
    review.signed_off_at = timezone.now()
    review.sign_off_note = note
    review.save(update_fields=["status", "signed_off_by", "signed_off_at", "sign_off_note"])
    outcome = dict(Counter(review.items.values_list("decision__decision", flat=True)))
    audit.record(
        actor=actor,
        action="access_review.signed_off",
        target=review,
        data={"note": note, "decisions": outcome, "keys": review.key_count},
    )
    return review
