"""factory-boy factories for people, teams, memberships and roles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import factory
from factory.django import DjangoModelFactory

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
