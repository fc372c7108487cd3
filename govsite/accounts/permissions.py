"""Who may see or decide what: the one place (docs/ARCHITECTURE.md, Roles).

Views, the API and selectors ask this module; nothing else encodes a role rule. Functions named
`can_*` answer a question, `require_*` raise PermissionDenied, `*_visible_to` return querysets of
this app's models already restricted to what the user may reach (404 outside scope), and `*_scope`
return the condition (a `Q`) that rows of another app's model must meet to be reached: the rule stays
here, and the owning app's selectors apply it (`VirtualKey.objects.filter(permissions.key_scope(user))`),
so this foundation module imports no app above it. `*_queue_scope` is what a person may decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet

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


# --- keys ----------------------------------------------------------------------------------------


def can_request_key(user, team: Team | int) -> bool:
    return may_change_state(user) and is_member_of(user, team)


def can_request_any_key(user) -> bool:
    """Whether the user may ask for a key at all (in some team): the request page and the API's create."""
    return any(can_request_key(user, team_id) for team_id in team_roles(user))


def has_key_approval_queue(user) -> bool:
    """Whether the user decides key requests for some team (approvers, admins): the queue page and the API's."""
    return teams_user_decides_for(user).exists()


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
    return Q(team__in=teams_user_decides_for(user), status="pending") & ~Q(requested_by=user) & ~Q(owner=user)


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


def can_reassign_key_owner(user, key) -> bool:
    return may_change_state(user) and (is_admin(user) or is_approver_of(user, key.team_id))


def require_can_reassign_key_owner(user, key) -> None:
    require(can_reassign_key_owner(user, key), "Only approvers or admins can reassign.")


def key_reassign_refusal(key) -> str | None:
    if key.kind != "service" or not key.is_live:
        return "Only live service keys change owner."
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


def key_request_actions_for(user, key_request) -> KeyRequestActions:
    return KeyRequestActions(
        cancel=can_cancel_key_request(user, key_request) and key_request_cancel_refusal(key_request) is None,
        decide=can_decide_key_request(user, key_request) and key_request_decide_refusal(key_request) is None,
    )


def can_manage_model_policy(user) -> bool:
    return is_admin(user)


def can_manage_gateway(user) -> bool:
    return is_admin(user)


def can_view_gateway_operations(user) -> bool:
    return is_admin(user) or is_auditor(user)


# --- budgets, ledger and cost ------------------------------------------------------------------------


def _approver_team_ids(user) -> list[int]:
    return [tid for tid, role in team_roles(user).items() if role == TeamRole.APPROVER]


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


def can_decide_budget_increases(user) -> bool:
    """Who has an increase queue at all: admins, finance and approvers of some team."""
    return may_change_state(user) and (is_admin(user) or is_finance(user) or bool(_approver_team_ids(user)))


def _increase_above_team_limit(increase) -> bool:
    return increase.amount > increase.budget.approver_limit


def can_decide_budget_increase(user, increase) -> bool:
    """Approvers decide within the budget's approver limit, finance and admins any amount; never their own."""
    if not may_change_state(user) or increase.requested_by_id == user.pk:
        return False
    if is_admin(user) or is_finance(user):
        return True
    return is_approver_of(user, increase.budget.team_id) and not _increase_above_team_limit(increase)


def require_can_decide_budget_increase(user, increase) -> None:
    if _active(user) and increase.requested_by_id == user.pk:
        raise PermissionDenied("Nobody decides their own request.")
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
    """The increase queue: pending requests the user may decide, never their own."""
    if not may_change_state(user):
        return NOTHING
    pending = Q(status="pending") & ~Q(requested_by=user)
    if is_admin(user) or is_finance(user):
        return pending
    return pending & Q(budget__team_id__in=_approver_team_ids(user), amount__lte=F("budget__approver_limit"))


def can_view_reconciliation(user) -> bool:
    """Gateway spend against the ledger: admins and finance, and auditors read-only."""
    return is_admin(user) or is_finance(user) or is_auditor(user)


def can_manage_ingest(user) -> bool:
    """Ingest tokens for the gateway callback and the pull job's status."""
    return is_admin(user)


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
