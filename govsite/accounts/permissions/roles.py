"""Role facts (who holds which org and team roles), accounts' own scoped querysets, who gets told, the guards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from govsite.accounts.models import Membership, OrgRole, Team, TeamRole, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

# The two ends of a scope: no row (answered without a query) and every row.
NOTHING = Q(pk__in=[])
EVERYTHING = Q()


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
        user.load_roles()  # with the org roles, in one query
        cached = user._team_roles_cache
    return cached


def is_approver_of(user, team: Team | int) -> bool:
    team_id = team if isinstance(team, int) else team.pk
    return team_roles(user).get(team_id) == TeamRole.APPROVER


def is_member_of(user, team: Team | int) -> bool:
    team_id = team if isinstance(team, int) else team.pk
    return team_id in team_roles(user)


def mfa_required_by_role(user) -> bool:
    """Whether the person's roles are among MFA_REQUIRED_ROLES (org roles by name, "approver" of any team,
    "member" of any team); only consulted when MFA_REQUIRED is on."""
    if not _active(user):
        return False
    held = set(user.org_roles) | set(team_roles(user).values())
    return bool(held & set(settings.MFA_REQUIRED_ROLES))


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


def decides_for_any_team(user) -> bool:
    """Whether `teams_user_decides_for` holds a team, read once per user object (as `team_roles` is): every
    page's navigation asks, and so do the queues it links to."""
    if not _active(user):
        return False
    cached = getattr(user, "_decides_for_any_team_cache", None)
    if cached is None:
        if is_admin(user):
            cached = Team.objects.exists()
        else:  # an approver's teams exist (a membership holds its team): no query
            cached = not is_auditor(user) and TeamRole.APPROVER in team_roles(user).values()
        user._decides_for_any_team_cache = cached
    return cached


def people_visible_to(user) -> QuerySet[User]:
    """People the user may look up: the org for org roles, otherwise the people in their teams."""
    if not _active(user):
        return User.objects.none()
    if sees_whole_org(user):
        return User.objects.all()
    return User.objects.filter(memberships__team_id__in=list(team_roles(user))).distinct()


# --- who gets told -------------------------------------------------------------------------------
# The people a notification goes to are the people who may act on it: stated here, next to the rules that
# let them act, and read by every notification module (keys, budgets, access reviews).


def admins() -> QuerySet[User]:
    return User.objects.filter(is_active=True, org_role_grants__role=OrgRole.ADMIN).distinct().order_by("email")


def finance_people() -> QuerySet[User]:
    return User.objects.filter(is_active=True, org_role_grants__role=OrgRole.FINANCE).distinct().order_by("email")


def deciders_of(team: Team | int) -> QuerySet[User]:
    """The team's approvers: they decide its key requests and hear about its budgets (admins stand in
    where a team has none; each notification says when)."""
    team_id = team if isinstance(team, int) else team.pk
    return User.objects.filter(
        is_active=True, memberships__team_id=team_id, memberships__role=TeamRole.APPROVER
    ).order_by("email")


def reviewers_of(review) -> dict[str, int]:
    """{email: undecided keys they may decide} in an access review: the team's approvers (never on a key
    they own or asked for) while the campaign is not escalated, and the admins for keys no approver may
    decide or once it is (the same rule as `can_decide_access_review_item`)."""
    undecided = list(review.items.filter(decision__isnull=True).values_list("team_id", "owner_id", "requested_by_id"))
    if not undecided:
        return {}
    approvers: dict[int, list[tuple[int, str]]] = {}
    if review.escalated_at is None:
        for team_id, user_id, email in Membership.objects.filter(
            team_id__in={row[0] for row in undecided}, role=TeamRole.APPROVER, user__is_active=True
        ).values_list("team_id", "user_id", "user__email"):
            approvers.setdefault(team_id, []).append((user_id, email))
    admin_emails = list(admins().values_list("email", flat=True))
    counts: dict[str, int] = {}
    for team_id, owner_id, requested_by_id in undecided:
        eligible = [e for user_id, e in approvers.get(team_id, []) if user_id not in (owner_id, requested_by_id)]
        for email in eligible or admin_emails:
            counts[email] = counts.get(email, 0) + 1
    return counts


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


def _approver_team_ids(user) -> list[int]:
    return [tid for tid, role in team_roles(user).items() if role == TeamRole.APPROVER]
