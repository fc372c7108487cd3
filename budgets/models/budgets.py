"""Budgets, their alerts, blocks and deliveries, anomaly alerts, notices and increase requests."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

DEFAULT_THRESHOLDS = (50, 80, 100)


def default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


class Budget(models.Model):
    """A spending limit for a team, or for one person or one key within it, per calendar month
    or for a custom period. Period-to-date spend is read from the rollups."""

    class Period(models.TextChoices):
        MONTHLY = "monthly", "Each calendar month"
        CUSTOM = "custom", "A custom period"

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="budgets")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="personal_budgets",
        help_text="Set for a person's own budget within the team.",
    )
    key = models.ForeignKey(
        "keys.VirtualKey",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="budgets",
        help_text="Set for one key's budget.",
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTHLY)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True, help_text="Inclusive.")
    thresholds = models.JSONField(default=default_thresholds, help_text="Percentages that alert, once per period.")
    block_at_100 = models.BooleanField(
        default=False, help_text="Block the budget's live keys at the gateway when the ledger reaches 100%."
    )
    approver_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Increases up to this amount are decided by the team's approvers; above it, by finance.",
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team__name", "user__email", "key__alias"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"],
                condition=models.Q(user__isnull=True, key__isnull=True),
                name="budget_one_per_team",
                violation_error_message="This team already has a team budget.",
            ),
            models.UniqueConstraint(
                fields=["team", "user"],
                condition=models.Q(user__isnull=False),
                name="budget_one_per_person",
                violation_error_message="This person already has a budget in this team.",
            ),
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(key__isnull=False),
                name="budget_one_per_key",
                violation_error_message="This key already has a budget.",
            ),
            models.CheckConstraint(
                condition=models.Q(user__isnull=True) | models.Q(key__isnull=True), name="budget_person_or_key"
            ),
            models.CheckConstraint(
                condition=models.Q(period="monthly")
                | models.Q(
                    period="custom",
                    period_start__isnull=False,
                    period_end__isnull=False,
                    period_end__gte=models.F("period_start"),
                ),
                name="budget_custom_period_has_dates",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="budget_amount_positive"),
        ]

    def __str__(self):
        return f"{self.scope_label} budget"

    @property
    def scope(self) -> str:
        if self.key_id:
            return "key"
        if self.user_id:
            return "person"
        return "team"

    @property
    def scope_label(self) -> str:
        if self.key_id:
            return f"{self.team} · key {self.key}"
        if self.user_id:
            return f"{self.team} · {self.user}"
        return str(self.team)


class BudgetAlert(models.Model):
    """One threshold crossed in one period: written once, whatever the number of ingests."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateField()
    threshold = models.PositiveSmallIntegerField()
    spend = models.DecimalField(max_digits=18, decimal_places=6)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    percent = models.DecimalField(max_digits=9, decimal_places=1)
    projected_date = models.DateField(null=True, blank=True, help_text="When 100% is reached at the current rate.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "threshold"], name="budget_alert_once"),
        ]

    def __str__(self):
        return f"{self.budget} reached {self.threshold}%"


class BudgetBlock(models.Model):
    """The keys blocked because a block_at_100 budget reached 100% in a period, until lifted."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="blocks")
    period_start = models.DateField()
    key_ids = models.JSONField(default=list)
    blocked_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-blocked_at"]
        constraints = [models.UniqueConstraint(fields=["budget", "period_start"], name="budget_block_once")]

    def __str__(self):
        return f"block of {self.budget} from {self.period_start}"


class AnomalyAlert(models.Model):
    """A key spending far above its trailing rate: at most one per key per day."""

    key = models.ForeignKey("keys.VirtualKey", on_delete=models.CASCADE, related_name="anomalies")
    day = models.DateField()
    window = models.CharField(max_length=4, choices=[("hour", "Last hour"), ("day", "Last day")])
    spend = models.DecimalField(max_digits=18, decimal_places=6)
    baseline = models.DecimalField(max_digits=18, decimal_places=6, help_text="Trailing spend for the same window.")
    multiplier = models.DecimalField(max_digits=6, decimal_places=2)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["key", "day"], name="anomaly_once_per_key_day")]

    def __str__(self):
        return f"anomaly on {self.key} ({self.day})"


class AlertDelivery(models.Model):
    """One email or Slack message of an alert. A failed one is retried by a job and shown."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed — will retry"
        GAVE_UP = "gave_up", "Failed — gave up"

    budget_alert = models.ForeignKey(
        BudgetAlert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    anomaly = models.ForeignKey(
        AnomalyAlert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=5, choices=Channel.choices)
    recipients = models.JSONField(default=list, blank=True, help_text="Email addresses (email channel).")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text="When it is due; while sending, when its worker's lease ends."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="alert_delivery_due")]

    def __str__(self):
        return f"{self.channel} {self.subject} ({self.status})"


class Notice(models.Model):
    """An in-app message to one person (budget alerts, anomalies, decisions)."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        DANGER = "danger", "Urgent"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    budget_alert = models.ForeignKey(BudgetAlert, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    anomaly = models.ForeignKey(AnomalyAlert, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"], name="notice_user_unread")]

    def __str__(self):
        return self.title


class BudgetIncreaseRequest(models.Model):
    """A team member asks for more budget; approvers decide within the budget's approver limit,
    finance (or an admin) above it. Nobody decides their own."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"

    budget = models.ForeignKey(Budget, on_delete=models.PROTECT, related_name="increase_requests")
    key = models.ForeignKey(
        "keys.VirtualKey",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cap_increases",
        help_text="Set when one key's own cap is raised: the budget then only gives the rules and approvers.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="budget_increase_requests"
    )
    amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="How much to add to the budget (USD).",
    )
    until = models.DateField(null=True, blank=True, help_text="Empty: permanent. Otherwise the last day it applies.")
    justification = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    amount_before = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    amount_after = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="increase_amount_positive")]

    def __str__(self):
        return f"Increase #{self.pk} of {self.subject_label} by {self.amount}"

    @property
    def subject_label(self) -> str:
        """What is raised: a key's own cap, or the budget."""
        if self.key_id:
            return f"the cap of key {self.key.display_name}"
        return str(self.budget)

    @property
    def is_temporary(self) -> bool:
        return self.until is not None
