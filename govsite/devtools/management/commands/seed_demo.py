"""Fill the site with a small demo org: 5 teams, 25 people, every role. Safe to run again.

With `--history`, also the keys people asked for and their approvers approved (provisioned at the
gateway, the sandbox in the demo), two requests still waiting, and eight weeks of synthetic traffic of
those keys booked through the real ingest (govsite.devtools.demo_traffic): the dashboards, the adoption page and
the budgets then have something to show.
"""

import random
import time
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

import audit
from budgets import services as budget_services
from budgets.ingest import ingest_spend_rows
from budgets.models import Budget, SpendRecord
from govsite.accounts import services
from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Source, SsoGroupMapping, Team, TeamRole, User
from govsite.devtools.demo_traffic import habits_for, history
from govsite.gateway.client import GatewayError, get_client
from keys import services as key_services
from keys.models import Approval, DataClassification, GatewayCommand, KeyKind, KeyRequest, ModelPolicy, VirtualKey

DEMO_PASSWORD = "govsite-demo-2026"  # noqa: S105 — printed for the demo on purpose

TEAMS = [
    ("Platform", "platform", "CC-100", "Infrastructure, CI and the developer platform."),
    ("Payments", "payments", "CC-200", "Checkout, billing and payouts."),
    ("Data Science", "data-science", "CC-300", "Models, analytics and experimentation."),
    ("Mobile", "mobile", "CC-400", "iOS and Android apps."),
    ("Support Tools", "support-tools", "CC-500", "Internal tools for customer support."),
]

# (email local part, name, org roles, {team slug: role})
PEOPLE = [
    ("ada", "Ada Admin", [OrgRole.ADMIN], {}),
    ("fiona", "Fiona Finance", [OrgRole.FINANCE], {}),
    ("aubrey", "Aubrey Auditor", [OrgRole.AUDITOR], {}),
    ("paul", "Paul Platform-Lead", [], {"platform": TeamRole.APPROVER}),
    ("priya", "Priya Payments-Lead", [], {"payments": TeamRole.APPROVER}),
    ("dev", "Dev Data-Lead", [], {"data-science": TeamRole.APPROVER}),
    ("maya", "Maya Mobile-Lead", [], {"mobile": TeamRole.APPROVER}),
    ("sam", "Sam Support-Lead", [], {"support-tools": TeamRole.APPROVER, "mobile": TeamRole.MEMBER}),
    ("erin", "Erin Engineer", [], {"platform": TeamRole.MEMBER}),
    ("omar", "Omar Ops", [], {"platform": TeamRole.MEMBER}),
    ("lena", "Lena Lin", [], {"platform": TeamRole.MEMBER}),
    ("tom", "Tom Tran", [], {"platform": TeamRole.MEMBER, "data-science": TeamRole.MEMBER}),
    ("nia", "Nia Nwosu", [], {"payments": TeamRole.MEMBER}),
    ("raj", "Raj Rao", [], {"payments": TeamRole.MEMBER}),
    ("kim", "Kim Kowalski", [], {"payments": TeamRole.MEMBER}),
    ("ben", "Ben Baker", [], {"payments": TeamRole.MEMBER}),
    ("chloe", "Chloe Chen", [], {"data-science": TeamRole.MEMBER}),
    ("diego", "Diego Diaz", [], {"data-science": TeamRole.MEMBER}),
    ("hana", "Hana Hayashi", [], {"data-science": TeamRole.MEMBER}),
    ("ivan", "Ivan Ivanov", [], {"mobile": TeamRole.MEMBER}),
    ("jade", "Jade Jones", [], {"mobile": TeamRole.MEMBER}),
    ("kofi", "Kofi Kuma", [], {"mobile": TeamRole.MEMBER}),
    ("lucy", "Lucy Lopez", [], {"support-tools": TeamRole.MEMBER}),
    ("max", "Max Meyer", [], {"support-tools": TeamRole.MEMBER}),
    ("zoe", "Zoe Zhang", [OrgRole.FINANCE], {"payments": TeamRole.MEMBER}),
]
DOMAIN = "demo.govsite.local"
PROJECTS = {
    "platform": "atlas",
    "payments": "checkout",
    "data-science": "forecast",
    "mobile": "orbit",
    "support-tools": "helpdesk",
}
PURPOSES = [
    "Claude Code for day-to-day work on our services",
    "Codex for test generation",
    "Kimi CLI for log triage",
    "Code review summaries",
    "Refactoring the legacy modules",
]

# (name, provider, access, highest data classification, flat rate, note) — names the sandbox gateway serves.
MODELS = [
    ("gpt-4o", "openai", "open", "confidential", False, "General purpose"),
    ("gpt-4o-mini", "openai", "open", "internal", False, "Cheap and fast"),
    ("claude-sonnet-4-5", "anthropic", "restricted", "restricted", False, "Coding agents; needs an admin too"),
    ("claude-haiku-4-5", "anthropic", "open", "confidential", False, "Fast Claude"),
    ("kimi-k2.5", "moonshot", "open", "internal", True, "Subscription: flat rate"),
    ("acme-internal-llm", "acme", "open", "public", False, "Self-hosted; not in litellm's price map"),
]


class Command(BaseCommand):
    help = "Create the demo org (teams, people in every role, SSO mappings). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--history",
            action="store_true",
            help="also keys through the approval flow and eight weeks of synthetic traffic (needs the gateway up)",
        )

    def handle(self, *args, **options):
        admin = self._first_admin()
        for name, slug, cost_centre, description in TEAMS:
            if not Team.objects.filter(slug=slug).exists():
                services.team_create(
                    actor=admin, name=name, slug=slug, cost_centre=cost_centre, description=description
                )
        teams = {t.slug: t for t in Team.objects.all()}
        for local, name, org_roles, memberships in PEOPLE:
            email = f"{local}@{DOMAIN}"
            user = User.objects.filter(email=email).first()
            if user is None:
                user = services.user_create(actor=admin, email=email, full_name=name, org_roles=org_roles)
            if not user.has_usable_password():
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            for slug, role in memberships.items():
                if not Membership.objects.filter(user=user, team=teams[slug]).exists():
                    services.membership_add(actor=admin, team=teams[slug], user=user, role=role)
        for slug, team in teams.items():
            for role in (TeamRole.MEMBER, TeamRole.APPROVER):
                group = f"llm-{slug}-{role}s"
                if not SsoGroupMapping.objects.filter(group=group, team=team).exists():
                    services.sso_mapping_create(actor=admin, group=group, team=team, team_role=role)
        for role in OrgRole.values:
            group = f"llm-org-{role}"
            if not SsoGroupMapping.objects.filter(group=group, org_role=role).exists():
                services.sso_mapping_create(actor=admin, group=group, org_role=role)
        self._models(admin)
        self._budgets(admin)
        if options["history"]:
            # The decision emails of dozens of demo keys would fill the console the demo prints to.
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
                self._history(admin)

        self.stdout.write(
            self.style.SUCCESS(f"Demo org ready: {Team.objects.count()} teams, {User.objects.count()} people.")
        )
        self.stdout.write(f"Every demo login uses the password: {DEMO_PASSWORD}")
        for local, name, org_roles, memberships in PEOPLE:
            roles = [str(r) for r in org_roles] + [f"{r} of {s}" for s, r in memberships.items()]
            login = f"{local}@{DOMAIN}"
            self.stdout.write(f"  {login:<30} {name:<22} {', '.join(roles)}")

    def _models(self, admin: User) -> None:
        for name, provider, access, level, flat_rate, note in MODELS:
            if not ModelPolicy.objects.filter(name=name).exists():
                key_services.model_policy_save(
                    actor=admin,
                    name=name,
                    provider=provider,
                    access=access,
                    flat_rate=flat_rate,
                    note=note,
                    max_classification=DataClassification.objects.get(key=level),
                    is_active=True,
                )

    def _budgets(self, admin: User) -> None:
        for team in Team.objects.all():
            if not Budget.objects.filter(team=team, user=None, key=None).exists():
                budget_services.budget_create(
                    actor=admin, team=team, amount=Decimal("300"), approver_limit=Decimal("100")
                )

    @transaction.atomic
    def _first_admin(self) -> User:
        email = f"ada@{DOMAIN}"
        admin = User.objects.filter(email=email).first()
        if admin is None:
            admin = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name="Ada Admin")
            audit.record(
                action="user.created",
                actor_label="seed_demo",
                target=admin,
                data={"email": email, "full_name": admin.full_name},
            )
        if not OrgRoleGrant.objects.filter(user=admin, role=OrgRole.ADMIN).exists():
            OrgRoleGrant.objects.create(user=admin, role=OrgRole.ADMIN, source=Source.MANUAL)
            audit.record(
                action="user.org_role_granted",
                actor_label="seed_demo",
                target=admin,
                data={"role": OrgRole.ADMIN, "source": Source.MANUAL},
            )
        return admin

    # --- --history ---------------------------------------------------------------------------------------------

    HISTORY_DAYS = 56
    WITHOUT_KEYS = ("lena", "kofi")  # they asked, and wait in their approvers' queues
    HISTORY_MODELS = ("gpt-4o", "gpt-4o-mini", "claude-haiku-4-5", "kimi-k2.5", "acme-internal-llm")

    def _gateway_up(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with get_client(timeout=2) as client:
                    client.liveliness()
                return True
            except GatewayError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.5)

    def _provisioned(self, key, tries: int = 5):
        """The key once the gateway has it: provisioning ran when the approval committed; a busy gateway
        that timed out is asked again now rather than after the command's back-off."""
        for attempt in range(tries):
            key.refresh_from_db()
            if key.status != VirtualKey.Status.PROVISIONING:
                return key
            time.sleep(attempt)
            for command in GatewayCommand.objects.filter(key=key, status=GatewayCommand.Status.PENDING):
                key_services.gateway_command_execute(command_id=command.pk)
        return key

    def _history(self, admin: User) -> None:
        if SpendRecord.objects.filter(request_id__startswith="demo-").exists():
            self.stdout.write("Demo history is there already.")
            return
        if not self._gateway_up():
            self.stdout.write(self.style.WARNING("The gateway does not answer: no demo keys or history."))
            return
        models = list(ModelPolicy.objects.filter(name__in=self.HISTORY_MODELS))
        public = DataClassification.objects.get(key="public")  # the least sensitive: every demo model takes it
        approvers = {
            team.slug: [m.user for m in team.memberships.filter(role=TeamRole.APPROVER).select_related("user")]
            for team in Team.objects.prefetch_related("memberships")
        }
        rng = random.Random(2026)
        habits = []
        for local, _name, _roles, memberships in PEOPLE:
            user = User.objects.get(email=f"{local}@{DOMAIN}")
            for slug in memberships:
                team = Team.objects.get(slug=slug)
                if KeyRequest.objects.filter(requested_by=user, team=team).exists():
                    continue
                request = key_services.key_request_create(
                    requester=user,
                    data=key_services.KeyRequestInput(
                        team=team,
                        kind=KeyKind.PERSONAL,
                        purpose=rng.choice(PURPOSES),
                        data_classification=public,
                        models=models,
                        monthly_budget=Decimal(rng.choice([50, 75, 100])),
                        expiry_days=90,
                    ),
                )
                if local in self.WITHOUT_KEYS:
                    continue
                approver = next((a for a in approvers[slug] if a != user), admin)
                key = key_services.key_request_approve(request=request, approver=approver, note="Demo history")
                key = self._provisioned(key)
                if key.status == VirtualKey.Status.ACTIVE:
                    habits.append(habits_for(key.token_hash, key.alias, PROJECTS[slug], rng))
        today = timezone.now().date()
        first = today - timedelta(days=self.HISTORY_DAYS)
        # The demo org has been here since before its history: the adoption figures count people from
        # the day they joined their team, so the memberships (not audited facts) start then.
        joined = timezone.now() - timedelta(days=self.HISTORY_DAYS + 14)
        Membership.objects.filter(user__email__endswith=f"@{DOMAIN}").update(created_at=joined)
        User.objects.filter(email__endswith=f"@{DOMAIN}").update(date_joined=joined)
        # Likewise the keys carry the history's dates: asked for, approved and made the week before their first
        # booked request, expiring 90 days after that (the audit events keep the real time they were written).
        issued = timezone.now() - timedelta(days=self.HISTORY_DAYS + 7)
        demo_keys = VirtualKey.objects.filter(owner__email__endswith=f"@{DOMAIN}", alias__in=[h.alias for h in habits])
        KeyRequest.objects.filter(keys__in=demo_keys).update(created_at=issued - timedelta(hours=2), decided_at=issued)
        Approval.objects.filter(request__keys__in=demo_keys).update(created_at=issued - timedelta(hours=1))
        demo_keys.update(created_at=issued, provisioned_at=issued, expires_at=issued + timedelta(days=90))
        rows = list(history(habits, days=self.HISTORY_DAYS, today=today, rng=rng))
        booked = 0
        for start in range(0, len(rows), 2000):
            booked += ingest_spend_rows(rows[start : start + 2000], "pull").inserted
        self.stdout.write(
            f"Demo history: {len(habits)} keys, {booked:,} requests from {first:%Y-%m-%d} to yesterday "
            f"(requests by {', '.join(self.WITHOUT_KEYS)} wait for approval)."
        )
