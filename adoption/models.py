"""Small rollups of the ledger that the dashboards need beside budgets.DailyRollup.

Each is maintained from the rows the ingest books (adoption.rollups), in the same transaction as
the ledger rows, and can be rebuilt from the ledger for a range of weeks (`rebuild_adoption_rollups`).
Pages read these and DailyRollup, never the raw ledger: org-wide pages the small ones (a month of
TeamModelDay is a few thousand rows where DailyRollup holds one per person, key, model and tool).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from budgets.models import ClientTool

# One bit per client tool, so a day's tools fit in one integer that an upsert can OR together.
TOOL_BITS: dict[str, int] = {tool: 1 << index for index, tool in enumerate(ClientTool.values)}
OTHER_TOOL_BIT = TOOL_BITS[ClientTool.OTHER]

# Upper bounds (exclusive, in ms) of the latency histogram's buckets; the last bucket is open-ended.
# Bucket i holds LATENCY_BOUNDS_MS[i-1] <= latency < LATENCY_BOUNDS_MS[i] (PostgreSQL's width_bucket).
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    100,
    200,
    300,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    4_000,
    5_000,
    7_500,
    10_000,
    15_000,
    20_000,
    30_000,
    45_000,
    60_000,
    90_000,
    120_000,
    180_000,
    300_000,
)


def tools_from_bits(bits: int) -> list[str]:
    """The names of the client tools in a bit set."""
    return [ClientTool(tool).label for tool, bit in TOOL_BITS.items() if bits & bit]


class PersonWeek(models.Model):
    """One person's ISO week in one team, through their personal keys: on which weekdays they made
    requests (bit 0 Monday … bit 6 Sunday), with which client tools, and how many requests.

    What adoption is computed from: weekly-active, retention, cohorts, repeat use (active days are the
    set bits, so days across teams combine without double counting) and tools per person. Service keys
    are left out: a bot running under someone's service key is not that person using AI.
    """

    week = models.DateField(help_text="The Monday of the ISO week (UTC).")
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    days = models.PositiveSmallIntegerField(default=0, help_text="Bit set of the weekdays with a request.")
    tools = models.PositiveSmallIntegerField(default=0, help_text="Bit set of the client tools used (TOOL_BITS).")
    requests = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["week"]
        constraints = [models.UniqueConstraint(fields=["week", "team", "user"], name="person_week_unique")]
        indexes = [models.Index(fields=["team", "user", "week"], name="person_week_team_user")]

    def __str__(self):
        return f"{self.week} team {self.team_id} person {self.user_id}"

    @property
    def active_days(self) -> int:
        return self.days.bit_count()


class KeyUse(models.Model):
    """The first and the last day a key made a request: activation, zombie and unused keys."""

    key = models.OneToOneField(
        "keys.VirtualKey", on_delete=models.DO_NOTHING, db_constraint=False, related_name="use", primary_key=True
    )
    first_day = models.DateField()
    last_day = models.DateField()

    def __str__(self):
        return f"key {self.key_id}: {self.first_day} – {self.last_day}"


class TeamModelDay(models.Model):
    """Per day × team × model: DailyRollup without people and keys, so org-wide pages add up a few
    thousand rows for a month instead of every person's. Unpriced requests are counted, not summed."""

    day = models.DateField()
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        db_index=False,
    )
    model = models.CharField(max_length=200, blank=True)
    requests = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0, help_text="Prompt and completion tokens.")
    cost = models.DecimalField(max_digits=22, decimal_places=9, default=Decimal("0"))
    errors = models.BigIntegerField(default=0)
    refusals_rate_limit = models.BigIntegerField(default=0)
    refusals_budget = models.BigIntegerField(default=0)
    unpriced_count = models.BigIntegerField(default=0)
    flat_rate_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team", "model"], name="team_model_day_unique", nulls_distinct=False
            ),
        ]
        indexes = [models.Index(fields=["team", "day"], name="team_model_day_team")]

    def __str__(self):
        return f"{self.day} team {self.team_id} {self.model}"


class TeamToolDay(models.Model):
    """Per day × team × client tool: requests, tokens and cost by the tool that made them."""

    day = models.DateField()
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        db_index=False,
    )
    client_tool = models.CharField(max_length=20)
    requests = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=22, decimal_places=9, default=Decimal("0"))
    unpriced_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team", "client_tool"], name="team_tool_day_unique", nulls_distinct=False
            ),
        ]
        indexes = [models.Index(fields=["team", "day"], name="team_tool_day_team")]

    def __str__(self):
        return f"{self.day} team {self.team_id} {self.client_tool}"


class TagRollup(models.Model):
    """Per day × team × request tag (`project:atlas` → key `project`, value `atlas`): requests and cost.

    A request with two tags counts under each, so tags of one key (all `project:*`) add up to at most
    the team's total, and different keys overlap. Unpriced requests are counted, never summed as $0.
    """

    day = models.DateField()
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        db_index=False,
    )
    tag_key = models.CharField(max_length=60)
    tag_value = models.CharField(max_length=200)
    requests = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=22, decimal_places=9, default=Decimal("0"))
    unpriced_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team", "tag_key", "tag_value"],
                name="tag_rollup_unique",
                nulls_distinct=False,
                # SQLite has no NULLS NOT DISTINCT; the portable path upserts by lookup instead (the demo).
            ),
        ]
        indexes = [models.Index(fields=["team", "day"], name="tag_rollup_team_day")]

    def __str__(self):
        return f"{self.day} {self.tag_key}:{self.tag_value}"


class LatencyRollup(models.Model):
    """Per day × model: a fixed-bucket histogram of the latency of successful requests.

    p50 and p95 over any period are read from the summed buckets (accurate to the bucket's width).
    Latency is the provider's and the gateway's, not a team's, so there is no team dimension.
    """

    day = models.DateField()
    model = models.CharField(max_length=200)
    bucket = models.PositiveSmallIntegerField(help_text="Index into LATENCY_BOUNDS_MS (width_bucket).")
    requests = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["day", "model", "bucket"], name="latency_rollup_unique")]

    def __str__(self):
        return f"{self.day} {self.model} bucket {self.bucket}"
