"""The API's permission table: one row per endpoint and method, checked by tests/api/test_api_permissions.py.

Every operation under /api/v1/ needs a row here (the suite walks the URL patterns and fails on a missing
one). For every row, called with a personal API token of each role:

* anonymous              → 401 `not_authenticated`;
* a role not allowed     → 403 `permission_denied`, nothing audited;
* another team's object  → 404 `not_found` (rows marked `scoped`, and `unreachable` objects), nothing audited;
* an allowed role        → `ok` (and a write writes an audit event and makes its `effect` true).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from audit.models import EvidenceExport
from budgets.models import Budget, BudgetIncreaseRequest, ChargebackClose, FocusExport
from govsite.accounts.models import Team
from keys.models import KeyRequest, VirtualKey
from tests.audit.url_cases import _export
from tests.budgets.finops.url_cases import _closed_month, _done_export, _open_month
from tests.budgets.url_cases import _budget, _increase_kwargs
from tests.factories import TeamFactory
from tests.keys.conftest import classification
from tests.keys.url_cases import _key, _policy, _request
from tests.permissions import (
    ADMIN,
    ALL_ROLES,
    APPROVER_A,
    AUDITOR,
    FINANCE,
    MEMBER_A,
    MEMBER_B,
    ROLES,
    TEAM_OF_ROLE,
    Effect,
    World,
)

MEMBERS = frozenset({APPROVER_A, MEMBER_A, MEMBER_B})
OWNERS = frozenset({MEMBER_A, MEMBER_B})
KEY_MANAGERS = frozenset({ADMIN, APPROVER_A, MEMBER_A, MEMBER_B})
KEY_DECIDERS = frozenset({ADMIN, APPROVER_A})
BUDGET_DECIDERS = frozenset({ADMIN, FINANCE, APPROVER_A})
ADMIN_ONLY = frozenset({ADMIN})
AUDIT_READERS = frozenset({ADMIN, AUDITOR})
DASHBOARD_READERS = frozenset({ADMIN, FINANCE, AUDITOR, APPROVER_A})
ORG_READERS = frozenset({ADMIN, FINANCE, AUDITOR})
CLOSERS = frozenset({ADMIN, FINANCE})
MISSING = 987_654_321
_n = itertools.count(1)

Factory = Callable[[World, Team], dict[str, Any]]


@dataclass(frozen=True)
class ApiCase:
    name: str
    method: str = "get"
    # URL kwargs for an object of the given team (None: the URL takes none).
    kwargs: Factory | None = None
    # JSON body for the given team.
    body: Factory | None = None
    # Query parameters for the given team (a `team` filter makes a row `scoped` like an object would).
    query: Factory | None = None
    allowed: frozenset[str] = ALL_ROLES
    scoped: bool = False
    unreachable: Callable[[World], dict[str, Any]] | None = None
    ok: int = 200
    content_type: str = "application/json"
    # What an allowed call makes true (false before it); every row that writes names one.
    effect: Effect | None = None

    # Tells apart two rows of one operation (e.g. with and without a filter).
    id_suffix: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}[{self.method.upper()}{'/' + self.id_suffix if self.id_suffix else ''}]"

    @property
    def writes(self) -> bool:
        return self.method != "get"

    @property
    def denied(self) -> tuple[str, ...]:
        return tuple(role for role in ROLES if role not in self.allowed)

    @property
    def checks_other_team(self) -> bool:
        return (self.scoped and any(role in TEAM_OF_ROLE for role in self.allowed)) or self.unreachable is not None

    def url(self, world: World, team: Team) -> str:
        url = reverse(self.name, kwargs=self.kwargs(world, team) if self.kwargs else None)
        return f"{url}?{urlencode(self.query(world, team))}" if self.query else url


def _month_of(call):
    year, month = call.kwargs["month"].split("-")
    return date(int(year), int(month), 1)


def _missing(world):
    return {"pk": MISSING}


def _pk(factory):
    return lambda world, team: {"pk": factory(world, team).pk}


def _key_request_body(world, team):
    classification("internal")
    return {
        "team": team.slug,
        "purpose": "Codex for the migration",
        "data_classification": "internal",
        "models": [_policy().name],
        "monthly_budget": "25",
        "expiry_days": 30,
    }


def _budget_body(world, team):
    # A new team each time: a team has one team budget.
    return {"team": TeamFactory().slug, "amount": "250", "thresholds": [50, 100], "approver_limit": "25"}


def _team_filter(world, team):
    return {"team": team.slug}


def _export_body(world, team):
    today = timezone.now().date().isoformat()
    return {"period_start": today, "period_end": today, "sample_size": 3}


def _budget_kwargs(world, team):
    return {"pk": _budget(world, team).pk}


CASES: tuple[ApiCase, ...] = (
    ApiCase("api_me"),
    # key requests
    ApiCase("api_key_requests"),
    ApiCase(
        "api_key_requests",
        "post",
        body=_key_request_body,
        allowed=MEMBERS,
        ok=201,
        effect=lambda c: KeyRequest.objects.filter(
            requested_by=c.user, team=c.team, purpose=c.data["purpose"]
        ).exists(),
    ),
    ApiCase("api_key_request_detail", kwargs=_pk(_request), scoped=True, unreachable=_missing),
    ApiCase(
        "api_key_request_cancel",
        "post",
        kwargs=_pk(_request),
        allowed=OWNERS,
        scoped=True,
        unreachable=_missing,
        effect=lambda c: KeyRequest.objects.get(pk=c.pk).status == KeyRequest.Status.CANCELLED,
    ),
    # approval queue
    ApiCase("api_approval_queue", allowed=KEY_DECIDERS),
    ApiCase(
        "api_approval_decide",
        "post",
        kwargs=_pk(_request),
        body=lambda w, t: {"decision": "approve", "note": "fine"},
        allowed=KEY_DECIDERS,
        scoped=True,
        unreachable=_missing,
        effect=lambda c: KeyRequest.objects.get(pk=c.pk).status == KeyRequest.Status.APPROVED,
    ),
    # keys
    ApiCase("api_keys"),
    ApiCase("api_key_detail", kwargs=_pk(_key), scoped=True, unreachable=_missing),
    ApiCase(
        "api_key_reveal",
        "post",
        kwargs=_pk(_key),
        allowed=OWNERS,
        scoped=True,
        unreachable=_missing,
        effect=lambda c: VirtualKey.objects.get(pk=c.pk).revealed_at is not None,
    ),
    ApiCase(
        "api_key_rotate",
        "post",
        kwargs=_pk(_key),
        allowed=KEY_MANAGERS,
        scoped=True,
        unreachable=_missing,
        ok=201,
        effect=lambda c: VirtualKey.objects.filter(rotated_from_id=c.pk).exists(),
    ),
    ApiCase(
        "api_key_revoke",
        "post",
        kwargs=_pk(_key),
        body=lambda w, t: {"reason": "no longer needed"},
        allowed=KEY_MANAGERS,
        scoped=True,
        unreachable=_missing,
        effect=lambda c: VirtualKey.objects.get(pk=c.pk).status == VirtualKey.Status.REVOKING,
    ),
    # budgets
    ApiCase("api_budgets"),
    ApiCase(
        "api_budgets",
        "post",
        body=_budget_body,
        allowed=ADMIN_ONLY,
        ok=201,
        effect=lambda c: Budget.objects.filter(team__slug=c.data["team"]).exists(),
    ),
    ApiCase("api_budget_detail", kwargs=_budget_kwargs, scoped=True, unreachable=_missing),
    ApiCase(
        "api_budget_detail",
        "patch",
        kwargs=_budget_kwargs,
        body=lambda w, t: {"amount": str(Decimal(150 + next(_n)))},
        allowed=ADMIN_ONLY,
        unreachable=_missing,
        effect=lambda c: Budget.objects.get(pk=c.pk).amount == Decimal(c.data["amount"]),
    ),
    ApiCase(
        "api_budget_increase_create",
        "post",
        kwargs=_budget_kwargs,
        body=lambda w, t: {"amount": "30", "justification": "launch week traffic"},
        allowed=MEMBERS,
        scoped=True,
        unreachable=_missing,
        ok=201,
        effect=lambda c: BudgetIncreaseRequest.objects.filter(budget_id=c.pk, requested_by=c.user).exists(),
    ),
    ApiCase("api_budget_increases"),
    ApiCase("api_budget_increase_queue", allowed=BUDGET_DECIDERS),
    ApiCase("api_budget_increase_detail", kwargs=_increase_kwargs, scoped=True, unreachable=_missing),
    ApiCase(
        "api_budget_increase_decide",
        "post",
        kwargs=_increase_kwargs,
        body=lambda w, t: {"decision": "approve", "note": "ok"},
        allowed=BUDGET_DECIDERS,
        scoped=True,
        unreachable=_missing,
        effect=lambda c: BudgetIncreaseRequest.objects.get(pk=c.pk).status == BudgetIncreaseRequest.Status.APPROVED,
    ),
    # spend and adoption (the dashboards)
    ApiCase("api_spend_summary", allowed=DASHBOARD_READERS),
    ApiCase("api_spend_summary", query=_team_filter, allowed=DASHBOARD_READERS, scoped=True, id_suffix="team"),
    ApiCase("api_adoption_summary", allowed=DASHBOARD_READERS),
    ApiCase("api_adoption_summary", query=_team_filter, allowed=DASHBOARD_READERS, scoped=True, id_suffix="team"),
    # audit log and evidence
    ApiCase("api_audit_events", allowed=AUDIT_READERS),
    ApiCase("api_evidence_exports", allowed=AUDIT_READERS),
    ApiCase(
        "api_evidence_exports",
        "post",
        body=_export_body,
        allowed=AUDIT_READERS,
        ok=202,
        effect=lambda c: EvidenceExport.objects.filter(requested_by=c.user).exists(),
    ),
    ApiCase("api_evidence_export_detail", kwargs=_export, allowed=AUDIT_READERS, unreachable=_missing),
    ApiCase(
        "api_evidence_export_download",
        kwargs=_export,
        allowed=AUDIT_READERS,
        unreachable=_missing,
        content_type="application/zip",
    ),
    # FinOps
    ApiCase("api_focus_exports", allowed=ORG_READERS),
    ApiCase(
        "api_focus_exports",
        "post",
        body=lambda w, t: {"period_start": "2026-01-01", "period_end": "2026-01-31", "format": "csv"},
        allowed=ORG_READERS,
        ok=202,
        effect=lambda c: FocusExport.objects.filter(requested_by=c.user).exists(),
    ),
    ApiCase("api_focus_export_detail", kwargs=_done_export, allowed=ORG_READERS, unreachable=_missing),
    ApiCase(
        "api_focus_export_download",
        kwargs=_done_export,
        allowed=ORG_READERS,
        unreachable=_missing,
        content_type="application/octet-stream",
    ),
    ApiCase("api_chargeback", kwargs=lambda w, t: {"month": "2026-02"}, allowed=ORG_READERS),
    ApiCase(
        "api_chargeback_close",
        "post",
        kwargs=_open_month,
        body=lambda w, t: {"note": "month-end"},
        allowed=CLOSERS,
        effect=lambda c: ChargebackClose.objects.filter(month=_month_of(c), reopened_at__isnull=True).exists(),
    ),
    ApiCase(
        "api_chargeback_reopen",
        "post",
        kwargs=_closed_month,
        body=lambda w, t: {"reason": "a late invoice"},
        allowed=CLOSERS,
        effect=lambda c: ChargebackClose.objects.filter(month=_month_of(c), reopened_at__isnull=False).exists(),
    ),
)
