"""govsite's own metrics, computed from the database at scrape time.

Nothing is counted in a process's memory, so every web process (gunicorn's workers, any number of hosts)
answers the same figures, and a restarted process loses nothing. Each family is one small query: rollups
and indexed statuses, never a scan of the ledger. django-prometheus adds requests, database and cache
(its counters are per process; set PROMETHEUS_MULTIPROC_DIR for gunicorn, see docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from audit.services import EXPORTS
from budgets.alerts import DELIVERIES
from budgets.models import AlertDelivery, DailyRollup, IngestToken, PullState, QuarantinedRow
from govsite.accounts.slack import MESSAGES
from govsite.ops.health import pull_lag_seconds
from govsite.outbox import Outbox
from keys.services.commands import COMMANDS

# The rows booked on days before today are summed once per day and then every few minutes (the shared cache,
# so every process answers the same); today's are summed at each scrape. A late row booked on a past day is
# counted at the next refresh: the counter never goes down (rollups outlive ledger retention).
BOOKED_BEFORE_SECONDS = 300


def booked_before(today) -> int:
    key = f"govsite:metrics:booked-before:{today.isoformat()}"
    total = cache.get(key)
    if total is None:
        total = DailyRollup.objects.filter(day__lt=today).aggregate(n=Sum("requests"))["n"] or 0
        cache.set(key, total, BOOKED_BEFORE_SECONDS)
    return total


# Each outbox, and the field that tells its rows' kinds apart (None: one kind).
OUTBOXES: list[tuple[str, Outbox, str | None]] = [
    ("gateway_command", COMMANDS, "kind"),
    ("alert_delivery", DELIVERIES, "channel"),
    ("evidence_export", EXPORTS, None),
    ("slack_message", MESSAGES, "event"),
]


class GovsiteCollector:
    """A prometheus_client collector: `collect()` runs the queries."""

    def describe(self) -> list[Metric]:
        return []  # the families are produced at scrape time; nothing is collected at registration

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._pull(now)
        yield from self._ledger(now)
        yield from self._outboxes(now)
        yield from self._deliveries()
        yield from self._spool(now)

    def _pull(self, now) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "govsite_spend_pull_lag_seconds",
            "Seconds between now and the spend pull's watermark (every request that started before it was read).",
        )
        seconds = pull_lag_seconds(now)
        if seconds is not None:
            lag.add_metric([], seconds)
        yield lag
        state = PullState.objects.filter(name="spend_logs").values("failures", "last_success_at").first()
        failures = GaugeMetricFamily("govsite_spend_pull_failures", "Failed spend pulls in a row (0 after a success).")
        failures.add_metric([], state["failures"] if state else 0)
        yield failures

    def _ledger(self, now) -> Iterator[Metric]:
        today = now.date()
        week_start = today - timedelta(days=6)
        # One range of the rollups' (day, …) index: the last seven days, and anything dated later.
        totals = DailyRollup.objects.filter(day__gte=week_start).aggregate(
            from_today=Sum("requests", filter=Q(day__gte=today)),
            today=Sum("requests", filter=Q(day=today)),
            today_unpriced=Sum("unpriced_count", filter=Q(day=today)),
            week=Sum("requests", filter=Q(day__lte=today)),
            week_unpriced=Sum("unpriced_count", filter=Q(day__lte=today)),
        )
        booked = CounterMetricFamily(
            "govsite_ledger_rows_booked", "Spend rows booked into the ledger (pull and push), as the rollups count."
        )
        booked.add_metric([], booked_before(today) + (totals["from_today"] or 0))
        yield booked
        share = GaugeMetricFamily(
            "govsite_ledger_unpriced_share",
            "Share of the window's requests booked without a price (0 to 1): today, or the last 7 UTC days.",
            labels=["window"],
        )
        for window, requests, unpriced in (
            ("today", totals["today"], totals["today_unpriced"]),
            ("7d", totals["week"], totals["week_unpriced"]),
        ):
            share.add_metric([window], (unpriced or 0) / requests if requests else 0.0)
        yield share
        quarantined = GaugeMetricFamily(
            "govsite_ledger_rows_quarantined",
            "Spend rows in quarantine, by status (held: waiting for an admin).",
            labels=["status"],
        )
        counts = dict(QuarantinedRow.objects.values_list("status").annotate(n=Count("pk")).order_by())
        for status in QuarantinedRow.Status.values:
            quarantined.add_metric([status], counts.get(status, 0))
        yield quarantined

    def _outboxes(self, now) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "govsite_outbox_depth", "Outbox rows waiting or running, by outbox and kind.", labels=["outbox", "kind"]
        )
        oldest = GaugeMetricFamily(
            "govsite_outbox_oldest_pending_seconds",
            "Age of the oldest outbox row still waiting or running, by outbox and kind.",
            labels=["outbox", "kind"],
        )
        gave_up = GaugeMetricFamily(
            "govsite_outbox_gave_up", "Outbox rows given up (they need a hand), by outbox.", labels=["outbox"]
        )
        for name, outbox, kind_field in OUTBOXES:
            pending = outbox.model.objects.filter(status__in=[*outbox.waiting, outbox.running])
            group = [kind_field] if kind_field else []
            rows = pending.values(*group).annotate(n=Count("pk"), first=Min("created_at")).order_by()
            for row in rows:
                kind = row[kind_field] if kind_field else name
                depth.add_metric([name, kind], row["n"])
                oldest.add_metric([name, kind], max(0.0, (now - row["first"]).total_seconds()))
            gave_up.add_metric([name], outbox.model.objects.filter(status=outbox.gave_up).count())
        yield depth
        yield oldest
        yield gave_up

    def _deliveries(self) -> Iterator[Metric]:
        failing = GaugeMetricFamily(
            "govsite_alert_deliveries_failing",
            "Alert emails and Slack messages whose last attempt failed: failed (to be retried) or gave_up.",
            labels=["channel", "status"],
        )
        failing_statuses = [AlertDelivery.Status.FAILED, AlertDelivery.Status.GAVE_UP]
        counts = {
            (row["channel"], row["status"]): row["n"]
            for row in AlertDelivery.objects.filter(status__in=failing_statuses)
            .values("channel", "status")
            .annotate(n=Count("pk"))
            .order_by()
        }
        for channel in AlertDelivery.Channel.values:
            for status in failing_statuses:
                failing.add_metric([channel, status], counts.get((channel, status), 0))
        yield failing

    def _spool(self, now) -> Iterator[Metric]:
        files = GaugeMetricFamily(
            "govsite_callback_spool_files",
            "Payloads the LiteLLM callback holds in its spool (could not deliver yet), as it last reported.",
            labels=["token"],
        )
        age = GaugeMetricFamily(
            "govsite_callback_spool_oldest_seconds",
            "Age of the oldest payload in the callback's spool, as it last reported.",
            labels=["token"],
        )
        for token in IngestToken.objects.filter(revoked_at__isnull=True).order_by("name"):
            files.add_metric([token.name], token.spool_files)
            if token.spool_files and token.spool_oldest_at is not None:
                age.add_metric([token.name], max(0.0, (now - token.spool_oldest_at).total_seconds()))
        yield files
        yield age
