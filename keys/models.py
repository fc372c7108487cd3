from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from govsite.gateway.client import GatewayMisconfigured

GATEWAY_MISCONFIGURED_ERRORS = tuple(
    f"{cls.__name__}:" for cls in (GatewayMisconfigured, *GatewayMisconfigured.__subclasses__())
)


class DataClassification(models.Model):
    """The four data classes, ordered by level; admins may rename the labels."""

    key = models.SlugField(max_length=30, unique=True)
    level = models.PositiveSmallIntegerField(unique=True)
    label = models.CharField(max_length=60)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["level"]

    def __str__(self):
        return self.label


class ModelPolicy(models.Model):
    """A model people may ask for, as the gateway names it, and the rules for granting it."""

    class Access(models.TextChoices):
        OPEN = "open", "Open — any approver may grant it"
        RESTRICTED = "restricted", "Restricted — needs a second approval by an admin"

    name = models.CharField(max_length=120, unique=True, help_text="The model name exactly as the gateway knows it.")
    provider = models.CharField(max_length=60)
    note = models.CharField(max_length=300, blank=True)
    access = models.CharField(max_length=12, choices=Access.choices, default=Access.OPEN)
    max_classification = models.ForeignKey(
        DataClassification,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The most sensitive data this model may process.",
    )
    flat_rate = models.BooleanField(
        default=False, help_text="Subscription model: the ledger keeps its tokens but books its cost as 0."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive models can no longer be requested.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model policies"

    def __str__(self):
        return self.name

    @property
    def is_restricted(self) -> bool:
        return self.access == self.Access.RESTRICTED


class TeamKeyPolicy(models.Model):
    """Per-team rules for keys: expiry cap and the optional auto-approve rule."""

    team = models.OneToOneField("accounts.Team", on_delete=models.CASCADE, related_name="key_policy")
    max_expiry_days = models.PositiveIntegerField(default=90, validators=[MinValueValidator(1)])
    auto_approve = models.BooleanField(
        default=False, help_text="Approve requests for open models within the budget below without a person."
    )
    auto_approve_max_budget = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Key policy of {self.team}"


class KeyKind(models.TextChoices):
    PERSONAL = "personal", "Personal key"
    SERVICE = "service", "Service key"


class KeyRollout(models.Model):
    """Keys for many people of one team in one decision: every member (and, until `ends_on`, those who join
    later) or a chosen list, with one policy and one justification. Decided like a key request (nobody
    decides a rollout they asked for or get a key from; a restricted model needs an admin's approval too);
    its approval makes one approved `KeyRequest` and one key per person. See keys.services.rollouts."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"
        REVOKED = "revoked", "Revoked"

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="key_rollouts")
    whole_team = models.BooleanField(default=True, help_text="Everyone in the team, rather than a chosen list.")
    include_joiners = models.BooleanField(
        default=False, help_text="People who join the team later get a key too, until the end date."
    )
    ends_on = models.DateField(null=True, blank=True)
    purpose = models.TextField()
    data_classification = models.ForeignKey("keys.DataClassification", on_delete=models.PROTECT, related_name="+")
    requested_models = models.ManyToManyField("keys.ModelPolicy", related_name="key_rollouts")
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=2, help_text="Per key.")
    expiry_days = models.PositiveIntegerField(default=90)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    needs_admin_approval = models.BooleanField(default=False)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Rollout #{self.pk} ({self.team})"


class KeyRolloutApproval(models.Model):
    """One person's decision on a rollout (a restricted model needs two, one an admin's)."""

    rollout = models.ForeignKey(KeyRollout, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=[("approve", "Approve"), ("reject", "Reject")])
    as_admin = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["rollout", "approver"], name="one_rollout_decision_each")]

    def __str__(self):
        return f"{self.decision} by {self.approver}"


class KeyRolloutMember(models.Model):
    """A person a rollout gives a key to; `key_request` is theirs once the rollout is approved."""

    rollout = models.ForeignKey(KeyRollout, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    joined_later = models.BooleanField(default=False)
    key_request = models.OneToOneField(
        "keys.KeyRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="rollout_member"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user__email"]
        constraints = [models.UniqueConstraint(fields=["rollout", "user"], name="one_rollout_key_each")]

    def __str__(self):
        return f"{self.user} in {self.rollout}"


class KeyRequest(models.Model):
    """Someone asks for a key; approvers decide. See keys.services for the transitions."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="key_requests")
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="key_requests")
    kind = models.CharField(max_length=10, choices=KeyKind.choices, default=KeyKind.PERSONAL)
    service_name = models.CharField(max_length=120, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_key_requests",
        help_text="The person who answers for the key (the requester, for a personal key).",
    )
    purpose = models.TextField()
    data_classification = models.ForeignKey(DataClassification, on_delete=models.PROTECT, related_name="+")
    requested_models = models.ManyToManyField(ModelPolicy, related_name="key_requests")
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=2)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    expiry_days = models.PositiveIntegerField(default=90)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    needs_admin_approval = models.BooleanField(default=False)
    approved_by_policy = models.BooleanField(default=False)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    rollout = models.ForeignKey(
        KeyRollout, null=True, blank=True, on_delete=models.PROTECT, related_name="key_requests"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "status"], name="keyrequest_team_status")]

    def __str__(self):
        label = self.service_name if self.kind == KeyKind.SERVICE else self.owner.email
        return f"Key request #{self.pk} ({label}, {self.team})"


class Approval(models.Model):
    """One person's decision on a key request (a restricted model needs two of them)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    request = models.ForeignKey(KeyRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    as_admin = models.BooleanField(default=False)
    by_policy = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], condition=models.Q(approver__isnull=False), name="one_decision_each"
            )
        ]

    def __str__(self):
        who = "policy" if self.by_policy else self.approver
        return f"{self.decision} by {who}"


class VirtualKey(models.Model):
    """A LiteLLM virtual key as govsite knows it. The secret is never stored in plain text:
    only its sha256 (what LiteLLM stores) and last four characters, plus an encrypted copy
    until its owner reveals it once."""

    class Status(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        ACTIVE = "active", "Active"
        FAILED = "failed", "Provisioning failed"
        REVOKING = "revoking", "Revoking"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    LIVE_STATUSES = (Status.PROVISIONING, Status.ACTIVE)

    # Null only for a key adopted from the gateway (made there by hand, no request in govsite).
    request = models.ForeignKey(KeyRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="keys")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="virtual_keys")
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="virtual_keys")
    kind = models.CharField(max_length=10, choices=KeyKind.choices)
    service_name = models.CharField(max_length=120, blank=True)
    alias = models.CharField(max_length=120, unique=True)
    allowed_models = models.JSONField(default=list)
    max_budget = models.DecimalField(max_digits=12, decimal_places=2)
    budget_duration = models.CharField(max_length=10, default="1mo")
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.PROVISIONING, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    last4 = models.CharField(max_length=4)
    secret_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    revealed_at = models.DateTimeField(null=True, blank=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    revoke_requested_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="When the gateway confirmed the deletion.")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.CharField(max_length=200, blank=True)
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rotated_to"
    )
    grace_until = models.DateTimeField(
        null=True, blank=True, help_text="After a rotation the old key lives until then, then is deleted."
    )
    expiry_reminder_sent_at = models.DateTimeField(null=True, blank=True)
    owner_needs_reassignment = models.BooleanField(default=False)
    missing_in_gateway_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Active here but not in the gateway since then (reconciliation); cleared when seen again.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "status"], name="vkey_owner_status"),
            models.Index(fields=["team", "status"], name="vkey_team_status"),
        ]

    def __str__(self):
        return self.alias

    @property
    def masked(self) -> str:
        return f"sk-...{self.last4}"

    @property
    def display_name(self) -> str:
        """A name people recognise: the service, or the purpose given in the request, and whose key it is
        (the alias `govsite-r7-k1` stays the gateway's name). Read with the request and owner selected."""
        if self.kind == KeyKind.SERVICE and self.service_name:
            what = self.service_name
        else:
            purpose = " ".join((self.request.purpose if self.request_id else "").split())
            what = purpose if len(purpose) <= 48 else purpose[:47].rstrip() + "…"
        return f"{what} · {self.owner.display_name}" if what else f"{self.alias} · {self.owner.display_name}"

    @property
    def can_reveal(self) -> bool:
        return self.secret_encrypted is not None and self.revealed_at is None

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES


class GatewayCommand(models.Model):
    """A side effect on the gateway, written in the same transaction as the decision that
    caused it and carried out by a worker (retried until done). Postgres is the truth."""

    class Kind(models.TextChoices):
        KEY_GENERATE = "key.generate", "Create key"
        KEY_DELETE = "key.delete", "Delete key"
        KEY_UPDATE = "key.update", "Update key"
        KEY_BLOCK = "key.block", "Block key"
        KEY_UNBLOCK = "key.unblock", "Unblock key"
        TEAM_SYNC = "team.sync", "Create or update team"
        ROLLOUT_SYNC = "rollout.sync", "Create a rollout's team and users"
        UNMANAGED_DELETE = "unmanaged.delete", "Delete unmanaged key"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed — needs a hand"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.ForeignKey(VirtualKey, null=True, blank=True, on_delete=models.PROTECT, related_name="commands")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text="When it is due; while running, when its worker's lease ends."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="gwcmd_due")]

    def __str__(self):
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_gateway_misconfigured(self) -> bool:
        """The last attempt failed on the gateway's own configuration (govsite.gateway.client's
        GatewayMisconfigured: no database, custom keys disabled): retrying helps only once an admin of
        the gateway has changed it. The outbox stores the error as "<class name>: <message>"."""
        return self.last_error.startswith(GATEWAY_MISCONFIGURED_ERRORS)


class UnmanagedKey(models.Model):
    """A key found in the gateway that govsite did not make (e.g. created with the master key)."""

    class Status(models.TextChoices):
        OPEN = "open", "Needs a decision"
        ADOPTED = "adopted", "Adopted"
        DELETING = "deleting", "Deleting from the gateway"
        DELETED = "deleted", "Deleted from the gateway"

    token_hash = models.CharField(max_length=64, unique=True)
    alias = models.CharField(max_length=200, blank=True)
    gateway_user_id = models.CharField(max_length=200, blank=True)
    gateway_team_id = models.CharField(max_length=200, blank=True)
    gateway_models = models.JSONField(default=list)
    spend = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self):
        return self.alias or f"unmanaged {self.token_hash[:10]}"
