"""Every write to budgets, budget-increase requests, notices and ingest tokens, each audited in
its own transaction. (Ledger writes are budgets.ingest; alerts and blocks are budgets.alerts.)"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from budgets import alerts
from budgets.ingest import BatchInvalid, ingest_spend_rows
from budgets.models import Budget, BudgetIncreaseRequest, Notice, QuarantinedRow
from govsite import jobs
from govsite.accounts import permissions, slack
from govsite.accounts.models import Team, User
from govsite.errors import InvalidTransition
from govsite.periods import period_validate
from keys import services as key_services
from keys.models import GatewayCommand
from keys.services import gateway_command_issue

MAX_BUDGET = Decimal("10000000")


# --- budgets -------------------------------------------------------------------------------------------

BUDGET_FIELDS = (
    "amount",
    "period",
    "period_start",
    "period_end",
    "thresholds",
    "block_at_100",
    "approver_limit",
    "is_active",
)


def _snapshot(budget: Budget) -> dict:
    data = {field: getattr(budget, field) for field in BUDGET_FIELDS}
    data.update(team=budget.team_id, user=budget.user_id, key=budget.key_id)
    return data


def clean_thresholds(value) -> list[int]:
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError({"thresholds": "Give at least one percentage, e.g. 50, 80, 100."})
    try:
        numbers = sorted({int(item) for item in value})
    except (TypeError, ValueError) as exc:
        raise ValidationError({"thresholds": "Thresholds are whole percentages."}) from exc
    if numbers[0] < 1 or numbers[-1] > 1000:
        raise ValidationError({"thresholds": "Each threshold is between 1 and 1000 percent."})
    return numbers


def _validate_budget(budget: Budget) -> None:
    budget.thresholds = clean_thresholds(budget.thresholds)
    if budget.amount is None or budget.amount <= 0 or budget.amount > MAX_BUDGET:
        raise ValidationError({"amount": f"The amount is above 0 and at most {MAX_BUDGET:,}."})
    if budget.user_id and budget.key_id:
        raise ValidationError({"key": "A budget is for a team, one person or one key, not a person and a key."})
    if budget.user_id and not permissions.is_member_of(budget.user, budget.team_id):
        raise ValidationError({"user": f"{budget.user} is not in {budget.team}."})
    if budget.key_id and budget.key.team_id != budget.team_id:
        raise ValidationError({"key": f"{budget.key} does not belong to {budget.team}."})
    if budget.period == Budget.Period.CUSTOM:
        if not budget.period_start or not budget.period_end:
            raise ValidationError({"period_start": "A custom period needs a start and an end date."})
        period_validate(budget.period_start, budget.period_end)
    else:
        budget.period_start = budget.period_end = None
    budget.full_clean(exclude=["thresholds", "created_by"])


def budget_duration(budget: Budget) -> str:
    """The budget's period as LiteLLM's budget_duration."""
    if budget.period == Budget.Period.CUSTOM:
        return f"{(budget.period_end - budget.period_start).days + 1}d"
    return "1mo"


def _sync_team_budget(budget: Budget) -> None:
    """Inside the caller's transaction: tell the gateway the team's budget (a best-effort limit;
    the ledger stays the truth). Only team-level budgets exist as such in LiteLLM."""
    if budget.user_id or budget.key_id:
        return
    payload = (
        {"max_budget": float(budget.amount), "budget_duration": budget_duration(budget)}
        if budget.is_active
        else {"max_budget": None}
    )
    gateway_command_issue(GatewayCommand.Kind.TEAM_SYNC, team=budget.team, payload=payload)


def _schedule_evaluation(budget: Budget) -> None:
    jobs.enqueue("budgets.jobs.evaluate_budget", budget.pk)


@transaction.atomic(durable=True)
def budget_create(
    *,
    actor: User,
    team: Team,
    amount: Decimal,
    user: User | None = None,
    key=None,
    period: str = Budget.Period.MONTHLY,
    period_start: date | None = None,
    period_end: date | None = None,
    thresholds: list[int] | None = None,
    block_at_100: bool = False,
    approver_limit: Decimal = Decimal("0"),
) -> Budget:
    permissions.require(permissions.can_manage_budgets(actor), "Only admins can set budgets.")
    budget = Budget(
        team=team,
        user=user,
        key=key,
        amount=amount,
        period=period,
        period_start=period_start,
        period_end=period_end,
        thresholds=list(thresholds or [50, 80, 100]),
        block_at_100=block_at_100,
        approver_limit=approver_limit,
        created_by=actor,
    )
    _validate_budget(budget)
    budget.save()
    audit.record(actor=actor, action="budget.created", target=budget, team=team, data={"after": _snapshot(budget)})
    _sync_team_budget(budget)
    _schedule_evaluation(budget)
    return budget


@transaction.atomic(durable=True)
def budget_update(*, actor: User, budget: Budget, **changes) -> Budget:
    permissions.require(permissions.can_manage_budgets(actor), "Only admins can change budgets.")
    unknown = set(changes) - set(BUDGET_FIELDS)
    if unknown:
        raise ValueError(f"unknown budget fields {sorted(unknown)}")
    budget = Budget.objects.select_for_update(of=("self",)).select_related("team", "user", "key").get(pk=budget.pk)
    before = _snapshot(budget)
    for name, value in changes.items():
        setattr(budget, name, value)
    _validate_budget(budget)
    after = _snapshot(budget)
    if after == before:
        return budget
    budget.save()
    audit.record(
        actor=actor,
        action="budget.updated",
        target=budget,
        team=budget.team,
        data={"changes": {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}},
    )
    _sync_team_budget(budget)
    alerts.lift_block_if_below(budget=budget, reason="the budget was changed", actor=actor)
    _schedule_evaluation(budget)
    return budget


# --- budget-increase requests ----------------------------------------------------------------------------------


def _increase_link(increase: BudgetIncreaseRequest) -> str:
    return alerts.site_url("budget_increase_detail", increase.pk)


def _deciders(increase: BudgetIncreaseRequest) -> list[User]:
    """Who is asked: the team's approvers within the limit, finance above it (admins if nobody)."""
    budget = increase.budget
    people = alerts.finance() if increase.amount > budget.approver_limit else alerts.team_approvers(budget.team_id)
    people = [user for user in people if user.pk != increase.requested_by_id]
    return people or [user for user in alerts.admins() if user.pk != increase.requested_by_id]


def key_cap_rules_budget(key) -> Budget | None:
    """The budget whose rules and approvers decide a raise of one key's own cap: the key's budget if it has
    one, else its team's budget (its approver limit: the team's approvers below it, finance above)."""
    budgets = Budget.objects.filter(is_active=True, team_id=key.team_id).select_related("team", "user", "key")
    return budgets.filter(key=key).first() or budgets.filter(user__isnull=True, key__isnull=True).first()


@transaction.atomic(durable=True)
def budget_increase_request_create(
    *, budget: Budget, requester: User, amount: Decimal, justification: str, until: date | None = None
) -> BudgetIncreaseRequest:
    """A member asks for `amount` more, for good or until a date (inclusive)."""
    permissions.require(
        permissions.can_request_budget_increase(requester, budget), "You cannot ask for an increase of this budget."
    )
    return _increase_create(
        budget=budget, key=None, requester=requester, amount=amount, justification=justification, until=until
    )


@transaction.atomic(durable=True)
def key_cap_increase_request_create(
    *, key, requester: User, amount: Decimal, justification: str, until: date | None = None
) -> BudgetIncreaseRequest:
    """A key's owner (or an approver of its team) asks for `amount` more on that one key's monthly cap, through
    the same increase flow: the rules budget's approver limit says who decides, nobody decides their own."""
    permissions.require(
        permissions.can_request_key_cap_increase(requester, key), "Only the key's owner or its team's approvers ask."
    )
    if key.status not in ("active", "provisioning"):
        raise ValidationError({"amount": f"The key is {key.get_status_display().lower()}: its cap cannot change."})
    budget = key_cap_rules_budget(key)
    if budget is None:
        raise ValidationError(
            {"amount": f"{key.team} has no budget yet to say who decides; ask an admin to set the team's budget."}
        )
    return _increase_create(
        budget=budget, key=key, requester=requester, amount=amount, justification=justification, until=until
    )


def _increase_create(*, budget, key, requester, amount, justification, until) -> BudgetIncreaseRequest:
    errors = {}
    if amount is None or amount <= 0 or amount > MAX_BUDGET:
        errors["amount"] = f"Ask for an amount above 0 and at most {MAX_BUDGET:,}."
    if not (justification or "").strip():
        errors["justification"] = "Say why it is needed."
    if until is not None and until < timezone.now().date():
        errors["until"] = "A temporary increase ends today or later."
    if not budget.is_active:
        errors["amount"] = "This budget is not active."
    if errors:
        raise ValidationError(errors)
    increase = BudgetIncreaseRequest.objects.create(
        budget=budget, key=key, requested_by=requester, amount=amount, until=until, justification=justification.strip()
    )
    data = {"budget": budget.pk, "amount": amount, "until": until, "needs_finance": amount > budget.approver_limit}
    if key is not None:
        data.update(key=key.pk, key_alias=key.alias, cap_before=key.max_budget)
    audit.record(actor=requester, action="budget_increase.requested", target=increase, team=budget.team, data=data)
    who = "finance" if amount > budget.approver_limit else "the team's approvers"
    what = f"the cap of key {key.display_name}" if key is not None else f"the {budget.scope_label} budget"
    alerts.notify(
        users=_deciders(increase),
        title=f"{requester} asks for ${amount:,.2f} more on {what}",
        body=f"{requester} asks for ${amount:,.2f} more ({'until ' + str(until) if until else 'permanently'}).\n"
        f"Why: {increase.justification}\nIt is for {who} to decide.",
        link=_increase_link(increase),
        team=budget.team,
    )
    text, blocks = slack.payload(
        title=f"{slack.escape(str(requester))} asks for ${amount:.2f} more on the "
        f"{slack.escape(budget.scope_label)} budget of {slack.escape(budget.team.name)}",
        lines=[
            f"{'Until ' + str(until) if until else 'Permanently'}; for {who} to decide.",
            f"Why: {slack.escape(increase.justification)}",
        ],
        link=_increase_link(increase),
        link_label="Decide",
    )
    slack.slack_message_queue(team=budget.team, event="budget_increase.waiting", text=text, blocks=blocks)
    return increase


def _slack_decision(increase: BudgetIncreaseRequest, *, outcome: str, approver: User, note: str) -> None:
    text, blocks = slack.payload(
        title=f"The increase of ${increase.amount:.2f} asked by {slack.escape(str(increase.requested_by))} was "
        f"{outcome} by {slack.escape(str(approver))}",
        lines=[f"Note: {slack.escape(note)}"] if note else [],
        link=_increase_link(increase),
    )
    slack.slack_message_queue(team=increase.budget.team, event=f"budget_increase.{outcome}", text=text, blocks=blocks)


def _locked_pending(increase: BudgetIncreaseRequest, action: str) -> BudgetIncreaseRequest:
    # The row lock makes concurrent decisions queue: the second one finds it decided and stops.
    increase = (
        BudgetIncreaseRequest.objects.select_for_update(of=("self",)).select_related("budget").get(pk=increase.pk)
    )
    if increase.status != BudgetIncreaseRequest.Status.PENDING:
        status = increase.get_status_display().lower()
        raise InvalidTransition(status, action, f"Cannot {action}: it is already {status}.")
    return increase


@transaction.atomic(durable=True)
def budget_increase_approve(*, increase: BudgetIncreaseRequest, approver: User, note: str = "") -> Budget:
    """Raise the budget, tell the gateway and lift a block, in one transaction."""
    increase = _locked_pending(increase, "approve")
    permissions.require_can_decide_budget_increase(approver, increase)
    budget = (
        Budget.objects.select_for_update(of=("self",)).select_related("team", "user", "key").get(pk=increase.budget_id)
    )
    if increase.key_id:
        return _key_cap_approve(increase=increase, budget=budget, approver=approver, note=note)
    before = budget.amount
    budget.amount = before + increase.amount
    budget.save(update_fields=["amount", "updated_at"])
    _record_approval(
        increase,
        budget=budget,
        approver=approver,
        note=note,
        before=before,
        after=budget.amount,
        subject="",
        now=f"the {budget.scope_label} budget is now ${budget.amount:,.2f}",
    )
    _sync_team_budget(budget)
    alerts.lift_block_if_below(budget=budget, reason="a budget increase was approved", actor=approver)
    return budget


def _key_cap_approve(*, increase: BudgetIncreaseRequest, budget: Budget, approver: User, note: str) -> Budget:
    """Raise the one key's own cap (at the gateway too); the rules budget is left as it is."""
    key = increase.key
    before = key.max_budget
    key_services.key_cap_set(
        key=key, actor=approver, max_budget=before + increase.amount, data={"increase": increase.pk, "note": note}
    )
    key.refresh_from_db(fields=["max_budget"])
    _record_approval(
        increase,
        budget=budget,
        approver=approver,
        note=note,
        before=before,
        after=key.max_budget,
        subject=f" on key {key.alias}",
        now=f"the key's cap is now ${key.max_budget:,.2f} a month",
        data={"key": key.pk},
    )
    return budget


def _record_approval(
    increase: BudgetIncreaseRequest,
    *,
    budget: Budget,
    approver: User,
    note: str,
    before,
    after,
    subject: str,
    now: str,
    data: dict | None = None,
) -> None:
    """What every approved increase (of a budget or of one key's cap) leaves, in the deciding transaction: the
    decision on the request, its audit event, the requester's notice and the team's Slack message."""
    increase.status = BudgetIncreaseRequest.Status.APPROVED
    increase.decided_by, increase.decided_at, increase.decision_note = approver, timezone.now(), note
    increase.amount_before, increase.amount_after = before, after
    increase.save(
        update_fields=["status", "decided_by", "decided_at", "decision_note", "amount_before", "amount_after"]
    )
    audit.record(
        actor=approver,
        action="budget_increase.approved",
        target=increase,
        team=budget.team,
        data={
            "budget": budget.pk,
            **(data or {}),
            "amount": increase.amount,
            "before": before,
            "after": after,
            "until": increase.until,
            "note": note,
        },
    )
    alerts.notify(
        users=[increase.requested_by],
        title=f"Your increase of ${increase.amount:,.2f}{subject} was approved",
        body=f"{approver} approved it: {now}"
        + (f" until {increase.until}." if increase.until else ".")
        + (f"\nNote: {note}" if note else ""),
        link=_increase_link(increase),
        team=budget.team,
    )
    _slack_decision(increase, outcome="approved", approver=approver, note=note)


@transaction.atomic(durable=True)
def budget_increase_reject(*, increase: BudgetIncreaseRequest, approver: User, note: str = "") -> BudgetIncreaseRequest:
    increase = _locked_pending(increase, "reject")
    permissions.require_can_decide_budget_increase(approver, increase)
    if not note.strip():
        raise ValidationError({"note": "Say why, so the team knows what to do next."})
    increase.status = BudgetIncreaseRequest.Status.REJECTED
    increase.decided_by, increase.decided_at, increase.decision_note = approver, timezone.now(), note
    increase.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit.record(
        actor=approver,
        action="budget_increase.rejected",
        target=increase,
        team=increase.budget.team,
        data={"budget": increase.budget_id, "amount": increase.amount, "note": note},
    )
    alerts.notify(
        users=[increase.requested_by],
        title=f"Your increase of ${increase.amount:.2f} was rejected",
        body=f"{approver} rejected it: {note}",
        link=_increase_link(increase),
        team=increase.budget.team,
    )
    _slack_decision(increase, outcome="rejected", approver=approver, note=note)
    return increase


@transaction.atomic(durable=True)
def budget_increase_revert(*, increase: BudgetIncreaseRequest, today: date | None = None) -> bool:
    """Take a temporary increase back after its last day. Returns whether it was reverted now."""
    today = today or timezone.now().date()
    increase = BudgetIncreaseRequest.objects.select_for_update().get(pk=increase.pk)
    if (
        increase.status != BudgetIncreaseRequest.Status.APPROVED
        or increase.until is None
        or increase.reverted_at is not None
        or increase.until >= today
    ):
        return False
    if increase.key_id:
        return _key_cap_revert(increase)
    budget = Budget.objects.select_for_update(of=("self",)).select_related("team").get(pk=increase.budget_id)
    before = budget.amount
    # Never below a cent: an admin may have lowered the budget meanwhile.
    budget.amount = max(before - increase.amount, Decimal("0.01"))
    budget.save(update_fields=["amount", "updated_at"])
    increase.reverted_at = timezone.now()
    increase.save(update_fields=["reverted_at"])
    audit.record(
        actor_label="system",
        action="budget_increase.reverted",
        target=increase,
        team=budget.team,
        data={
            "budget": budget.pk,
            "amount": increase.amount,
            "before": before,
            "after": budget.amount,
            "until": increase.until,
        },
    )
    _sync_team_budget(budget)
    alerts.notify(
        users=[increase.requested_by],
        title=f"The temporary increase of ${increase.amount:.2f} has ended",
        body=f"It applied until {increase.until}; the {budget.scope_label} budget is back to ${budget.amount:.2f}.",
        link=alerts.site_url("budget_detail", budget.pk),
        team=budget.team,
    )
    _schedule_evaluation(budget)
    return True


def _key_cap_revert(increase: BudgetIncreaseRequest) -> bool:
    key = increase.key
    increase.reverted_at = timezone.now()
    increase.save(update_fields=["reverted_at"])
    before = key.max_budget
    if key.status in ("active", "provisioning"):
        key_services.key_cap_set(
            key=key, actor=None, max_budget=before - increase.amount, data={"increase": increase.pk, "reverted": True}
        )
        key.refresh_from_db(fields=["max_budget"])
    audit.record(
        actor_label="system",
        action="budget_increase.reverted",
        target=increase,
        team=key.team,
        data={
            "key": key.pk,
            "amount": increase.amount,
            "before": before,
            "after": key.max_budget,
            "until": increase.until,
        },
    )
    return True


def budget_increases_revert_due(*, today: date | None = None) -> int:
    """Every temporary increase whose last day has passed (cron)."""
    today = today or timezone.now().date()
    due = BudgetIncreaseRequest.objects.filter(
        status=BudgetIncreaseRequest.Status.APPROVED, until__lt=today, reverted_at__isnull=True
    ).order_by("pk")
    return sum(budget_increase_revert(increase=increase, today=today) for increase in due)


# --- notices ---------------------------------------------------------------------------------------------------


def notices_mark_read(*, user: User, notice_ids: list[int] | None = None) -> int:
    """A person's own notices read (not audited: it changes nothing anyone else sees)."""
    notices = Notice.objects.filter(user=user, read_at__isnull=True)
    if notice_ids is not None:
        notices = notices.filter(pk__in=notice_ids)
    return notices.update(read_at=timezone.now())


from budgets.ingest_tokens import (  # noqa: E402, F401  (re-exported: callers use budgets.services)
    TOKEN_PREFIX,
    hash_ingest_token,
    ingest_token_authenticate,
    ingest_token_create,
    ingest_token_note_spool,
    ingest_token_revoke,
)

# --- quarantined spend rows ------------------------------------------------------------------------------------------


def _quarantined_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValidationError({"raw": f"Not valid JSON: {exc}"}) from exc


@transaction.atomic(durable=True)
def quarantined_row_retry(*, row: QuarantinedRow, actor: User, raw: str | None = None) -> QuarantinedRow:
    """Book the row again — as kept, or as corrected by the admin — in this transaction.

    Raises ValidationError (nothing changes) when the row still cannot be booked.
    """
    permissions.require(permissions.can_manage_ingest(actor), "Only admins retry quarantined rows.")
    row = QuarantinedRow.objects.select_for_update().get(pk=row.pk)
    if row.status != QuarantinedRow.Status.HELD:
        raise InvalidTransition(row.status, "retried")
    edited = raw is not None and raw.strip() != row.raw
    payload = _quarantined_json(raw if edited else row.raw)
    try:
        result = ingest_spend_rows([payload], row.source, strict=True, evaluate_budgets=False, durable=False)
    except BatchInvalid as exc:
        raise ValidationError({"raw": f"Still cannot be booked: {exc}"}) from exc
    row.status = QuarantinedRow.Status.BOOKED
    row.resolved_at = timezone.now()
    row.resolved_by = actor
    row.save(update_fields=["status", "resolved_at", "resolved_by"])
    audit.record(
        actor=actor,
        action="spend_quarantine.retried",
        target=row,
        data={
            "request_id": row.request_id,
            "reason": row.reason[:300],
            "edited": edited,
            "booked": result.inserted,
            "already_booked": result.duplicates,
        },
    )
    if result.teams or result.keys:
        transaction.on_commit(lambda: alerts.evaluate_touched(teams=result.teams, users=result.users, keys=result.keys))
    return row


@transaction.atomic(durable=True)
def quarantined_row_discard(*, row: QuarantinedRow, actor: User, note: str = "") -> QuarantinedRow:
    permissions.require(permissions.can_manage_ingest(actor), "Only admins discard quarantined rows.")
    row = QuarantinedRow.objects.select_for_update().get(pk=row.pk)
    if row.status != QuarantinedRow.Status.HELD:
        raise InvalidTransition(row.status, "discarded")
    row.status = QuarantinedRow.Status.DISCARDED
    row.resolved_at = timezone.now()
    row.resolved_by = actor
    row.save(update_fields=["status", "resolved_at", "resolved_by"])
    audit.record(
        actor=actor,
        action="spend_quarantine.discarded",
        target=row,
        data={"request_id": row.request_id, "reason": row.reason[:300], "note": note[:500]},
    )
    return row
