"""FinOps: FOCUS exports (asked for, or made by a schedule and delivered to a directory or an S3 bucket) and
the month-end chargeback's closes, whose lines freeze a month's figures per team and cost centre."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

STRICT_HELP = (
    "Leave unpriced rows out: FOCUS requires a cost on every row, and govsite never books them at $0. "
    "Without it they are in the file with empty costs and a govsite/unpriced_reason tag."
)


class FocusFormat(models.TextChoices):
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"


class FocusSchedule(models.Model):
    """An admin's standing order: each day (yesterday) or each month (the last one) as a FOCUS file, written to
    a directory on the server or put in an S3-compatible bucket. S3 credentials are never stored: the worker
    uses the standard AWS environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or an instance role)."""

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily (the day before)"
        MONTHLY = "monthly", "Monthly (the month before)"

    class Target(models.TextChoices):
        DIRECTORY = "directory", "A directory on the server"
        S3 = "s3", "An S3-compatible bucket"

    name = models.CharField(max_length=100, unique=True)
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    format = models.CharField(max_length=10, choices=FocusFormat.choices, default=FocusFormat.PARQUET)
    strict = models.BooleanField(default=False, help_text=STRICT_HELP)
    target = models.CharField(max_length=10, choices=Target.choices)
    directory = models.CharField(max_length=500, blank=True, help_text="Absolute path the worker may write to.")
    s3_endpoint_url = models.URLField(blank=True, help_text="Empty for AWS itself.")
    s3_bucket = models.CharField(max_length=63, blank=True)
    s3_prefix = models.CharField(max_length=300, blank=True)
    s3_region = models.CharField(max_length=40, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def destination(self) -> str:
        if self.target == self.Target.S3:
            return f"s3://{self.s3_bucket}/{self.s3_prefix}"
        return self.directory


class FocusExport(models.Model):
    """One FOCUS file of a period: built by a worker (streaming, its progress shown), kept under
    FOCUS_EXPORT_DIR and, for a schedule's, delivered to its target; an outbox row (govsite.outbox)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRY = "retry", "Failed, will retry"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    schedule = models.ForeignKey(FocusSchedule, null=True, blank=True, on_delete=models.PROTECT, related_name="exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254)
    period_start = models.DateField()
    period_end = models.DateField()
    format = models.CharField(max_length=10, choices=FocusFormat.choices)
    strict = models.BooleanField(default=False, help_text=STRICT_HELP)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)
    ledger_rows = models.BigIntegerField(default=0, help_text="Ledger rows in the period when the build started.")
    ledger_rows_done = models.BigIntegerField(default=0)
    focus_rows = models.BigIntegerField(default=0)
    effective_cost = models.DecimalField(max_digits=22, decimal_places=9, null=True, blank=True)
    unpriced_rows = models.BigIntegerField(default=0)
    unpriced_left_out = models.BigIntegerField(default=0, help_text="Unpriced rows a strict file does not hold.")
    file_name = models.CharField(max_length=200, blank=True)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    delivered_to = models.CharField(max_length=800, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "period_start", "period_end"],
                condition=models.Q(schedule__isnull=False),
                name="focus_export_once_per_schedule_period",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="focus_export_due")]

    def __str__(self):
        return f"FOCUS export #{self.pk} {self.period_start}..{self.period_end}"

    @property
    def progress(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.ledger_rows:
            return 0
        return min(99, int(100 * self.ledger_rows_done / self.ledger_rows))


class ChargebackClose(models.Model):
    """A month closed for chargeback: its figures frozen in its lines. Reopening keeps the row (reopened_at set);
    closing again makes a new one. Rows booked for a closed month after its close are the next month's
    adjustments."""

    month = models.DateField(help_text="The month's first day.")
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopen_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-month", "-closed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["month"], condition=models.Q(reopened_at__isnull=True), name="chargeback_one_close_in_force"
            ),
        ]

    def __str__(self):
        return f"chargeback {self.month:%Y-%m} closed {self.closed_at:%Y-%m-%d}"


class ChargebackLine(models.Model):
    """One team's frozen figures in a closed month: its own month (`kind=month`) or, for the month before when
    that one was closed, the rows booked after its close (`kind=adjustment`)."""

    class Kind(models.TextChoices):
        MONTH = "month", "The month"
        ADJUSTMENT = "adjustment", "Adjustment of the month before"

    close = models.ForeignKey(ChargebackClose, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MONTH)
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    team_name = models.CharField(max_length=120)
    cost_centre = models.CharField(max_length=60, blank=True)
    cost = models.DecimalField(max_digits=22, decimal_places=9, default=Decimal("0"))
    requests = models.BigIntegerField(default=0)
    unpriced_requests = models.BigIntegerField(default=0)
    flat_rate_requests = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["cost_centre", "team_name"]

    def __str__(self):
        return f"{self.close}: {self.team_name}"
