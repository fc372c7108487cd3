"""Budget thresholds alert once per budget per period, by email, Slack and an in-app notice."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from audit.models import AuditEvent
from budgets import alerts
from budgets.ingest import ingest_spend_rows
from budgets.models import AlertDelivery, BudgetAlert, Notice
from tests.budgets.conftest import spend_row
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _spend(key, dollars: str, when: datetime | None = None, n: int = 1):
    """Rows whose cost is `dollars` in all (gateway spend on an unlisted model is kept as is)."""
    each = float(Decimal(dollars) / n)
    rows = [
        spend_row(
            api_key=key.token_hash,
            spend=each,
            model_group="gpt-4o",
            start_time=when or datetime.now(UTC),
            prompt_tokens=0,
            completion_tokens=0,
        )
        for _ in range(n)
    ]
    return ingest_spend_rows(rows, "pull")


def _cost_of(key) -> Decimal:
    from budgets.models import SpendRecord

    return sum((r.cost or 0 for r in SpendRecord.objects.filter(key=key)), Decimal("0"))


def test_crossing_50_80_100_in_one_batch_alerts_three_times_once_each(
    inline_jobs, team_a, member_a_user, approver_a_user, team_budget, webhook
):
    team_a.slack_webhook_url = webhook.url
    team_a.save()
    budget = team_budget("1.00")
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    result = _spend(key, "1.20", n=3)
    assert result.inserted == 3
    assert _cost_of(key) > Decimal("1.00")
    assert sorted(BudgetAlert.objects.filter(budget=budget).values_list("threshold", flat=True)) == [50, 80, 100]
    notices = Notice.objects.filter(user=approver_a_user)
    assert notices.count() == 3
    assert all("Request an increase" in n.body for n in notices)
    # Each alert states the spend, the budget, the percentage, the projection and where to ask for more.
    first = notices.get(budget_alert__threshold=50)
    assert "$1.00 budget" in first.body and "%" in first.body and "$1.20 of" in first.body
    assert "reached 100%" in first.body or "reaches 100% on" in first.body
    assert f"/budgets/{budget.pk}/increase/" in first.body
    emails = [m for m in mail.outbox if approver_a_user.email in m.to]
    assert len(emails) == 3
    assert len(webhook.received) == 3
    assert AuditEvent.objects.filter(action="budget.threshold_crossed").count() == 3

    # A second evaluation (another cron tick, or more rows) sends nothing new.
    assert alerts.budget_evaluate(budget_id=budget.pk) == 0
    _spend(key, "0.10")
    assert BudgetAlert.objects.filter(budget=budget).count() == 3
    assert len([m for m in mail.outbox if approver_a_user.email in m.to]) == 3


def test_a_new_period_starts_over(inline_jobs, team_a, member_a_user, team_budget):
    budget = team_budget("1.00")
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    last_month = datetime.now(UTC).replace(day=1) - timedelta(days=3)
    _spend(key, "0.60", when=last_month)
    alerts.budget_evaluate(budget_id=budget.pk, now=last_month + timedelta(hours=1))
    assert list(BudgetAlert.objects.values_list("threshold", flat=True)) == [50]
    _spend(key, "0.55")
    assert sorted(BudgetAlert.objects.values_list("period_start", "threshold"))[-1][1] == 50
    assert BudgetAlert.objects.filter(threshold=50).count() == 2


def test_a_slack_failure_is_retried_and_shown_and_the_email_still_goes(
    inline_jobs, team_a, member_a_user, approver_a_user, team_budget, webhook, admin_client
):
    team_a.slack_webhook_url = webhook.url
    team_a.save()
    webhook.statuses = [500]
    budget = team_budget("1.00")
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    _spend(key, "0.55")
    slack = AlertDelivery.objects.get(channel=AlertDelivery.Channel.SLACK, budget_alert__budget=budget)
    assert slack.status == AlertDelivery.Status.FAILED and "500" in slack.last_error
    page = admin_client.get(reverse("budget_detail", args=[budget.pk])).content.decode()
    assert "HTTP 500" in page
    email = AlertDelivery.objects.get(channel=AlertDelivery.Channel.EMAIL, budget_alert__budget=budget)
    assert email.status == AlertDelivery.Status.SENT
    assert any(approver_a_user.email in m.to for m in mail.outbox)

    # The back-off passes; the cron sweep sends it again.
    AlertDelivery.objects.filter(pk=slack.pk).update(next_attempt_at=slack.next_attempt_at - timedelta(hours=2))
    assert alerts.alert_deliveries_sweep() == 1
    slack.refresh_from_db()
    assert slack.status == AlertDelivery.Status.SENT
    assert len(webhook.received) == 2  # the failed try and the retry
