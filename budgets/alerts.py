"""Budget thresholds, blocks at 100%, and the delivery of alerts (notice, email, Slack).

A threshold alerts once per budget per period: `BudgetAlert` is unique on (budget, period_start,
threshold) and evaluation holds the budget's row lock. Deliveries are rows too: each email or
Slack message is an outbox row (govsite.outbox) sent by a job after commit, and a failed one is retried
by a sweeper and shown on the budget's page — a failing Slack webhook never stops the email.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

import audit
from budgets import selectors
from budgets.models import AlertDelivery, AnomalyAlert, Budget, BudgetAlert, BudgetBlock, Notice
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.outbox import Outbox
from keys.models import GatewayCommand, VirtualKey
from keys.services import gateway_command_issue

log = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = getattr(settings, "ALERT_DELIVERY_MAX_ATTEMPTS", 10)
DELIVERY_LEASE = timedelta(minutes=5)
SLACK_TIMEOUT_SECONDS = 10

DELIVERIES = Outbox(
    model=AlertDelivery,
    job="budgets.jobs.deliver_alert",
    waiting=(AlertDelivery.Status.PENDING, AlertDelivery.Status.FAILED),
    retry=AlertDelivery.Status.FAILED,
    running=AlertDelivery.Status.SENDING,
    done=AlertDelivery.Status.SENT,
    gave_up=AlertDelivery.Status.GAVE_UP,
    max_attempts=MAX_DELIVERY_ATTEMPTS,
    lease=DELIVERY_LEASE,
    backoff_base=timedelta(seconds=30),
)


def site_url(name: str, *args) -> str:
    return settings.SITE_URL + reverse(name, args=args)


# --- who hears about what ------------------------------------------------------------------------------


def team_approvers(team_id: int) -> list[User]:
    return list(permissions.deciders_of(team_id))


def admins() -> list[User]:
    return list(permissions.admins())


def finance() -> list[User]:
    return list(permissions.finance_people())


def budget_recipients(budget: Budget) -> list[User]:
    """The team's approvers, and the person whose budget it is (a personal or key budget).
    A team without approvers: its alerts go to the admins, so nobody misses them."""
    people = {user.pk: user for user in team_approvers(budget.team_id)}
    owner = budget.user if budget.user_id else (budget.key.owner if budget.key_id else None)
    if owner is not None and owner.is_active:
        people[owner.pk] = owner
    if not people:
        people = {user.pk: user for user in admins()}
    return list(people.values())


def notify(
    *,
    users: Iterable[User],
    title: str,
    body: str,
    link: str = "",
    level: str = Notice.Level.INFO,
    team: Team | None = None,
    slack_webhook_url: str = "",
    budget_alert: BudgetAlert | None = None,
    anomaly: AnomalyAlert | None = None,
) -> list[AlertDelivery]:
    """Inside the caller's transaction: a notice for each person, one email to all of them, and a
    Slack message when a webhook is given; the messages go out once the transaction commits."""
    users = [user for user in users if user.is_active]
    Notice.objects.bulk_create(
        [
            Notice(
                user=user,
                level=level,
                title=title[:300],
                body=body,
                link=link,
                budget_alert=budget_alert,
                anomaly=anomaly,
            )
            for user in users
        ]
    )
    deliveries = []
    text = f"{body}\n\n{link}" if link else body
    emails = sorted({user.email for user in users if user.email})
    if emails:
        deliveries.append(
            AlertDelivery(
                channel=AlertDelivery.Channel.EMAIL,
                recipients=emails,
                subject=f"[govsite] {title}"[:300],
                body=text,
                team=team,
                budget_alert=budget_alert,
                anomaly=anomaly,
            )
        )
    if slack_webhook_url:
        deliveries.append(
            AlertDelivery(
                channel=AlertDelivery.Channel.SLACK,
                recipients=[],
                subject=title[:300],
                body=text,
                team=team,
                budget_alert=budget_alert,
                anomaly=anomaly,
            )
        )
    AlertDelivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        DELIVERIES.enqueue(delivery.pk)
    return deliveries


# --- evaluating budgets ----------------------------------------------------------------------------------


def evaluate_touched(*, teams: Iterable[int], users: Iterable[int], keys: Iterable[int]) -> int:
    """Evaluate the active budgets a batch of new ledger rows counted against. Returns alerts created."""
    teams, users, keys = set(teams), set(users), set(keys)
    budget_ids = list(
        Budget.objects.filter(is_active=True)
        .filter(
            Q(team_id__in=teams, user__isnull=True, key__isnull=True)
            | Q(team_id__in=teams, user_id__in=users)
            | Q(key_id__in=keys)
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return sum(budget_evaluate(budget_id=budget_id) for budget_id in budget_ids)


def _alert_text(budget: Budget, status: selectors.BudgetStatus, threshold: int, projected: date | None) -> tuple:
    scope = {"team": "team budget", "person": f"budget of {budget.user}", "key": f"budget of key {budget.key}"}
    title = f"{budget.team}: {scope[budget.scope]} at {threshold}% (${status.spend:.2f} of ${status.amount:.2f})"
    lines = [
        f"{budget.team} ({scope[budget.scope]}) has spent ${status.spend:.2f} of its ${status.amount:.2f} budget "
        f"for {status.period_start:%Y-%m-%d} to {status.period_end:%Y-%m-%d}: {status.percent}%.",
    ]
    if status.spend >= status.amount:
        lines.append("It has reached 100% of the budget.")
    elif projected is None:
        lines.append("There is no spend rate yet to project from.")
    elif projected > status.period_end:
        lines.append(f"At the current rate it reaches 100% on {projected:%Y-%m-%d}, after this period ends.")
    else:
        lines.append(f"At the current rate it reaches 100% on {projected:%Y-%m-%d}.")
    if budget.block_at_100:
        lines.append("At 100% the budget's keys are blocked at the gateway until the period resets or it is raised.")
    lines.append(f"Request an increase: {site_url('budget_increase_request', budget.pk)}")
    return title, "\n".join(lines)


@transaction.atomic(durable=True)
def budget_evaluate(*, budget_id: int, now: datetime | None = None) -> int:
    """Alert each threshold the period-to-date spend has crossed and that has not alerted in this
    period; block the budget's keys at 100% when its policy says so. Safe to run any number of times."""
    now = now or timezone.now()
    budget = (
        Budget.objects.select_for_update(of=("self",)).select_related("team", "user", "key__owner").get(pk=budget_id)
    )
    if not budget.is_active:
        return 0
    status = selectors.budget_status(budget, now)
    if not status.running:
        return 0
    already = set(
        BudgetAlert.objects.filter(budget=budget, period_start=status.period_start).values_list("threshold", flat=True)
    )
    crossed = [t for t in sorted(set(budget.thresholds)) if status.percent >= t and t not in already]
    projected = status.projected_date(now)
    recipients = budget_recipients(budget) if crossed else []
    for threshold in crossed:
        alert = BudgetAlert.objects.create(
            budget=budget,
            period_start=status.period_start,
            threshold=threshold,
            spend=status.spend,
            amount=status.amount,
            percent=status.percent,
            projected_date=projected,
        )
        title, body = _alert_text(budget, status, threshold, projected)
        notify(
            users=recipients,
            title=title,
            body=body,
            link=site_url("budget_detail", budget.pk),
            level=Notice.Level.DANGER if threshold >= 100 else Notice.Level.WARNING,
            team=budget.team,
            slack_webhook_url=budget.team.slack_webhook_url,
            budget_alert=alert,
        )
        audit.record(
            action="budget.threshold_crossed",
            actor_label="system",
            target=budget,
            team=budget.team,
            data={
                "threshold": threshold,
                "spend": status.spend,
                "amount": status.amount,
                "percent": status.percent,
                "period_start": status.period_start,
                "projected_date": projected,
                "recipients": [user.email for user in recipients],
            },
        )
    if budget.block_at_100 and status.spend >= status.amount:
        block_keys(budget=budget, period_start=status.period_start, spend=status.spend)
    return len(crossed)


# --- blocking at 100% -------------------------------------------------------------------------------------


def _budget_keys(budget: Budget):
    keys = VirtualKey.objects.filter(team_id=budget.team_id, status__in=VirtualKey.LIVE_STATUSES)
    if budget.key_id:
        keys = keys.filter(pk=budget.key_id)
    elif budget.user_id:
        keys = keys.filter(owner_id=budget.user_id)
    return keys.order_by("pk")


def block_keys(*, budget: Budget, period_start: date, spend) -> BudgetBlock | None:
    """Inside the caller's transaction: key.block commands for the budget's live keys, once a period."""
    if BudgetBlock.objects.filter(budget=budget, period_start=period_start).exists():
        return None
    keys = list(_budget_keys(budget))
    block = BudgetBlock.objects.create(budget=budget, period_start=period_start, key_ids=[key.pk for key in keys])
    for key in keys:
        gateway_command_issue(
            GatewayCommand.Kind.KEY_BLOCK,
            key=key,
            team=budget.team,
            payload={"reason": "budget_reached_100", "budget_id": budget.pk},
        )
    audit.record(
        action="budget.keys_blocked",
        actor_label="system",
        target=budget,
        team=budget.team,
        data={"period_start": period_start, "spend": spend, "amount": budget.amount, "keys": [k.alias for k in keys]},
    )
    return block


def lift_block(*, budget: Budget, reason: str, actor: User | None = None) -> BudgetBlock | None:
    """Inside the caller's transaction: unblock the keys a budget blocked (those still live)."""
    block = BudgetBlock.objects.select_for_update().filter(budget=budget, lifted_at__isnull=True).first()
    if block is None:
        return None
    keys = list(VirtualKey.objects.filter(pk__in=block.key_ids, status__in=VirtualKey.LIVE_STATUSES).order_by("pk"))
    for key in keys:
        gateway_command_issue(
            GatewayCommand.Kind.KEY_UNBLOCK,
            key=key,
            team=budget.team,
            payload={"reason": reason, "budget_id": budget.pk},
        )
    block.lifted_at = timezone.now()
    block.lift_reason = reason[:200]
    block.save(update_fields=["lifted_at", "lift_reason"])
    audit.record(
        actor=actor,
        action="budget.keys_unblocked",
        target=budget,
        team=budget.team,
        data={"reason": reason, "keys": [key.alias for key in keys], "period_start": block.period_start},
    )
    return block


def lift_block_if_below(*, budget: Budget, reason: str, actor: User | None = None) -> BudgetBlock | None:
    """After the amount went up (or the policy was switched off): lift the block if spend is now below it."""
    if not BudgetBlock.objects.filter(budget=budget, lifted_at__isnull=True).exists():
        return None
    status = selectors.budget_status(budget)
    if budget.block_at_100 and budget.is_active and status.running and status.spend >= budget.amount:
        return None
    return lift_block(budget=budget, reason=reason, actor=actor)


def budget_periods_roll(*, now: datetime | None = None) -> int:
    """Lift blocks whose period is over (a new month started, a custom period ended). Runs from cron."""
    now = now or timezone.now()
    lifted = 0
    for block in BudgetBlock.objects.filter(lifted_at__isnull=True).select_related("budget").order_by("pk"):
        period = selectors.budget_period(block.budget, now.date())
        if period is not None and period[0] == block.period_start and block.budget.is_active:
            continue
        with transaction.atomic(durable=True):
            budget = Budget.objects.select_for_update(of=("self",)).select_related("team").get(pk=block.budget_id)
            if lift_block(budget=budget, reason="a new budget period started"):
                lifted += 1
    return lifted


def evaluate_all(*, now: datetime | None = None) -> int:
    """Every active budget, for thresholds crossed without new rows (an amount lowered by an admin)."""
    ids = list(Budget.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    return sum(budget_evaluate(budget_id=budget_id, now=now) for budget_id in ids)


# --- delivering ----------------------------------------------------------------------------------------------


def _send(delivery: AlertDelivery) -> None:
    if delivery.channel == AlertDelivery.Channel.EMAIL:
        send_mail(delivery.subject, delivery.body, settings.DEFAULT_FROM_EMAIL, list(delivery.recipients))
        return
    url = delivery.team.slack_webhook_url if delivery.team_id else ""
    if not url:
        raise ValueError("the team has no Slack webhook any more")
    response = httpx.post(url, json={"text": f"*{delivery.subject}*\n{delivery.body}"}, timeout=SLACK_TIMEOUT_SECONDS)
    if not response.is_success:
        raise RuntimeError(f"Slack answered HTTP {response.status_code}: {response.text[:200]}")


def alert_delivery_send(*, delivery_id: int) -> str:
    """Send one email or Slack message (the job); on failure record why and when it is tried again."""
    delivery = DELIVERIES.claim(delivery_id)
    if delivery is None:
        return "skipped"
    try:
        _send(delivery)
    except (OSError, httpx.HTTPError, RuntimeError, ValueError) as exc:
        delivery = DELIVERIES.fail(delivery.pk, exc)
        log.warning("alert delivery %s (%s) failed: %s", delivery.pk, delivery.channel, delivery.last_error)
        return delivery.status
    return DELIVERIES.complete(delivery.pk, apply=_sent).status


def _sent(delivery: AlertDelivery) -> None:
    delivery.sent_at = timezone.now()
    delivery.save(update_fields=["sent_at"])


def alert_deliveries_sweep(*, now: datetime | None = None) -> int:
    """Enqueue every delivery that is due: failed ones whose back-off is over, pending ones the queue lost,
    and those whose sender died mid-send. Runs from cron every minute."""
    return DELIVERIES.sweep(now=now)
