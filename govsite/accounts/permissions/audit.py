"""The auditor workspace: evidence, samples, leavers, access reviews."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from govsite.accounts.permissions.roles import (
    NOTHING,
    _active,
    _approver_team_ids,
    is_admin,
    is_approver_of,
    is_auditor,
    may_change_state,
    require,
)

# --- auditor workspace -------------------------------------------------------------------------------
# Evidence exports and samples are reads for an auditor (they change no access); access-review
# decisions are writes: team approvers and admins, never on their own key, never an auditor.


def can_export_evidence(user) -> bool:
    """Build and download evidence bundles (admins and auditors; members never)."""
    return is_admin(user) or is_auditor(user)


def can_draw_sample(user) -> bool:
    return is_admin(user) or is_auditor(user)


def can_view_leaver_report(user) -> bool:
    return is_admin(user) or is_auditor(user)


def can_view_access_reviews(user) -> bool:
    """Every campaign with its snapshot, decisions and sign-off: admins and auditors."""
    return is_admin(user) or is_auditor(user)


def can_open_access_review(user) -> bool:
    return may_change_state(user) and is_admin(user)


def can_sign_off_access_review(user) -> bool:
    return may_change_state(user) and is_admin(user)


def can_review_access(user) -> bool:
    """Who has an access-review queue at all: admins and the approvers of some team."""
    return may_change_state(user) and (is_admin(user) or bool(_approver_team_ids(user)))


def _is_own_key_item(user, item) -> bool:
    return user.pk in (item.owner_id, item.requested_by_id)


def can_decide_access_review_item(user, item) -> bool:
    """The team's approvers and admins decide; nobody reviews a key they own or asked for; once a
    campaign is escalated at its due date, only admins decide what is left."""
    if not may_change_state(user) or _is_own_key_item(user, item):
        return False
    if is_admin(user):
        return True
    return item.review.escalated_at is None and is_approver_of(user, item.team_id)


def require_can_decide_access_review_item(user, item) -> None:
    if _active(user) and _is_own_key_item(user, item):
        raise PermissionDenied("Nobody reviews their own key: another approver of the team or an admin decides it.")
    require(can_decide_access_review_item(user, item), "Only the team's approvers or an admin can review this key.")


def access_review_item_queue_scope(user) -> Q:
    """The review queue: undecided snapshot rows of open campaigns the user may decide, never their own key."""
    if not can_review_access(user):
        return NOTHING
    items = Q(review__status="open", decision__isnull=True) & ~(Q(owner=user) | Q(requested_by=user))
    if is_admin(user):
        return items
    return items & Q(team_id__in=_approver_team_ids(user), review__escalated_at__isnull=True)
