from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One state change, linked to the one before it by hash (see audit.chain).

    Rows are append-only: on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE.
    """

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["actor", "-seq"], name="audit_actor_seq"),
            models.Index(fields=["team", "-seq"], name="audit_team_seq"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self):
        return f"#{self.seq} {self.action} by {self.actor_label or 'system'}"


# --- the auditor workspace: evidence exports, samples, access reviews ------------------------------


class EvidenceExport(models.Model):
    """One evidence bundle for a period, built by a job (audit.evidence) into one ZIP file.

    The row is the truth about the export, an outbox row (govsite.outbox): a sweeper sends a queued one
    to the queue again if Redis lost it, and a running one whose worker stopped reporting progress. The
    file lives under EVIDENCE_EXPORT_DIR (VAR_DIR/exports); its name is stored, never a path taken from input.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_label = models.CharField(max_length=254, help_text="Who asked: an email, or the command line.")
    period_start = models.DateField()
    period_end = models.DateField(help_text="Inclusive (UTC days).")
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    step = models.CharField(max_length=120, blank=True, help_text="What the job is writing now.")
    row_counts = models.JSONField(default=dict, blank=True)
    failed_checks = models.PositiveIntegerField(default=0)
    chain_ok = models.BooleanField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the whole ZIP file.")
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text="When it is due; while running, when its worker's lease ends."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress report of a running build.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")), name="evidence_period_in_order"
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="evidence_progress_percent"),
        ]

    def __str__(self):
        return f"Evidence #{self.pk} {self.period_start}–{self.period_end}"

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def download_name(self) -> str:
        return f"govsite-evidence-{self.period_start}-{self.period_end}-{self.pk}.zip"


class EvidenceSample(models.Model):
    """A reproducible random sample of key creations in a period (same seed and period, same keys)."""

    drawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    drawn_by_label = models.CharField(max_length=254)
    period_start = models.DateField()
    period_end = models.DateField()
    team_ids = models.JSONField(default=list, blank=True, help_text="Empty: every team.")
    size = models.PositiveIntegerField()
    seed = models.CharField(max_length=64)
    population = models.PositiveIntegerField()
    key_ids = models.JSONField(default=list, help_text="The sampled keys, in draw order.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")), name="sample_period_in_order"
            ),
            models.CheckConstraint(
                condition=models.Q(size__gt=0, size__lte=models.F("population")), name="sample_size_in_population"
            ),
        ]

    def __str__(self):
        return f"Sample #{self.pk}: {self.size} of {self.population} keys, seed {self.seed}"


class AccessReview(models.Model):
    """A periodic access review campaign: the live keys in scope are snapshotted when it opens,
    each team's approvers decide keep / reduce / revoke with a rationale, and at the due date what
    is left undecided is revoked or escalated to the admins. An admin signs it off."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Signed off"

    class OnDue(models.TextChoices):
        REVOKE = "revoke", "Revoke keys nobody reviewed"
        ESCALATE = "escalate", "Escalate keys nobody reviewed to the admins"

    name = models.CharField(max_length=200)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(help_text="End of the due date (UTC).")
    on_due = models.CharField(max_length=8, choices=OnDue.choices)
    all_teams = models.BooleanField(default=True)
    teams = models.ManyToManyField("accounts.Team", blank=True, related_name="+")
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN, db_index=True)
    key_count = models.PositiveIntegerField(default=0)
    last_reminded_on = models.DateField(null=True, blank=True)
    deadline_handled_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True, db_index=True)
    sign_off_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self):
        return f"Access review #{self.pk} {self.name}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class AccessReviewItem(models.Model):
    """One key as it was when the campaign opened. Written once: on PostgreSQL a trigger refuses
    UPDATE and DELETE, so the snapshot an auditor sees is the one the reviewers saw."""

    review = models.ForeignKey(AccessReview, on_delete=models.PROTECT, related_name="items")
    key = models.ForeignKey("keys.VirtualKey", on_delete=models.PROTECT, related_name="+")
    snapshot_at = models.DateTimeField()
    key_alias = models.CharField(max_length=120)
    key_kind = models.CharField(max_length=10)
    service_name = models.CharField(max_length=120, blank=True)
    key_status = models.CharField(max_length=14)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    owner_email = models.CharField(max_length=254)
    owner_active = models.BooleanField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    team_name = models.CharField(max_length=120)
    data_classification = models.CharField(max_length=60, blank=True)
    allowed_models = models.JSONField(default=list)
    max_budget = models.DecimalField(max_digits=12, decimal_places=2)
    expires_at = models.DateTimeField()
    key_created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="As the gateway last reported it.")
    last_used_day = models.DateField(null=True, blank=True, help_text="Last day with requests in the ledger.")
    spend_90d = models.DecimalField(max_digits=18, decimal_places=6, help_text="Ledger cost of the 90 days before.")

    class Meta:
        ordering = ["team_name", "owner_email", "key_alias"]
        constraints = [models.UniqueConstraint(fields=["review", "key"], name="access_review_key_once")]
        indexes = [models.Index(fields=["review", "team"], name="review_item_team")]

    def __str__(self):
        return f"{self.key_alias} in review #{self.review_id}"


class AccessReviewDecision(models.Model):
    """The decision on one snapshot row: who, when, what and why. Written once (trigger on PostgreSQL)."""

    class Decision(models.TextChoices):
        KEEP = "keep", "Keep"
        REDUCE = "reduce", "Reduce"
        REVOKE = "revoke", "Revoke"

    item = models.OneToOneField(AccessReviewItem, on_delete=models.PROTECT, related_name="decision")
    decision = models.CharField(max_length=6, choices=Decision.choices)
    rationale = models.TextField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when the campaign's due-date rule decided.",
    )
    as_admin = models.BooleanField(default=False)
    by_deadline = models.BooleanField(default=False)
    decided_at = models.DateTimeField(default=timezone.now)
    key_status_at_decision = models.CharField(max_length=14)
    changes = models.JSONField(default=dict, blank=True, help_text="For a reduction: what was taken away.")
    gateway_command = models.ForeignKey(
        "keys.GatewayCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["decided_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(rationale=""), name="review_decision_has_rationale"),
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=False) | models.Q(by_deadline=True),
                name="review_decision_by_someone",
            ),
        ]

    def __str__(self):
        return f"{self.decision} on {self.item_id}"
