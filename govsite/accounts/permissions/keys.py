"""Keys and key requests: who may ask, decide, reveal, rotate, revoke, reassign or cancel, and what the
object's state allows now."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from govsite.accounts.models import Team, User
from govsite.accounts.permissions.roles import (
    EVERYTHING,
    NOTHING,
    _active,
    _approver_team_ids,
    decides_for_any_team,
    is_admin,
    is_approver_of,
    is_auditor,
    is_member_of,
    may_change_state,
    require,
    sees_whole_org,
    team_roles,
    teams_user_decides_for,
)

# --- keys ----------------------------------------------------------------------------------------


def can_request_key(user, team: Team | int) -> bool:
    return may_change_state(user) and is_member_of(user, team)


def can_request_any_key(user) -> bool:
    """Whether the user may ask for a key at all (in some team): the request page and the API's create."""
    return any(can_request_key(user, team_id) for team_id in team_roles(user))


def has_key_approval_queue(user) -> bool:
    """Whether the user decides key requests for some team (approvers, admins): the queue page and the API's."""
    return decides_for_any_team(user)


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


def key_request_scope(user) -> Q:
    """Which key requests a person sees: org roles all; others their own and their approver teams'."""
    if not _active(user):
        return NOTHING
    if sees_whole_org(user):
        return EVERYTHING
    return Q(requested_by=user) | Q(owner=user) | Q(team_id__in=_approver_team_ids(user))


def key_request_queue_scope(user) -> Q:
    """The approval queue: pending requests of teams the user decides for, never their own."""
    if not may_change_state(user):
        return NOTHING
    # A request they already approved waits for someone else (a restricted model's admin): not theirs to decide.
    return (
        Q(team__in=teams_user_decides_for(user), status="pending")
        & ~Q(requested_by=user)
        & ~Q(owner=user)
        & ~Q(approvals__approver=user)
    )


def key_scope(user) -> Q:
    """Which keys a person sees: org roles all; others their own and their approver teams'."""
    if not _active(user):
        return NOTHING
    if sees_whole_org(user):
        return EVERYTHING
    return Q(owner=user) | Q(team_id__in=_approver_team_ids(user))


# What a person may do with a key or a request. Each action is stated here once, in two halves: who may
# (`can_<action>`: the role) and whether the object's state allows it now (`<action>_refusal`: the reason
# it does not, or None). Pages, templates and the API read both at once through `key_actions_for` and
# `key_request_actions_for`; the services check the role first (`require_can_<action>`), then the state
# on the locked row (raising InvalidTransition with the refusal).


def can_reveal_key(user, key) -> bool:
    return _active(user) and key.owner_id == user.pk


def require_can_reveal_key(user, key) -> None:
    require(can_reveal_key(user, key), "Only the key's owner can reveal it.")


def key_reveal_refusal(key) -> str | None:
    if key.status != "active":
        return "The key can be revealed once it is active."
    if not key.can_reveal:
        if key.revealed_at is None:
            # Destroyed unrevealed when the key changed owner (its new owner got a rotation), or made
            # outside govsite: nobody can reveal it.
            return "govsite holds no secret for this key; its owner reveals the key that replaced it."
        return "This key was already revealed; it is shown only once."
    return None


def can_revoke_key(user, key) -> bool:
    return may_change_state(user) and (key.owner_id == user.pk or is_admin(user) or is_approver_of(user, key.team_id))


def require_can_revoke_key(user, key) -> None:
    require(can_revoke_key(user, key), "Only the owner, the team's approvers or an admin can revoke it.")


# A failed key (the gateway never made it) is revoked too, so that nothing is left to retry.
REVOCABLE_KEY_STATUSES = ("active", "provisioning", "failed")


def key_revoke_refusal(key) -> str | None:
    if key.status not in REVOCABLE_KEY_STATUSES:
        return f"Cannot revoke: it is {key.status}."
    return None


def can_rotate_key(user, key) -> bool:
    return can_revoke_key(user, key)


def require_can_rotate_key(user, key) -> None:
    require(can_rotate_key(user, key), "Only the owner, an approver or an admin can rotate.")


def key_rotate_refusal(key) -> str | None:
    """A key adopted from the gateway (no request) has no grants to copy; a key is rotated once."""
    if key.status != "active" or key.request_id is None:
        return f"Cannot rotate: it is {key.status}."
    if hasattr(key, "rotated_to"):
        return "This key was already rotated."
    return None


# A key's one reveal never changes hands: reassigning destroys an unrevealed secret and the new owner gets
# a rotation (keys.services.key_reassign_owner), and nobody makes themselves the owner of a key: an admin
# does it for them, audited.


def can_reassign_key_owner(user, key) -> bool:
    return may_change_state(user) and (is_admin(user) or is_approver_of(user, key.team_id))


def require_can_reassign_key_owner(user, key) -> None:
    require(can_reassign_key_owner(user, key), "Only approvers or admins can reassign.")


def can_reassign_key_owner_to(user, key, new_owner) -> bool:
    return can_reassign_key_owner(user, key) and new_owner.pk != user.pk


def require_can_reassign_key_owner_to(user, key, new_owner) -> None:
    if _active(user) and new_owner.pk == user.pk:
        raise PermissionDenied("Nobody makes themselves a key's owner; an admin reassigns it to you.")
    require_can_reassign_key_owner(user, key)


def key_owner_candidates(user, key):
    """Whom `user` may make the key's owner: the team's active members, never themselves."""
    return (
        User.objects.filter(is_active=True, memberships__team_id=key.team_id)
        .exclude(pk=user.pk)
        .distinct()
        .order_by("email")
    )


def key_reassign_refusal(key) -> str | None:
    if key.kind != "service" or not key.is_live:
        return "Only live service keys change owner."
    if key.status != "active" and key.can_reveal:
        # Its unrevealed secret is replaced by a rotation on reassignment, and only an active key rotates.
        return "The key is still being made; change its owner once it is active."
    return None


@dataclass(frozen=True)
class KeyActions:
    """What one person may do with one key now: the buttons a page shows and the API's `actions`."""

    reveal: bool
    rotate: bool
    revoke: bool
    reassign: bool


def key_actions_for(user, key) -> KeyActions:
    return KeyActions(
        reveal=can_reveal_key(user, key) and key_reveal_refusal(key) is None,
        rotate=can_rotate_key(user, key) and key_rotate_refusal(key) is None,
        revoke=can_revoke_key(user, key) and key_revoke_refusal(key) is None,
        reassign=can_reassign_key_owner(user, key) and key_reassign_refusal(key) is None,
    )


def can_cancel_key_request(user, key_request) -> bool:
    """Only the person who asked withdraws a request (not the owner it was asked for)."""
    return _active(user) and key_request.requested_by_id == user.pk


def require_can_cancel_key_request(user, key_request) -> None:
    require(can_cancel_key_request(user, key_request), "Only the requester can cancel a request.")


def key_request_cancel_refusal(key_request) -> str | None:
    return None if key_request.status == "pending" else f"Cannot cancel: it is {key_request.status}."


def key_request_decide_refusal(key_request) -> str | None:
    return None if key_request.status == "pending" else f"Cannot decide: it is {key_request.status}."


@dataclass(frozen=True)
class KeyRequestActions:
    cancel: bool
    decide: bool
    # They approved it already and it waits for another approval (no decision left for them).
    approved_by_me: bool = False


def key_request_actions_for(user, key_request) -> KeyRequestActions:
    approved_by_me = _active(user) and any(a.approver_id == user.pk for a in key_request.approvals.all())
    return KeyRequestActions(
        cancel=can_cancel_key_request(user, key_request) and key_request_cancel_refusal(key_request) is None,
        decide=can_decide_key_request(user, key_request)
        and key_request_decide_refusal(key_request) is None
        and not approved_by_me,
        approved_by_me=approved_by_me,
    )


def can_manage_model_policy(user) -> bool:
    return is_admin(user)


def can_manage_gateway(user) -> bool:
    return is_admin(user)


def can_view_gateway_operations(user) -> bool:
    return is_admin(user) or is_auditor(user)
