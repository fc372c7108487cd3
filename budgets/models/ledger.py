"""The ledger: one row per gateway request, its daily rollups, the pull's state, ingest tokens, the rows
kept aside (quarantine) and the gateway figures the ledger disagreed with."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class ClientTool(models.TextChoices):
    CLAUDE_CODE = "claude-code", "Claude Code"
    CODEX = "codex", "Codex"
    KIMI = "kimi", "Kimi"
    OPENAI_SDK = "openai-sdk", "OpenAI SDK"
    OTHER = "other", "Other"


class CostSource(models.TextChoices):
    GATEWAY = "gateway", "Gateway"
    COMPUTED = "computed", "Computed from tokens"
    FLAT_RATE = "flat_rate", "Flat rate (subscription)"
    UNPRICED = "unpriced", "Unpriced"
    CACHE_HIT = "cache_hit", "LiteLLM cache hit ($0)"


class ErrorType(models.TextChoices):
    NONE = "", "—"
    BUDGET_EXCEEDED = "budget_exceeded", "Budget exceeded"
    RATE_LIMIT = "rate_limit", "Rate limited (429)"
    AUTH = "auth", "Authentication failed"
    PERMISSION = "permission_denied", "Permission denied"
    CONTEXT_WINDOW = "context_window", "Context window exceeded"
    CONTENT_POLICY = "content_policy", "Content policy"
    BAD_REQUEST = "bad_request", "Bad request"
    NOT_FOUND = "not_found", "Not found"
    TIMEOUT = "timeout", "Timeout"
    UNAVAILABLE = "unavailable", "No deployment available"
    PROVIDER = "provider_error", "Provider error"
    OTHER = "other", "Other error"


class IngestSource(models.TextChoices):
    PULL = "pull", "Pulled from /spend/logs/v2"
    PUSH = "push", "Pushed by the gateway callback"


# --- the ledger --------------------------------------------------------------------------------


class SpendRecord(models.Model):
    """One gateway request, keyed by LiteLLM's request_id, written once (pull and push both upsert).

    `cost` is authoritative; `gateway_spend` is what LiteLLM logged. The foreign keys carry no
    database constraint and no index of their own: rows are written in bulk at the gateway's rate,
    nothing here is ever deleted, and reads go through the rollups or the (key, time) index.
    """

    request_id = models.CharField(max_length=255, primary_key=True)
    time = models.DateTimeField(help_text="startTime of the request (UTC).")
    key = models.ForeignKey(
        "keys.VirtualKey",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="spend_records",
    )
    token_hash = models.CharField(max_length=128, blank=True, help_text="The gateway's api_key (sha256 of the key).")
    key_alias = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    model = models.CharField(max_length=200, blank=True)
    model_group = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=60, blank=True)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0, help_text="Prompt tokens read from the provider's cache.")
    cache_creation_tokens = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, default="success")
    error_type = models.CharField(max_length=20, choices=ErrorType.choices, blank=True, default="")
    latency_ms = models.IntegerField(null=True, blank=True)
    ttft_ms = models.IntegerField(null=True, blank=True, help_text="Time to first token.")
    client_tool = models.CharField(max_length=20, choices=ClientTool.choices, default=ClientTool.OTHER)
    user_agent = models.CharField(max_length=300, blank=True)
    request_tags = models.JSONField(default=list, blank=True)
    spend_logs_metadata = models.JSONField(null=True, blank=True)
    gateway_spend = models.DecimalField(max_digits=18, decimal_places=9, default=Decimal("0"))
    cost = models.DecimalField(max_digits=18, decimal_places=9, null=True, blank=True)
    cost_source = models.CharField(max_length=10, choices=CostSource.choices)
    source = models.CharField(max_length=4, choices=IngestSource.choices)
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-time"]
        indexes = [
            models.Index(fields=["time"], name="spend_time"),
            models.Index(fields=["key", "time"], name="spend_key_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cost__isnull=True, cost_source="unpriced")
                | models.Q(cost__isnull=False) & ~models.Q(cost_source="unpriced"),
                name="spend_cost_null_only_when_unpriced",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    prompt_tokens__gte=0, completion_tokens__gte=0, cached_tokens__gte=0, cache_creation_tokens__gte=0
                ),
                name="spend_tokens_not_negative",
            ),
        ]

    def __str__(self):
        return self.request_id

    @property
    def is_unmanaged(self) -> bool:
        return self.key_id is None


class CostDisagreement(models.Model):
    """A request whose gateway cost differs from litellm's price for its four token counts.

    The gateway's figure stays in the ledger (it priced with what the counts do not show); this row
    says by how much and why, for the reconciliation page. One per request, written with its ledger row.
    """

    class Reason(models.TextChoices):
        DEPLOYMENT_PRICE = "deployment_price", "Prices set on the deployment"
        SERVICE_TIER = "service_tier", "Service tier"
        CACHE_WRITE_1H = "cache_write_1h", "1-hour cache writes"
        REASONING_TOKENS = "reasoning_tokens", "Reasoning tokens priced apart"
        WEB_SEARCH = "web_search", "Web-search fees"
        UNEXPLAINED = "unexplained", "Nothing in the row explains it"

    request_id = models.CharField(max_length=255, unique=True)
    time = models.DateTimeField(db_index=True, help_text="startTime of the request (UTC).")
    key = models.ForeignKey(
        "keys.VirtualKey", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    gateway_cost = models.DecimalField(max_digits=18, decimal_places=9)
    computed_cost = models.DecimalField(max_digits=18, decimal_places=9)
    reason = models.CharField(max_length=20, choices=Reason.choices)

    class Meta:
        ordering = ["-time"]

    def __str__(self):
        return f"{self.request_id}: {self.reason}"


class QuarantinedRow(models.Model):
    """A spend row that could not be validated or stored, kept with the reason so the ledger moves on.

    The pull books the rest of its page and advances past it; an admin retries it (after a fix) or
    discards it, both audited. `raw` is the row as received, as JSON text in which every character
    that is not ASCII — NUL included — is escaped, so any row can be kept. A row read again (the pull's
    overlap, the completeness pass, a push and a pull of the same request) is kept once, by fingerprint.
    """

    class Status(models.TextChoices):
        HELD = "held", "Held"
        BOOKED = "booked", "Booked on retry"
        DISCARDED = "discarded", "Discarded"

    fingerprint = models.CharField(max_length=64, unique=True, help_text="sha256 of `raw`.")
    raw = models.TextField()
    request_id = models.CharField(max_length=255, blank=True, help_text="As far as it could be read.")
    field = models.CharField(max_length=100, blank=True, help_text="What is wrong with the row.")
    reason = models.TextField()
    source = models.CharField(max_length=4, choices=IngestSource.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    received_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "received_at"], name="quarantine_status")]

    def __str__(self):
        return f"{self.request_id or self.fingerprint[:12]}: {self.field}"


class DailyRollup(models.Model):
    """Per day × team × user × key × model × client tool: what pages and budgets read.

    Maintained in the transaction that writes the ledger rows (budgets.ingest), one upsert per
    batch. `token_hash` keeps keys govsite does not know apart (their key/user/team are null).
    """

    day = models.DateField()
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    key = models.ForeignKey(
        "keys.VirtualKey", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    token_hash = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=200, blank=True)
    client_tool = models.CharField(max_length=20, choices=ClientTool.choices, default=ClientTool.OTHER)
    requests = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cache_creation_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=22, decimal_places=9, default=Decimal("0"))
    gateway_spend = models.DecimalField(max_digits=22, decimal_places=9, default=Decimal("0"))
    errors = models.BigIntegerField(default=0)
    refusals_rate_limit = models.BigIntegerField(default=0)
    refusals_budget = models.BigIntegerField(default=0)
    unpriced_count = models.BigIntegerField(default=0)
    computed_count = models.BigIntegerField(default=0)
    flat_rate_count = models.BigIntegerField(default=0)

    DIMENSIONS = ("day", "team_id", "user_id", "key_id", "token_hash", "model", "client_tool")
    COUNTERS = (
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_creation_tokens",
        "cost",
        "gateway_spend",
        "errors",
        "refusals_rate_limit",
        "refusals_budget",
        "unpriced_count",
        "computed_count",
        "flat_rate_count",
    )

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team", "user", "key", "token_hash", "model", "client_tool"],
                name="rollup_dimensions_unique",
                nulls_distinct=False,
                # SQLite has no NULLS NOT DISTINCT; the ingest takes another path there (the demo).
                violation_error_message="One rollup row per day, team, person, key, model and tool.",
            ),
        ]
        indexes = [
            models.Index(fields=["team", "day"], name="rollup_team_day"),
            models.Index(fields=["user", "day"], name="rollup_user_day"),
            models.Index(fields=["key", "day"], name="rollup_key_day"),
        ]

    def __str__(self):
        return f"{self.day} {self.model} {self.token_hash[:8]}"


class PullState(models.Model):
    """Where the pull from /spend/logs/v2 has got to, and how its last runs went (shown to admins)."""

    name = models.CharField(max_length=40, unique=True, default="spend_logs")
    watermark = models.DateTimeField(
        null=True, blank=True, help_text="Every request that started before this was read (less the overlap)."
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed runs in a row (0 once a run succeeds).")
    total_failures = models.PositiveIntegerField(default=0)
    last_window_start = models.DateTimeField(null=True, blank=True)
    last_window_end = models.DateTimeField(null=True, blank=True)
    last_pages = models.PositiveIntegerField(default=0)
    last_rows_seen = models.PositiveIntegerField(default=0)
    last_rows_inserted = models.PositiveIntegerField(default=0)
    last_rows_rejected = models.PositiveIntegerField(default=0)
    rows_inserted_total = models.BigIntegerField(default=0)

    def __str__(self):
        return f"pull {self.name} at {self.watermark}"

    @property
    def is_failing(self) -> bool:
        return self.failures > 0


class IngestToken(models.Model):
    """A bearer token the gateway callback uses to push spend rows. Only its sha256 is kept."""

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # What the callback using this token last reported of its spool (payloads it could not deliver yet).
    spool_files = models.PositiveIntegerField(default=0)
    spool_oldest_at = models.DateTimeField(null=True, blank=True)
    spool_reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# --- budgets -----------------------------------------------------------------------------------
