"""Permission rows for the ledger and budget pages (see tests/permissions.py for the four checks)."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

from budgets.models import Budget, BudgetIncreaseRequest, IngestToken, Notice, QuarantinedRow
from budgets.quarantine import hold
from tests.factories import BudgetIncreaseRequestFactory, TeamFactory, VirtualKeyFactory
from tests.permissions import ADMIN, ALL_ROLES, APPROVER_A, AUDITOR, FINANCE, MEMBER_A, MEMBER_B, UrlCase, register

ADMIN_ONLY = frozenset({ADMIN})
MEMBERS = frozenset({APPROVER_A, MEMBER_A, MEMBER_B})
DECIDERS = frozenset({ADMIN, FINANCE, APPROVER_A})
MISSING = 987_654_321
_n = itertools.count(1)


def _member_of(world, team):
    return world.users[MEMBER_B] if team == world.team_b else world.users[MEMBER_A]


def _budget(world, team) -> Budget:
    """The team's budget (one per team), written directly so no audit event is counted."""
    budget, _ = Budget.objects.get_or_create(
        team=team,
        user=None,
        key=None,
        defaults={"amount": Decimal("100"), "approver_limit": Decimal("50"), "created_by": world.users[ADMIN]},
    )
    return budget


def _budget_kwargs(world, team):
    return {"pk": _budget(world, team).pk}


def _increase_kwargs(world, team):
    return {"pk": BudgetIncreaseRequestFactory(budget=_budget(world, team), requested_by=_member_of(world, team)).pk}


def _missing(world):
    return {"pk": MISSING}


def _budget_form(world, team):
    # A new team each time: a team has one team budget.
    return {
        "team": TeamFactory().pk,
        "amount": "250",
        "period": "monthly",
        "thresholds": "50, 80, 100",
        "approver_limit": "25",
        "is_active": "on",
    }


def _key_kwargs(world, team):
    """A key of the team's plain member, the team holding a budget (whose rules decide a raise of its cap)."""
    _budget(world, team)
    owner = world.users[MEMBER_B] if team == world.team_b else world.users[MEMBER_A]
    return {"pk": VirtualKeyFactory(team=team, owner=owner).pk}


def _increase_form(world, team):
    return {"amount": "30", "permanent": "yes", "justification": "launch week traffic"}


def _token_kwargs(world, team):
    n = next(_n)
    token = IngestToken.objects.create(
        name=f"gateway {n}", token_hash=f"{n:064d}", prefix="gst_test", created_by=world.users[ADMIN]
    )
    return {"pk": token.pk}


def _quarantined_kwargs(world, team):
    # A row the database cannot store (a NUL character), kept aside; a retry as kept fails, so the
    # permission table retries it corrected.
    row = {"id": f"chatcmpl-perm-{next(_n)}", "startTime": 1795435835.0, "model": "gpt-4o", "user_agent": "a\x00b"}
    hold([(row, "user_agent", "contains a NUL character")], "pull")
    return {"pk": QuarantinedRow.objects.latest("pk").pk}


def _corrected(world, team):
    return {"raw": json.dumps({"id": f"chatcmpl-perm-fixed-{next(_n)}", "startTime": 1795435835.0, "model": "gpt-4o"})}


def _notice_form(world, team):
    return {}


register(
    UrlCase("budget_list"),
    UrlCase("budget_create", allowed=ADMIN_ONLY),
    UrlCase(
        "budget_create",
        method="post",
        data=_budget_form,
        allowed=ADMIN_ONLY,
        effect=lambda c: Budget.objects.filter(team_id=c.data["team"]).exists(),
    ),
    UrlCase("budget_detail", kwargs=_budget_kwargs, scoped=True, unreachable=_missing),
    UrlCase("budget_edit", kwargs=_budget_kwargs, allowed=ADMIN_ONLY, unreachable=_missing),
    UrlCase(
        "budget_edit",
        method="post",
        kwargs=_budget_kwargs,
        data=_budget_form,
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: Budget.objects.get(pk=c.pk).amount == Decimal(c.data["amount"]),
    ),
    UrlCase("budget_increase_request", kwargs=_budget_kwargs, scoped=True, allowed=MEMBERS, unreachable=_missing),
    UrlCase(
        "budget_increase_request",
        method="post",
        kwargs=_budget_kwargs,
        scoped=True,
        allowed=MEMBERS,
        data=_increase_form,
        unreachable=_missing,
        effect=lambda c: BudgetIncreaseRequest.objects.filter(budget_id=c.pk, requested_by=c.user).exists(),
    ),
    UrlCase("key_cap_increase", kwargs=_key_kwargs, scoped=True, allowed=MEMBERS, unreachable=_missing),
    UrlCase(
        "key_cap_increase",
        method="post",
        kwargs=_key_kwargs,
        scoped=True,
        allowed=MEMBERS,
        data=_increase_form,
        unreachable=_missing,
        effect=lambda c: BudgetIncreaseRequest.objects.filter(key_id=c.pk, requested_by=c.user).exists(),
    ),
    UrlCase("budget_increase_queue", allowed=DECIDERS),
    UrlCase("budget_increase_detail", kwargs=_increase_kwargs, scoped=True, unreachable=_missing),
    UrlCase(
        "budget_increase_decide",
        method="post",
        kwargs=_increase_kwargs,
        scoped=True,
        allowed=DECIDERS,
        data=lambda w, t: {"decision": "approve", "note": "ok"},
        unreachable=_missing,
        effect=lambda c: BudgetIncreaseRequest.objects.get(pk=c.pk).status == BudgetIncreaseRequest.Status.APPROVED,
    ),
    UrlCase("reconciliation", allowed=frozenset({ADMIN, FINANCE, AUDITOR})),
    UrlCase("ingest_settings", allowed=ADMIN_ONLY),
    UrlCase(
        "ingest_settings",
        method="post",
        data=lambda w, t: {"name": f"gateway {next(_n)}"},
        allowed=ADMIN_ONLY,
        ok_status=200,
        effect=lambda c: IngestToken.objects.filter(name=c.data["name"]).exists(),
    ),
    UrlCase(
        "ingest_token_revoke",
        method="post",
        kwargs=_token_kwargs,
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: IngestToken.objects.get(pk=c.pk).revoked_at is not None,
    ),
    UrlCase("quarantine_list", allowed=frozenset({ADMIN, FINANCE, AUDITOR})),
    UrlCase(
        "quarantine_detail",
        kwargs=_quarantined_kwargs,
        allowed=frozenset({ADMIN, FINANCE, AUDITOR}),
        unreachable=_missing,
    ),
    UrlCase(
        "quarantine_retry",
        method="post",
        kwargs=_quarantined_kwargs,
        data=_corrected,
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: QuarantinedRow.objects.get(pk=c.pk).status == QuarantinedRow.Status.BOOKED,
    ),
    UrlCase(
        "quarantine_discard",
        method="post",
        kwargs=_quarantined_kwargs,
        data=lambda w, t: {"note": "a test row"},
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: QuarantinedRow.objects.get(pk=c.pk).status == QuarantinedRow.Status.DISCARDED,
    ),
    UrlCase("notice_list"),
    UrlCase("notices_read", method="post", data=_notice_form, writes=False),
)

__all__ = ["ALL_ROLES", "IngestToken", "Notice"]
