"""Permission rows for the FinOps pages: FOCUS exports and schedules, the chargeback (tests/permissions.py)."""

from __future__ import annotations

import itertools
from datetime import date

from django.utils import timezone

from audit.models import AuditEvent
from budgets.finops import exports
from budgets.models import ChargebackClose, FocusExport, FocusSchedule
from tests.permissions import ADMIN, AUDITOR, FINANCE, UrlCase, register

ORG = frozenset({ADMIN, FINANCE, AUDITOR})
CLOSERS = frozenset({ADMIN, FINANCE})
ADMIN_ONLY = frozenset({ADMIN})
MISSING = 987_654_321
_n = itertools.count(1)


def _month() -> date:
    """A different finished month for each call (2019-01, 2019-02, ...)."""
    n = next(_n)
    return date(2019 + n // 12, n % 12 + 1, 1)


def _done_export(world, team):
    export = FocusExport.objects.create(
        requested_by_label="test",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        format="csv",
        status=FocusExport.Status.DONE,
        file_name=f"focus-permission-test-{next(_n)}.csv",
    )
    exports.export_dir().mkdir(parents=True, exist_ok=True)
    (exports.export_dir() / export.file_name).write_text("BilledCost\n")
    return {"pk": export.pk}


def _failed_export(world, team):
    export = FocusExport.objects.create(
        requested_by_label="test",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        format="csv",
        status=FocusExport.Status.FAILED,
        attempts=6,
        error="OSError: disk full",
    )
    return {"pk": export.pk}


def _schedule(world, team):
    schedule = FocusSchedule.objects.create(
        name=f"nightly {next(_n)}", frequency="daily", target="directory", directory="/tmp/focus-permission-test"
    )
    return {"pk": schedule.pk}


def _closed_month(world, team):
    month = _month()
    ChargebackClose.objects.create(month=month, closed_by=world.users[FINANCE], closed_at=timezone.now())
    return {"month": f"{month:%Y-%m}"}


def _open_month(world, team):
    return {"month": f"{_month():%Y-%m}"}


def _retried(call) -> bool:
    return AuditEvent.objects.filter(action="focus_export.retried", target_id=str(call.pk)).exists()


def _month_of(call) -> date:
    year, month = call.kwargs["month"].split("-")
    return date(int(year), int(month), 1)


register(
    UrlCase("focus_exports", allowed=ORG),
    UrlCase(
        "focus_exports",
        method="post",
        allowed=ORG,
        data=lambda w, t: {"period_start": "2026-01-01", "period_end": "2026-01-31", "format": "csv"},
        # A read of the ledger, like an evidence export: auditors make them too (audited, but no governed state).
        writes=False,
        effect=lambda c: FocusExport.objects.filter(requested_by=c.user).exists(),
    ),
    UrlCase("focus_export_download", kwargs=_done_export, allowed=ORG, unreachable=lambda w: {"pk": MISSING}),
    UrlCase(
        "focus_export_retry",
        method="post",
        kwargs=_failed_export,
        allowed=ADMIN_ONLY,
        unreachable=lambda w: {"pk": MISSING},
        effect=_retried,
    ),
    UrlCase("focus_schedules", allowed=ADMIN_ONLY),
    UrlCase(
        "focus_schedules",
        method="post",
        allowed=ADMIN_ONLY,
        data=lambda w, t: {
            "name": f"monthly {next(_n)}",
            "frequency": "monthly",
            "format": "parquet",
            "target": "directory",
            "directory": "/tmp/focus-permission-test",
        },
        effect=lambda c: FocusSchedule.objects.filter(name=c.data["name"]).exists(),
    ),
    UrlCase(
        "focus_schedule_toggle",
        method="post",
        kwargs=_schedule,
        allowed=ADMIN_ONLY,
        unreachable=lambda w: {"pk": MISSING},
        effect=lambda c: not FocusSchedule.objects.get(pk=c.pk).is_active,
    ),
    UrlCase("chargeback", allowed=ORG),
    UrlCase(
        "chargeback_close",
        method="post",
        kwargs=_open_month,
        allowed=CLOSERS,
        data=lambda w, t: {"note": "month-end"},
        effect=lambda c: ChargebackClose.objects.filter(month=_month_of(c), reopened_at__isnull=True).exists(),
    ),
    UrlCase(
        "chargeback_reopen",
        method="post",
        kwargs=_closed_month,
        allowed=CLOSERS,
        data=lambda w, t: {"reason": "a late invoice"},
        effect=lambda c: ChargebackClose.objects.filter(month=_month_of(c), reopened_at__isnull=False).exists(),
    ),
)
