"""Permission rows for the API-token pages (Settings → API tokens); see tests/permissions.py for the checks."""

from __future__ import annotations

import itertools

from govsite.api.models import ApiToken
from tests.api.helpers import make_token
from tests.permissions import ADMIN, ALL_ROLES, MEMBER_A, MEMBER_B, UrlCase, register

_n = itertools.count(1)


def _member_of(world, team):
    return world.users[MEMBER_B] if team == world.team_b else world.users[MEMBER_A]


def _members_token(world, team):
    """A token of the team's plain member: its owner and admins may revoke it; anyone else does not find it (404)."""
    make_token(_member_of(world, team))
    return {"pk": ApiToken.objects.filter(user=_member_of(world, team)).latest("pk").pk}


def _new_token_form(world, team):
    # Any active person may hold a token; read scope keeps the row simple.
    return {"name": f"ci job {next(_n)}", "scope": "read", "lifetime": "30"}


register(
    UrlCase("settings_api_tokens"),
    UrlCase(
        "settings_api_tokens",
        method="post",
        data=_new_token_form,
        ok_status=200,
        personal=True,
        effect=lambda c: ApiToken.objects.filter(user=c.user, name=c.data["name"]).exists(),
    ),
    UrlCase(
        "settings_api_token_revoke",
        kwargs=_members_token,
        allowed=frozenset({ADMIN, MEMBER_A, MEMBER_B}),
        refused_status=404,
        unreachable=lambda world: {"pk": 987_654_321},
    ),
    UrlCase(
        "settings_api_token_revoke",
        method="post",
        kwargs=_members_token,
        allowed=frozenset({ADMIN, MEMBER_A, MEMBER_B}),
        refused_status=404,
        unreachable=lambda world: {"pk": 987_654_321},
        personal=True,
        effect=lambda c: ApiToken.objects.get(pk=c.pk).revoked_at is not None,
    ),
)

__all__ = ["ALL_ROLES"]
