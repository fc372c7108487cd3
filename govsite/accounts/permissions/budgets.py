"""Budgets, increases, the ledger and cost pages."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import F, Q

from govsite.accounts.models import Team
from govsite.accounts.permissions.roles import (
    EVERYTHING,
    NOTHING,
    _active,
    _approver_team_ids,
    is_admin,
    is_approver_of,
    is_auditor,
    is_finance,
    is_member_of,
    may_change_state,
    require,
    sees_whole_org,
    team_roles,
)

# --- budgets, ledger and cost ------------------------------------------------------------------------


def can_manage_budgets(user) -> bool:
    """Create and edit budgets, thresholds, approver limits and the block-at-100% policy."""
    return is_admin(user)


def can_view_team_costs(user, team: Team | int) -> bool:
    """A team's cost per person and per key: approvers of the team and the org roles."""
    return sees_whole_org(user) or is_approver_of(user, team)


def budget_scope(user) -> Q:
    """Org roles see every budget; approvers their teams' budgets; members their teams' team budgets
    and their own personal and key budgets."""
    if not _active(user):
        return NOTHING
    if sees_whole_org(user):
        return EVERYTHING
    member_of = list(team_roles(user))
    return (
        Q(team_id__in=_approver_team_ids(user))
        | Q(team_id__in=member_of, user__isnull=True, key__isnull=True)
        | Q(team_id__in=member_of, user=user)
        | Q(team_id__in=member_of, key__owner=user)
    )


def can_request_budget_increase(user, budget) -> bool:
    """Members of the team ask for their team's budget; a personal or key budget is asked for by its person."""
    if not (may_change_state(user) and is_member_of(user, budget.team_id)):
        return False
    if budget.user_id:
        return budget.user_id == user.pk
    if budget.key_id:
        return budget.key.owner_id == user.pk or is_approver_of(user, budget.team_id)
    return True


def can_request_key_cap_increase(user, key) -> bool:
    """One key's own cap: asked for by its owner, or by an approver of its team (for a service key's owner)."""
    if not (may_change_state(user) and is_member_of(user, key.team_id)):
        return False
    return key.owner_id == user.pk or is_approver_of(user, key.team_id)


def can_decide_budget_increases(user) -> bool:
    """Who has an increase queue at all: admins, finance and approvers of some team."""
    return may_change_state(user) and (is_admin(user) or is_finance(user) or bool(_approver_team_ids(user)))


def _increase_above_team_limit(increase) -> bool:
    return increase.amount > increase.budget.approver_limit


def _benefits_from_increase(user, increase) -> bool:
    """The person who asked, and the person whose money it is: a personal budget's person, a key budget's
    key owner. Neither decides it (an approver's own key budget goes to another approver, finance or an
    admin)."""
    budget = increase.budget
    return (
        user.pk in (increase.requested_by_id, budget.user_id)
        or (budget.key_id is not None and budget.key.owner_id == user.pk)
        or (increase.key_id is not None and increase.key.owner_id == user.pk)
    )


def can_decide_budget_increase(user, increase) -> bool:
    """Approvers decide within the budget's approver limit, finance and admins any amount; never one they
    asked for or benefit from."""
    if not may_change_state(user) or _benefits_from_increase(user, increase):
        return False
    if is_admin(user) or is_finance(user):
        return True
    return is_approver_of(user, increase.budget.team_id) and not _increase_above_team_limit(increase)


def require_can_decide_budget_increase(user, increase) -> None:
    if _active(user) and increase.requested_by_id == user.pk:
        raise PermissionDenied("Nobody decides their own request.")
    if _active(user) and _benefits_from_increase(user, increase):
        raise PermissionDenied("Nobody decides an increase of their own budget or key.")
    if (
        is_approver_of(user, increase.budget.team_id)
        and _increase_above_team_limit(increase)
        and not (is_admin(user) or is_finance(user))
    ):
        raise PermissionDenied("This increase is above the team's approver limit: finance decides it.")
    require(can_decide_budget_increase(user, increase), "Only the team's approvers, finance or an admin decide this.")


def budget_increase_scope(user) -> Q:
    """Org roles see every increase request; team members see their teams' requests."""
    if not _active(user):
        return NOTHING
    if sees_whole_org(user):
        return EVERYTHING
    return Q(budget__team_id__in=list(team_roles(user)))


def budget_increase_queue_scope(user) -> Q:
    """The increase queue: pending requests the user may decide, never one they asked for or benefit from."""
    if not may_change_state(user):
        return NOTHING
    pending = (
        Q(status="pending")
        & ~Q(requested_by=user)
        & ~Q(budget__user=user)
        & ~Q(budget__key__owner=user)
        & ~Q(key__owner=user)
    )
    if is_admin(user) or is_finance(user):
        return pending
    return pending & Q(budget__team_id__in=_approver_team_ids(user), amount__lte=F("budget__approver_limit"))


def can_view_reconciliation(user) -> bool:
    """Gateway spend against the ledger: admins and finance, and auditors read-only."""
    return is_admin(user) or is_finance(user) or is_auditor(user)


def can_manage_ingest(user) -> bool:
    """Ingest tokens for the gateway callback and the pull job's status."""
    return is_admin(user)


# --- FinOps: FOCUS exports and chargeback ----------------------------------------------------------------


def can_export_focus(user) -> bool:
    """FOCUS files of the ledger (every team's cost): admins, finance and auditors."""
    return sees_whole_org(user)


def can_manage_focus_schedules(user) -> bool:
    """Where scheduled FOCUS files go is a server setting: admins."""
    return is_admin(user)


def can_view_chargeback(user) -> bool:
    """The month-end chargeback: admins, finance and auditors read it."""
    return sees_whole_org(user)


def can_close_chargeback_month(user) -> bool:
    """Closing and reopening a month are finance's decision (and an admin's); auditors only read."""
    return is_admin(user) or is_finance(user)
