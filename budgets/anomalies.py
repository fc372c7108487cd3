"""Keys spending far above their own habit.

A key whose spend over the last hour, or the last 24 hours, is above ANOMALY_MULTIPLIER (5×) its
trailing 14-day rate for the same length of time, and at least ANOMALY_MIN_SPEND ($5), alerts its
owner and the team's approvers — once per key per day (`AnomalyAlert` is unique on key and day).
The trailing rate comes from the daily rollups; the last hour and day from the ledger's time index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

import audit
from budgets import alerts
from budgets.models import AnomalyAlert, DailyRollup, Notice, SpendRecord
from keys.models import VirtualKey

TRAILING_DAYS = 14
ZERO = Decimal("0")


def multiplier() -> Decimal:
    return Decimal(str(getattr(settings, "ANOMALY_MULTIPLIER", "5")))


def dollar_floor() -> Decimal:
    return Decimal(str(getattr(settings, "ANOMALY_MIN_SPEND", "5")))


@dataclass(frozen=True)
class Finding:
    key_id: int
    window: str  # "hour" or "day"
    spend: Decimal
    baseline: Decimal  # the trailing spend for a window of the same length


def find_anomalies(*, now: datetime | None = None) -> list[Finding]:
    """Keys above N× their trailing rate and above the floor, not yet alerted today (no writes)."""
    now = now or timezone.now()
    today = now.date()
    recent = {
        row["key_id"]: row
        for row in SpendRecord.objects.filter(time__gt=now - timedelta(days=1), time__lte=now, key__isnull=False)
        .values("key_id")
        .annotate(day=Sum("cost"), hour=Sum("cost", filter=Q(time__gt=now - timedelta(hours=1))))
    }
    floor, factor = dollar_floor(), multiplier()
    candidates = [key_id for key_id, row in recent.items() if (row["day"] or ZERO) >= floor]
    if not candidates:
        return []
    trailing = dict(
        DailyRollup.objects.filter(key_id__in=candidates, day__gte=today - timedelta(days=TRAILING_DAYS), day__lt=today)
        .values("key_id")
        .annotate(total=Sum("cost"))
        .values_list("key_id", "total")
    )
    created = dict(VirtualKey.objects.filter(pk__in=candidates).values_list("pk", "created_at"))
    already = set(AnomalyAlert.objects.filter(day=today, key_id__in=candidates).values_list("key_id", flat=True))
    findings = []
    for key_id in sorted(candidates):
        if key_id in already or key_id not in created:
            continue
        # A young key's rate is over the days it has existed, not 14 days it did not.
        days = max(1, min(TRAILING_DAYS, (today - created[key_id].date()).days))
        daily_rate = (trailing.get(key_id) or ZERO) / days
        hour, day = recent[key_id]["hour"] or ZERO, recent[key_id]["day"] or ZERO
        if hour >= floor and hour > factor * daily_rate / 24:
            findings.append(Finding(key_id, "hour", hour, (daily_rate / 24).quantize(Decimal("0.000001"))))
        elif day >= floor and day > factor * daily_rate:
            findings.append(Finding(key_id, "day", day, daily_rate.quantize(Decimal("0.000001"))))
    return findings


def anomaly_alert_create(*, finding: Finding, now: datetime | None = None) -> AnomalyAlert | None:
    """Record and send one anomaly; None if this key already alerted today (a concurrent scan)."""
    now = now or timezone.now()
    try:
        with transaction.atomic(durable=True):
            key = VirtualKey.objects.select_related("owner", "team").get(pk=finding.key_id)
            alert = AnomalyAlert.objects.create(
                key=key,
                day=now.date(),
                window=finding.window,
                spend=finding.spend,
                baseline=finding.baseline,
                multiplier=multiplier(),
            )
            ratio = f"{finding.spend / finding.baseline:.1f}×" if finding.baseline else "far above"
            window = "the last hour" if finding.window == "hour" else "the last 24 hours"
            title = f"Unusual spend on key {key.alias}: ${finding.spend:.2f} in {window}"
            body = (
                f"Key {key.alias} ({key.masked}, {key.team}, owner {key.owner}) spent ${finding.spend:.2f} "
                f"in {window}, {ratio} its usual ${finding.baseline:.2f} for that time "
                f"(average of the last {TRAILING_DAYS} days).\n"
                "If this is not expected, revoke the key or talk to its owner. This alert is sent once a day at most."
            )
            people = {user.pk: user for user in alerts.team_approvers(key.team_id)}
            people[key.owner_id] = key.owner
            alerts.notify(
                users=list(people.values()),
                title=title,
                body=body,
                link=alerts.site_url("key_detail", key.pk),
                level=Notice.Level.WARNING,
                team=key.team,
                anomaly=alert,
            )
            audit.record(
                action="key.spend_anomaly",
                actor_label="system",
                target=key,
                team=key.team,
                data={
                    "window": finding.window,
                    "spend": finding.spend,
                    "baseline": finding.baseline,
                    "multiplier": alert.multiplier,
                },
            )
            return alert
    except IntegrityError:
        return None


def anomaly_scan(*, now: datetime | None = None) -> int:
    """Find and alert anomalies (cron, every 15 minutes). Returns how many alerted."""
    now = now or timezone.now()
    return sum(anomaly_alert_create(finding=finding, now=now) is not None for finding in find_anomalies(now=now))
