"""Key rollouts (keys for many people of a team in one decision): who may ask, decide, see and revoke one.
The rules are a key request's: nobody decides a rollout they asked for or that gives them a key."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from govsite.accounts.models import Team
from govsite.accounts.permissions.roles import (
    EVERYTHING,
    NOTHING,
    _active,
    _approver_team_ids,
    decides_for_any_team,
    is_admin,
    is_approver_of,
    may_change_state,
    require,
    sees_whole_org,
    teams_user_decides_for,
)


def can_request_rollout(user, team: Team | int) -> bool:
    """An approver asks for their team; an admin for any team."""
    return may_change_state(user) and (is_admin(user) or is_approver_of(user, team))


def can_request_any_rollout(user) -> bool:
    return may_change_state(user) and decides_for_any_team(user)


def _is_own_rollout(user, rollout) -> bool:
    return user.pk == rollout.requested_by_id or rollout.members.filter(user_id=user.pk).exists()


def can_decide_rollout(user, rollout) -> bool:
    return (
        may_change_state(user)
        and (is_admin(user) or is_approver_of(user, rollout.team_id))
        and not _is_own_rollout(user, rollout)
    )


def require_can_decide_rollout(user, rollout) -> None:
    if _active(user) and _is_own_rollout(user, rollout):
        raise PermissionDenied(
            "Nobody decides a rollout they asked for or that gives them a key; another approver or an admin does."
        )
    require(can_decide_rollout(user, rollout), "Only the team's approvers or an admin can decide this.")


def rollout_decide_refusal(rollout) -> str | None:
    return None if rollout.status == "pending" else f"Cannot decide: it is {rollout.status}."


def can_revoke_rollout(user, rollout) -> bool:
    return may_change_state(user) and (is_admin(user) or is_approver_of(user, rollout.team_id))


def require_can_revoke_rollout(user, rollout) -> None:
    require(can_revoke_rollout(user, rollout), "Only the team's approvers or an admin can revoke a rollout.")


def rollout_revoke_refusal(rollout) -> str | None:
    return None if rollout.status == "approved" else f"Cannot revoke: it is {rollout.status}."


def can_cancel_rollout(user, rollout) -> bool:
    return _active(user) and rollout.requested_by_id == user.pk


def rollout_scope(user) -> Q:
    """Which rollouts a person sees: org roles all; approvers their teams'; anyone those they asked for."""
    if not _active(user):
        return NOTHING
    if sees_whole_org(user):
        return EVERYTHING
    return Q(requested_by=user) | Q(team_id__in=_approver_team_ids(user))


def rollout_queue_scope(user) -> Q:
    """Pending rollouts the user may decide: their teams', never one they asked for or get a key from."""
    if not may_change_state(user):
        return NOTHING
    return Q(team__in=teams_user_decides_for(user), status="pending") & ~Q(requested_by=user) & ~Q(members__user=user)
