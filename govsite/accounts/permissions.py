"""Who may see or decide what: the one place (ARCHITECTURE.md, Roles).

Views, the API and selectors ask this module; nothing else encodes a role rule. Functions named
`can_*` answer a question, `require_*` raise PermissionDenied, and `*_queryset`/`teams_*`
return querysets already restricted to what the user may reach (404 outside scope).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from govsite.accounts.models import Membership, OrgRole, Team, TeamRole, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def _active(user: User | AnonymousUser | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def has_org_role(user, role: str) -> bool:
    return _active(user) and role in user.org_roles


def is_admin(user) -> bool:
    return has_org_role(user, OrgRole.ADMIN)


def is_finance(user) -> bool:
    return has_org_role(user, OrgRole.FINANCE)


def is_auditor(user) -> bool:
    return has_org_role(user, OrgRole.AUDITOR)


def team_roles(user) -> dict[int, str]:
    """{team_id: role} for the user's memberships, read once per user object."""
    if not _active(user):
        return {}
    cached = getattr(user, "_team_roles_cache", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._team_roles_cache = cached
    return cached


def is_approver_of(user, team: Team | int) -> bool:
    team_id = team if isinstance(team, int) else team.pk
    return team_roles(user).get(team_id) == TeamRole.APPROVER


def is_member_of(user, team: Team | int) -> bool:
    team_id = team if isinstance(team, int) else team.pk
    return team_id in team_roles(user)


def sees_whole_org(user) -> bool:
    """Admins, finance and auditors read across every team."""
    return is_admin(user) or is_finance(user) or is_auditor(user)


# --- scoped querysets -------------------------------------------------------------------------


def teams_visible_to(user) -> QuerySet[Team]:
    if not _active(user):
        return Team.objects.none()
    if sees_whole_org(user):
        return Team.objects.all()
    return Team.objects.filter(pk__in=list(team_roles(user)))


def teams_user_decides_for(user) -> QuerySet[Team]:
    """Teams whose requests the user may decide: approvers their teams, admins every team."""
    if not _active(user) or is_auditor(user) and not is_admin(user):
        return Team.objects.none()
    if is_admin(user):
        return Team.objects.all()
    approver_of = [tid for tid, role in team_roles(user).items() if role == TeamRole.APPROVER]
    return Team.objects.filter(pk__in=approver_of)


def people_visible_to(user) -> QuerySet[User]:
    """People the user may look up: the org for org roles, otherwise the people in their teams."""
    if not _active(user):
        return User.objects.none()
    if sees_whole_org(user):
        return User.objects.all()
    return User.objects.filter(memberships__team_id__in=list(team_roles(user))).distinct()


# --- questions ---------------------------------------------------------------------------------


def can_manage_teams(user) -> bool:
    return is_admin(user)


def can_manage_people(user) -> bool:
    return is_admin(user)


def can_view_audit_log(user) -> bool:
    return is_admin(user) or is_auditor(user)


def can_view_team(user, team: Team) -> bool:
    return teams_visible_to(user).filter(pk=team.pk).exists()


def can_see_team_members(user, team: Team) -> bool:
    return sees_whole_org(user) or is_member_of(user, team)


def may_change_state(user) -> bool:
    """Auditors never change anything; everyone else is further limited per action."""
    return _active(user) and not (is_auditor(user) and not is_admin(user))


# --- guards ------------------------------------------------------------------------------------


def require(allowed: bool, message: str = "You do not have permission to do that.") -> None:
    if not allowed:
        raise PermissionDenied(message)


def require_admin(user) -> None:
    require(is_admin(user), "Only admins can do that.")


# --- keys ----------------------------------------------------------------------------------------


def can_request_key(user, team: Team | int) -> bool:
    return may_change_state(user) and is_member_of(user, team)


def _is_own_request(user, key_request) -> bool:
    return user.pk in (key_request.requested_by_id, key_request.owner_id)


def can_decide_key_request(user, key_request) -> bool:
    """Approvers of the team and admins decide; nobody decides a request they made or will own."""
    return (
        may_change_state(user)
        and not _is_own_request(user, key_request)
        and (is_admin(user) or is_approver_of(user, key_request.team_id))
    )


def require_can_decide_key_request(user, key_request) -> None:
    if _active(user) and _is_own_request(user, key_request):
        raise PermissionDenied("Nobody decides their own request.")
    require(can_decide_key_request(user, key_request), "Only the team's approvers or an admin can decide this.")


def key_requests_visible_to(user):
    from keys.models import KeyRequest

    if not _active(user):
        return KeyRequest.objects.none()
    if sees_whole_org(user):
        return KeyRequest.objects.all()
    approver_teams = [tid for tid, role in team_roles(user).items() if role == TeamRole.APPROVER]
    return KeyRequest.objects.filter(Q(requested_by=user) | Q(owner=user) | Q(team_id__in=approver_teams)).distinct()


def key_requests_decidable_by(user):
    """The approval queue's scope: pending requests of teams the user decides for, never their own."""
    from keys.models import KeyRequest

    if not may_change_state(user):
        return KeyRequest.objects.none()
    return (
        KeyRequest.objects.filter(team__in=teams_user_decides_for(user), status=KeyRequest.Status.PENDING)
        .exclude(requested_by=user)
        .exclude(owner=user)
    )


def keys_visible_to(user):
    from keys.models import VirtualKey

    if not _active(user):
        return VirtualKey.objects.none()
    if sees_whole_org(user):
        return VirtualKey.objects.all()
    approver_teams = [tid for tid, role in team_roles(user).items() if role == TeamRole.APPROVER]
    return VirtualKey.objects.filter(Q(owner=user) | Q(team_id__in=approver_teams))


def can_reveal_key(user, key) -> bool:
    return _active(user) and key.owner_id == user.pk


def can_revoke_key(user, key) -> bool:
    return may_change_state(user) and (key.owner_id == user.pk or is_admin(user) or is_approver_of(user, key.team_id))


def can_rotate_key(user, key) -> bool:
    return can_revoke_key(user, key)


def can_reassign_key_owner(user, key) -> bool:
    return may_change_state(user) and (is_admin(user) or is_approver_of(user, key.team_id))


def can_manage_model_policy(user) -> bool:
    return is_admin(user)


def can_manage_gateway(user) -> bool:
    return is_admin(user)


def can_view_gateway_operations(user) -> bool:
    return is_admin(user) or is_auditor(user)
