"""Personal API tokens; cost dashboards and adoption."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from govsite.accounts.models import Team
from govsite.accounts.permissions.roles import (
    EVERYTHING,
    NOTHING,
    _active,
    _approver_team_ids,
    is_admin,
    sees_whole_org,
)

# --- API tokens ----------------------------------------------------------------------------------


def can_create_api_token(user) -> bool:
    """Anyone active may hold personal API tokens: a token acts as its person and never grants more than
    they may (an auditor's write token can start an evidence export, and still changes nothing else)."""
    return _active(user)


def can_revoke_api_token(user, token) -> bool:
    """A person revokes their own tokens (auditors too: it is their credential); admins anyone's, e.g. a leaked one."""
    return _active(user) and (token.user_id == user.pk or is_admin(user))


def api_token_scope(user) -> Q:
    """A person's own tokens; admins see everyone's, so they can revoke a leaked one."""
    if not _active(user):
        return NOTHING
    if is_admin(user):
        return EVERYTHING
    return Q(user=user)


def api_token_permits(token, *, write: bool) -> bool:
    """A read token only reads; a write token may change what its person may change (no more)."""
    return not write or token.scope == "write"


# --- dashboards and adoption ---------------------------------------------------------------------
# Cost dashboards and adoption figures: the org roles read the whole org (auditors too: these pages
# only read), approvers their own teams, members only their own usage page. Cost per person within
# a team is `can_view_team_costs` above. Adoption is shown per team and never per person.


def can_view_org_costs(user) -> bool:
    """Org-wide figures (totals across teams, unmanaged keys, the model view): admins, finance, auditors."""
    return sees_whole_org(user)


def teams_with_costs_visible_to(user) -> QuerySet[Team]:
    """Teams whose cost and adoption dashboards the user may open: every team for the org roles,
    the teams they approve for approvers, none for members."""
    if not _active(user):
        return Team.objects.none()
    if sees_whole_org(user):
        return Team.objects.all()
    return Team.objects.filter(pk__in=_approver_team_ids(user))


def can_view_team_dashboards(user) -> bool:
    """Whether the user has any team dashboard at all (checked before the team is looked up)."""
    return can_view_org_costs(user) or bool(_approver_team_ids(user))


def can_view_own_usage(user) -> bool:
    """Everyone signed in has their own usage page; nobody sees another person's."""
    return _active(user)
