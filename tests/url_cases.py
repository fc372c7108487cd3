"""Permission rows for the project's own URLs: home, people and teams, SSO mapping, audit log.

Apps add theirs in `tests/<app>/url_cases.py` with the same `register(...)` call.
"""

from __future__ import annotations

import itertools

from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, SsoGroupMapping, Team, TeamRole, User
from tests.factories import MembershipFactory, SsoGroupMappingFactory, make_user
from tests.permissions import ADMIN, ALL_ROLES, AUDITOR, UrlCase, register

ADMIN_ONLY = frozenset({ADMIN})
MISSING_PK = 987_654_321
_unique = itertools.count(1)


def _team(world, team):
    return {"slug": team.slug}


def _membership(world, team):
    return {"slug": team.slug, "pk": MembershipFactory(team=team).pk}


def _membership_of_other_team(world):
    # Team A's URL, team B's membership: the pair must not resolve to an object.
    return {"slug": world.team_a.slug, "pk": MembershipFactory(team=world.team_b).pk}


def _person(world, team):
    return {"pk": make_user(teams={team: TeamRole.MEMBER}).pk}


def _deactivated_person(world, team):
    return {"pk": make_user(teams={team: TeamRole.MEMBER}, is_active=False).pk}


def _missing_person(world):
    return {"pk": MISSING_PK}


def _sso_mapping(world, team):
    return {"pk": SsoGroupMappingFactory(team=team).pk}


def _team_form(world, team):
    n = next(_unique)
    return {
        "name": f"Created {n}",
        "slug": f"created-{n}",
        "description": "",
        "cost_centre": "",
        "slack_webhook_url": "",
    }


def _team_edit_form(world, team):
    return {
        "name": team.name,
        "slug": team.slug,
        "description": "Edited",
        "cost_centre": "CC-1",
        "slack_webhook_url": "",
    }


def _new_member_form(world, team):
    return {"user": make_user().pk, "role": TeamRole.MEMBER}


def _person_form(world, team):
    return {"email": f"new-person-{next(_unique)}@example.com", "full_name": "New Person"}


def _sso_mapping_form(world, team):
    return {"group": f"group-{next(_unique)}", "team": team.pk, "team_role": TeamRole.MEMBER, "org_role": ""}


register(
    UrlCase("home"),
    UrlCase("inbox"),
    # teams
    UrlCase("team_list"),
    UrlCase("team_create", allowed=ADMIN_ONLY),
    UrlCase(
        "team_create",
        method="post",
        allowed=ADMIN_ONLY,
        data=_team_form,
        effect=lambda c: Team.objects.filter(slug=c.data["slug"]).exists(),
    ),
    UrlCase("team_detail", kwargs=_team, scoped=True, allowed=ALL_ROLES),
    UrlCase("team_edit", kwargs=_team, allowed=ADMIN_ONLY, unreachable=lambda w: {"slug": "no-such-team"}),
    UrlCase(
        "team_edit",
        method="post",
        kwargs=_team,
        data=_team_edit_form,
        allowed=ADMIN_ONLY,
        effect=lambda c: Team.objects.get(slug=c.kwargs["slug"]).description == "Edited",
        unreachable=lambda w: {"slug": "no-such-team"},
    ),
    UrlCase("membership_add", kwargs=_team, allowed=ADMIN_ONLY, unreachable=lambda w: {"slug": "no-such-team"}),
    UrlCase(
        "membership_add",
        method="post",
        kwargs=_team,
        data=_new_member_form,
        allowed=ADMIN_ONLY,
        effect=lambda c: Membership.objects.filter(team__slug=c.kwargs["slug"], user_id=c.data["user"]).exists(),
        unreachable=lambda w: {"slug": "no-such-team"},
    ),
    UrlCase(
        "membership_role",
        method="post",
        kwargs=_membership,
        data=lambda w, t: {"role": TeamRole.APPROVER},
        allowed=ADMIN_ONLY,
        effect=lambda c: Membership.objects.get(pk=c.pk).role == TeamRole.APPROVER,
        unreachable=_membership_of_other_team,
    ),
    UrlCase("membership_remove", kwargs=_membership, allowed=ADMIN_ONLY, unreachable=_membership_of_other_team),
    UrlCase(
        "membership_remove",
        method="post",
        kwargs=_membership,
        allowed=ADMIN_ONLY,
        effect=lambda c: not Membership.objects.filter(pk=c.pk).exists(),
        unreachable=_membership_of_other_team,
    ),
    # people
    UrlCase("people_list"),
    UrlCase("person_create", allowed=ADMIN_ONLY),
    UrlCase(
        "person_create",
        method="post",
        data=_person_form,
        allowed=ADMIN_ONLY,
        effect=lambda c: User.objects.filter(email=c.data["email"]).exists(),
    ),
    UrlCase("person_detail", kwargs=_person, scoped=True, allowed=ALL_ROLES),
    UrlCase(
        "person_roles",
        method="post",
        kwargs=_person,
        data=lambda w, t: {"org_roles": [OrgRole.FINANCE]},
        allowed=ADMIN_ONLY,
        effect=lambda c: OrgRoleGrant.objects.filter(user_id=c.pk, role=OrgRole.FINANCE).exists(),
        unreachable=_missing_person,
    ),
    UrlCase("person_deactivate", kwargs=_person, allowed=ADMIN_ONLY, unreachable=_missing_person),
    UrlCase(
        "person_deactivate",
        method="post",
        kwargs=_person,
        data=lambda w, t: {"reason": "left the company", "confirm": "on"},
        allowed=ADMIN_ONLY,
        effect=lambda c: not User.objects.get(pk=c.pk).is_active,
        unreachable=_missing_person,
    ),
    UrlCase(
        "person_reactivate",
        method="post",
        kwargs=_deactivated_person,
        allowed=ADMIN_ONLY,
        unreachable=_missing_person,
        effect=lambda c: User.objects.get(pk=c.pk).is_active,
    ),
    # SSO mapping
    UrlCase("sso_mappings", allowed=ADMIN_ONLY),
    UrlCase(
        "sso_mappings",
        method="post",
        data=_sso_mapping_form,
        allowed=ADMIN_ONLY,
        effect=lambda c: SsoGroupMapping.objects.filter(group=c.data["group"]).exists(),
    ),
    UrlCase(
        "sso_mapping_delete",
        method="post",
        kwargs=_sso_mapping,
        allowed=ADMIN_ONLY,
        effect=lambda c: not SsoGroupMapping.objects.filter(pk=c.pk).exists(),
        unreachable=lambda w: {"pk": MISSING_PK},
    ),
    # audit
    UrlCase("audit_log", allowed=frozenset({ADMIN, AUDITOR})),
)
