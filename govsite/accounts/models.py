from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class OrgRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    FINANCE = "finance", "Finance"
    AUDITOR = "auditor", "Auditor"


class TeamRole(models.TextChoices):
    MEMBER = "member", "Member"
    APPROVER = "approver", "Approver"


class Source(models.TextChoices):
    """Where a membership or role came from: SSO-granted ones are removed when the claim drops them."""

    MANUAL = "manual", "Set in govsite"
    SSO = "sso", "From SSO groups"
    SCIM = "scim", "From SCIM"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_superuser", True)
        user = self._create(email, password, **extra)
        OrgRoleGrant.objects.get_or_create(user=user, role=OrgRole.ADMIN)
        return user

    def get_by_natural_key(self, email):
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Email is the login; identity normally comes from SSO."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    scim_external_id = models.CharField(
        max_length=255, blank=True, help_text="The identity provider's own id for this person (SCIM externalId)."
    )
    scim_attributes = models.JSONField(
        null=True,
        blank=True,
        help_text="The SCIM attributes the identity provider last set (name, displayName, emails, title...), kept "
        "as sent; null for a person no identity provider described.",
    )
    # A SCIM DELETE ends a provisioning: the person is deactivated, kept, and the SCIM resource answers 404.
    # A later POST of the same userName is a new provisioning of the same person, under a new SCIM id.
    scim_provisioning = models.PositiveIntegerField(
        default=1, help_text="Which provisioning of this person the SCIM id names (1, then 2 after a re-hire...)."
    )
    scim_deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the identity provider deleted this person's SCIM resource."
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

    @property
    def is_staff(self) -> bool:
        # Django admin is open to govsite admins only; permissions/ is the one authority. Imported when
        # called because permissions/ imports these models (the rules are written about them).
        from govsite.accounts import permissions

        return self.is_active and permissions.is_admin(self)

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_staff or super().has_perm(perm, obj)

    def has_module_perms(self, app_label) -> bool:
        return self.is_staff or super().has_module_perms(app_label)

    @property
    def org_roles(self) -> frozenset[str]:
        """The person's org roles, read once per request object (with their team roles: load_roles)."""
        cached = getattr(self, "_org_roles_cache", None)
        if cached is None:
            self.load_roles()
            cached = self._org_roles_cache
        return cached

    def load_roles(self) -> None:
        """Read the person's org roles and team roles ({team_id: role}) in one query, for this object: every
        page's permission checks and navigation ask for both."""
        org_roles, team_roles = set(), {}
        if self.pk:
            grants = OrgRoleGrant.objects.filter(user_id=self.pk).values_list(
                "role", models.Value(None, output_field=models.BigIntegerField())
            )
            memberships = Membership.objects.filter(user_id=self.pk).values_list("role", "team_id")
            for role, team_id in grants.order_by().union(memberships.order_by(), all=True):
                if team_id is None:
                    org_roles.add(role)
                else:
                    team_roles[team_id] = role
        self._org_roles_cache = frozenset(org_roles)
        self._team_roles_cache = team_roles

    def forget_cached_roles(self) -> None:
        self.__dict__.pop("_org_roles_cache", None)
        self.__dict__.pop("_team_roles_cache", None)


class OrgRoleGrant(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="org_role_grants")
    role = models.CharField(max_length=20, choices=OrgRole.choices)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="org_role_grant_unique")]

    def __str__(self):
        return f"{self.user} — {self.get_role_display()}"


class Team(models.Model):
    """A unit of people who share budgets, keys and approvers."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    cost_centre = models.CharField(max_length=60, blank=True)
    slack_webhook_url = models.URLField(
        blank=True, help_text="Budget alerts are posted here (an incoming-webhook URL)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=TeamRole.choices, default=TeamRole.MEMBER)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "user__email"]
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="membership_user_team_unique")]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.get_role_display()})"


class SsoGroupMapping(models.Model):
    """An SSO group grants either a team role or an org role, on every login."""

    group = models.CharField(max_length=200, help_text="The group name exactly as the groups claim sends it.")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True, related_name="sso_mappings")
    team_role = models.CharField(max_length=20, choices=TeamRole.choices, blank=True)
    org_role = models.CharField(max_length=20, choices=OrgRole.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(team__isnull=False, org_role="") & ~models.Q(team_role="")
                    | models.Q(team__isnull=True, team_role="") & ~models.Q(org_role="")
                ),
                name="sso_mapping_grants_exactly_one_thing",
            ),
            models.UniqueConstraint(
                fields=["group", "team"], condition=models.Q(team__isnull=False), name="sso_mapping_group_team"
            ),
            models.UniqueConstraint(
                fields=["group", "org_role"], condition=~models.Q(org_role=""), name="sso_mapping_group_org_role"
            ),
        ]

    def __str__(self):
        target = f"{self.team} as {self.team_role}" if self.team_id else f"org role {self.org_role}"
        return f"{self.group} → {target}"


class UserSession(models.Model):
    """Which session belongs to whom, so deactivating a person can delete their sessions."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=40, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "session_key"], name="user_session_unique")]

    def __str__(self):
        return f"session of {self.user_id}"


class ScimToken(models.Model):
    """A bearer token an identity provider uses to provision people and groups over SCIM 2.0.

    govsite keeps the sha256 of the secret and its last four characters; the secret is shown once.
    What a token does is audited as "scim:<name>".
    """

    name = models.CharField(max_length=100, help_text="What uses it, e.g. the identity provider's name.")
    token_hash = models.CharField(max_length=64, unique=True)
    last4 = models.CharField(max_length=4)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(revoked_at__isnull=True), name="scim_token_live_name_unique"
            )
        ]

    def __str__(self):
        return f"SCIM token {self.name} (…{self.last4})"

    @property
    def actor_label(self) -> str:
        return f"scim:{self.name}"


class ScimGroup(models.Model):
    """A group the identity provider pushes over SCIM. Its display name is looked up in SsoGroupMapping,
    exactly like a name in the SSO groups claim; what it grants its members has source "scim"."""

    display_name = models.CharField(max_length=200, unique=True)
    external_id = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField(User, blank=True, related_name="scim_groups")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["display_name"]

    def __str__(self):
        return self.display_name


class SlackMessage(models.Model):
    """One message to a team's Slack incoming webhook (a key or increase request waiting for its approvers,
    and its decision): an outbox row (govsite.outbox), written in the transaction that decided it, sent by
    a job after commit, retried with back-off and shown on the team's page when it fails."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        FAILED = "failed", "Failed — will retry"
        SENT = "sent", "Sent"
        GAVE_UP = "gave_up", "Gave up"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="slack_messages")
    event = models.CharField(max_length=60, help_text="What it tells, e.g. key_request.waiting.")
    text = models.TextField(help_text="The message's text (Slack's fallback and notification text).")
    blocks = models.JSONField(default=list, blank=True, help_text="Slack Block Kit blocks.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "status"], name="slack_message_team_status")]

    def __str__(self):
        return f"Slack {self.event} to {self.team} ({self.status})"
