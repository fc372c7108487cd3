"""factory-boy factories: people, teams, memberships and roles; key requests and keys; budgets and
budget increases. Rows are written directly (no services, no audit events), so tests start from a
known state; a test that wants the audit trail goes through the services instead.

Spend is the exception: `SpendLogRowFactory` builds a request as LiteLLM logs it (a `LiteLLM_SpendLogs`
row), and tests book it through the real ingest, so nothing writes ledger rows by hand."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from budgets.models import Budget, BudgetIncreaseRequest
from govsite.accounts.models import (
    Membership,
    OrgRole,
    OrgRoleGrant,
    Source,
    SsoGroupMapping,
    Team,
    TeamRole,
    User,
)
from govsite.devtools.sandbox import make_spend_row
from keys import crypto
from keys.models import Approval, DataClassification, KeyKind, KeyRequest, VirtualKey

DEFAULT_CLASSIFICATIONS = {"public": 1, "internal": 2, "confidential": 3, "restricted": 4}


def classification(key: str) -> DataClassification:
    """The seeded data class (a transactional test's flush removes migration-seeded rows, so re-create)."""
    for name, level in DEFAULT_CLASSIFICATIONS.items():
        DataClassification.objects.get_or_create(key=name, defaults={"level": level, "label": name.title()})
    return DataClassification.objects.get(key=key)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Sequence(lambda n: f"Person {n}")
    is_active = True

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):  # noqa: N805 - factory-boy passes the object first
        # People normally sign in through SSO, so no password unless a test asks for one.
        if extracted:
            obj.set_password(extracted)
        else:
            obj.set_unusable_password()
        if create:
            obj.save(update_fields=["password"])


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")
    description = ""
    cost_centre = ""


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = TeamRole.MEMBER
    source = Source.MANUAL


class OrgRoleGrantFactory(DjangoModelFactory):
    class Meta:
        model = OrgRoleGrant

    user = factory.SubFactory(UserFactory)
    role = OrgRole.ADMIN
    source = Source.MANUAL


class SsoGroupMappingFactory(DjangoModelFactory):
    class Meta:
        model = SsoGroupMapping

    group = factory.Sequence(lambda n: f"sso-group-{n}")
    team = factory.SubFactory(TeamFactory)
    team_role = TeamRole.MEMBER
    org_role = ""


def make_user(
    *,
    org_roles: Iterable[str] = (),
    teams: Mapping[Team, str] | None = None,
    source: str = Source.MANUAL,
    **fields,
) -> User:
    """A person with the given org roles and {team: team_role} memberships, written directly
    (no services, no audit events), so tests start from a known state."""
    user = UserFactory(**fields)
    for role in org_roles:
        OrgRoleGrantFactory(user=user, role=role, source=source)
    for team, role in (teams or {}).items():
        MembershipFactory(user=user, team=team, role=role, source=source)
    user.forget_cached_roles()
    return user


class KeyRequestFactory(DjangoModelFactory):
    """A pending request of a new person in a new team; `approved=True` for one already decided."""

    class Meta:
        model = KeyRequest
        skip_postgeneration_save = True

    class Params:
        approved = factory.Trait(
            status=KeyRequest.Status.APPROVED,
            decided_at=factory.LazyAttribute(lambda o: o.created_at + timedelta(minutes=5, seconds=-1)),
        )

    requested_by = factory.SubFactory(UserFactory)
    owner = factory.SelfAttribute("requested_by")
    team = factory.SubFactory(TeamFactory)
    kind = KeyKind.PERSONAL
    purpose = "written directly by a test"
    data_classification = factory.LazyFunction(lambda: classification("internal"))
    monthly_budget = Decimal("20")
    created_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def requested_models(obj, create, extracted, **kwargs):  # noqa: N805 - factory-boy passes the object first
        if create and extracted:
            obj.requested_models.set(extracted)


class VirtualKeyFactory(DjangoModelFactory):
    """A live key (active, provisioned) and its approved request, as provisioning leaves them. The plain
    secret is on `.secret` (pass `secret=` to choose it); `encrypted=True` keeps a copy to reveal."""

    class Meta:
        model = VirtualKey
        skip_postgeneration_save = True

    class Params:
        encrypted = False

    owner = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    request = factory.SubFactory(
        KeyRequestFactory,
        approved=True,
        requested_by=factory.SelfAttribute("..owner"),
        team=factory.SelfAttribute("..team"),
        kind=factory.SelfAttribute("..kind"),
        created_at=factory.LazyAttribute(lambda o: o.factory_parent.created_at - timedelta(minutes=5)),
    )
    kind = KeyKind.PERSONAL
    service_name = factory.LazyAttribute(lambda o: "ci-bot" if o.kind == KeyKind.SERVICE else "")
    alias = factory.Sequence(lambda n: f"test-key-{n}-{secrets.token_hex(3)}")
    allowed_models = factory.LazyFunction(lambda: ["gpt-4o", "gpt-4o-mini"])
    max_budget = Decimal("20")
    status = VirtualKey.Status.ACTIVE
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + timedelta(days=90))
    provisioned_at = factory.LazyAttribute(
        lambda o: None if o.status == VirtualKey.Status.PROVISIONING else o.created_at
    )
    secret = factory.LazyFunction(lambda: f"sk-test-{secrets.token_urlsafe(18)}")
    token_hash = factory.LazyAttribute(lambda o: crypto.token_hash(o.secret))
    last4 = factory.LazyAttribute(lambda o: o.secret[-4:])
    secret_encrypted = factory.LazyAttribute(lambda o: crypto.encrypt(o.secret) if o.encrypted else None)

    @factory.post_generation
    def approved_by(obj, create, extracted, **kwargs):  # noqa: N805 - factory-boy passes the object first
        """`approved_by=person`: the request carries that person's approval, just before the key."""
        if create and extracted is not None:
            Approval.objects.create(
                request=obj.request,
                approver=extracted,
                decision=Approval.Decision.APPROVE,
                created_at=obj.created_at - timedelta(seconds=2),
            )

    @factory.post_generation
    def gateway(obj, create, extracted, **fields):  # noqa: N805 - factory-boy passes the object first
        """`gateway=target` (and `gateway__rpm_limit=...`): the same key made in that gateway, so its calls
        are logged under the key's hash."""
        if create and extracted is not None:
            with extracted.client() as client:
                client.key_generate(key=obj.secret, key_alias=obj.alias, **fields)

    @classmethod
    def _create(cls, model_class, *args, secret: str, **kwargs):
        key = super()._create(model_class, *args, **kwargs)
        key.secret = secret  # what the owner would hold: tests call the gateway and book spend with it
        return key


class BudgetFactory(DjangoModelFactory):
    """A monthly team budget (set `user` or `key` for a person's or a key's)."""

    class Meta:
        model = Budget

    team = factory.SubFactory(TeamFactory)
    amount = Decimal("100")
    created_by = factory.SubFactory(UserFactory)


class BudgetIncreaseRequestFactory(DjangoModelFactory):
    """A pending, permanent increase of a team budget asked by a new person."""

    class Meta:
        model = BudgetIncreaseRequest

    budget = factory.SubFactory(BudgetFactory)
    requested_by = factory.SubFactory(UserFactory)
    amount = Decimal("20")
    justification = "a release week"


class SpendLogRowFactory(factory.Factory):
    """One gateway request in LiteLLM's spend-log shape; every other field keeps the row builder's default
    (pass `api_key=key.secret` to attribute it to a key, `start_time=`, `spend=`, tokens, `status=`...)."""

    class Meta:
        model = make_spend_row

    request_id = factory.LazyFunction(lambda: f"req-{uuid.uuid4().hex}")
