"""Runaway keys: spend far above a key's own trailing rate alerts its owner and approvers once a day."""

from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditEvent
from budgets import anomalies
from budgets.ingest import ingest_spend_rows
from budgets.models import AnomalyAlert, Notice
from keys.models import VirtualKey
from tests.budgets.conftest import spend_row
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def _history(key, per_day: float, today: float, spread_hours: int = 0):
    """`per_day` on each of the last 14 days, then `today` within the last hour (or spread over hours)."""
    VirtualKey.objects.filter(pk=key.pk).update(created_at=NOW - timedelta(days=30))
    rows = [
        spend_row(
            api_key=key.token_hash,
            spend=per_day,
            start_time=NOW - timedelta(days=d),
            prompt_tokens=0,
            completion_tokens=0,
        )
        for d in range(1, 15)
    ]
    parts = max(1, spread_hours)
    rows += [
        spend_row(
            api_key=key.token_hash,
            spend=today / parts,
            start_time=NOW - timedelta(minutes=20 + 60 * h),
            prompt_tokens=0,
            completion_tokens=0,
        )
        for h in range(parts)
    ]
    ingest_spend_rows(rows, "pull", evaluate_budgets=False)


def test_a_key_at_six_times_its_trailing_rate_alerts_once_that_day(inline_jobs, team_a, member_a_user, approver_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    _history(key, per_day=1.0, today=6.0)
    assert anomalies.anomaly_scan(now=NOW) == 1
    alert = AnomalyAlert.objects.get(key=key)
    assert alert.day == NOW.date()
    assert Notice.objects.filter(anomaly=alert, user=member_a_user).exists()
    assert Notice.objects.filter(anomaly=alert, user=approver_a_user).exists()
    assert AuditEvent.objects.filter(action="key.spend_anomaly", target_id=str(key.pk)).count() == 1
    assert anomalies.anomaly_scan(now=NOW + timedelta(minutes=15)) == 0
    assert AnomalyAlert.objects.filter(key=key).count() == 1


def test_a_key_under_the_dollar_floor_stays_quiet(inline_jobs, team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    _history(key, per_day=0.1, today=0.6)
    assert anomalies.anomaly_scan(now=NOW) == 0
    assert not AnomalyAlert.objects.exists()


def test_a_key_spending_at_its_usual_rate_stays_quiet(inline_jobs, team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    _history(key, per_day=8.0, today=8.0, spread_hours=8)
    assert anomalies.anomaly_scan(now=NOW) == 0
