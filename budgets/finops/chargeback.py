"""The month-end chargeback: spend per cost centre and team, beside the month before and the change, with
unpriced and flat-rate usage apart. Closing a month freezes its figures (its lines); a ledger row booked for a
closed month afterwards changes nothing there and is shown in the next month as an adjustment. Closing and
reopening are finance's (or an admin's) decisions, audited; auditors read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from budgets.finops import selectors
from budgets.models import ChargebackClose, ChargebackLine
from govsite.accounts import permissions
from govsite.accounts.models import Team, User
from govsite.errors import InvalidTransition

ZERO = Decimal("0")
NANO = Decimal("0.000000001")
NO_TEAM = "No team (keys govsite does not manage)"


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month(month: date) -> date:
    return (month_start(month) - timedelta(days=1)).replace(day=1)


def next_month(month: date) -> date:
    return (month_start(month) + timedelta(days=32)).replace(day=1)


@dataclass
class Figures:
    cost: Decimal = ZERO
    requests: int = 0
    unpriced: int = 0
    flat_rate: int = 0

    def plus(self, other: Figures) -> Figures:
        return Figures(
            self.cost + other.cost,
            self.requests + other.requests,
            self.unpriced + other.unpriced,
            self.flat_rate + other.flat_rate,
        )

    def minus(self, other: Figures) -> Figures:
        return Figures(
            self.cost - other.cost,
            self.requests - other.requests,
            self.unpriced - other.unpriced,
            self.flat_rate - other.flat_rate,
        )

    @property
    def is_zero(self) -> bool:
        return not (self.cost or self.requests or self.unpriced or self.flat_rate)


@dataclass
class Line:
    team_id: int | None
    team_name: str
    cost_centre: str
    month: Figures = field(default_factory=Figures)
    previous: Figures = field(default_factory=Figures)
    adjustment: Figures = field(default_factory=Figures)

    @property
    def change(self) -> Decimal:
        return self.month.cost - self.previous.cost

    @property
    def change_percent(self) -> Decimal | None:
        if not self.previous.cost:
            return None
        return (self.change / self.previous.cost * 100).quantize(Decimal("0.1"))


@dataclass
class Report:
    month: date
    close: ChargebackClose | None
    previous_closed: bool
    lines: list[Line]
    centres: list[Line]
    total: Line

    @property
    def is_closed(self) -> bool:
        return self.close is not None


def _live(month: date) -> dict[int | None, Figures]:
    return {
        team_id: Figures(row["cost"].quantize(NANO), row["requests"], row["unpriced"], row["flat_rate"])
        for team_id, row in selectors.chargeback_live(month).items()
    }


def _frozen(close: ChargebackClose, kind: str) -> dict[int | None, Figures]:
    return {
        line.team_id: Figures(line.cost, line.requests, line.unpriced_requests, line.flat_rate_requests)
        for line in close.lines.all()
        if line.kind == kind
    }


def _adjustments(month: date) -> dict[int | None, Figures]:
    """Rows of the month before booked after that month was closed: what the ledger holds now, less what was
    frozen (the rollups only ever grow, so the difference is exactly the late rows)."""
    before = selectors.chargeback_close_of(previous_month(month))
    if before is None:
        return {}
    frozen = _frozen(before, ChargebackLine.Kind.MONTH)
    live = _live(before.month)
    found = {}
    for team_id in set(frozen) | set(live):
        difference = live.get(team_id, Figures()).minus(frozen.get(team_id, Figures()))
        if not difference.is_zero:
            found[team_id] = difference
    return found


def chargeback_report(*, month: date) -> Report:
    """The month's report: frozen figures when it is closed, the ledger's as they are when it is open."""
    month = month_start(month)
    close = selectors.chargeback_close_of(month)
    before_close = selectors.chargeback_close_of(previous_month(month))
    if close is not None:
        current = _frozen(close, ChargebackLine.Kind.MONTH)
        adjustments = _frozen(close, ChargebackLine.Kind.ADJUSTMENT)
        names = {line.team_id: (line.team_name, line.cost_centre) for line in close.lines.all()}
    else:
        current, adjustments, names = _live(month), _adjustments(month), {}
    previous = _frozen(before_close, ChargebackLine.Kind.MONTH) if before_close else _live(previous_month(month))
    team_ids = set(current) | set(previous) | set(adjustments)
    teams = {team.pk: team for team in Team.objects.filter(pk__in=[t for t in team_ids if t is not None])}
    lines = []
    for team_id in team_ids:
        if team_id in names:
            name, centre = names[team_id]
        elif team_id is None:
            name, centre = NO_TEAM, ""
        else:
            team = teams.get(team_id)
            name, centre = (team.name, team.cost_centre) if team else (f"team #{team_id}", "")
        lines.append(
            Line(
                team_id,
                name,
                centre,
                current.get(team_id, Figures()),
                previous.get(team_id, Figures()),
                adjustments.get(team_id, Figures()),
            )
        )
    lines.sort(key=lambda line: (line.cost_centre or "\uffff", line.team_name))
    centres: dict[str, Line] = {}
    total = Line(None, "Total", "")
    for line in lines:
        centre = centres.setdefault(line.cost_centre, Line(None, "", line.cost_centre))
        for summary in (centre, total):
            summary.month = summary.month.plus(line.month)
            summary.previous = summary.previous.plus(line.previous)
            summary.adjustment = summary.adjustment.plus(line.adjustment)
    return Report(month, close, before_close is not None, lines, list(centres.values()), total)


@transaction.atomic(durable=True)
def chargeback_month_close(*, actor: User, month: date, note: str = "") -> ChargebackClose:
    """Freeze a finished month's figures per team (and the adjustments to the month before, if that one was
    closed); audited."""
    permissions.require(permissions.can_close_chargeback_month(actor), "Only finance and admins close a month.")
    month = month_start(month)
    if month >= month_start(timezone.now().date()):
        raise ValidationError({"month": "Only a month that has ended can be closed."})
    if ChargebackClose.objects.select_for_update().filter(month=month, reopened_at__isnull=True).exists():
        raise InvalidTransition("closed", "close")
    adjustments = _adjustments(month)
    live = _live(month)
    try:
        with transaction.atomic():
            close = ChargebackClose.objects.create(month=month, closed_by=actor, note=note)
    except IntegrityError as exc:  # closed at the same moment by someone else
        raise InvalidTransition("closed", "close") from exc
    teams = {team.pk: team for team in Team.objects.filter(pk__in=[t for t in set(live) | set(adjustments) if t])}
    lines = []
    for kind, figures in ((ChargebackLine.Kind.MONTH, live), (ChargebackLine.Kind.ADJUSTMENT, adjustments)):
        for team_id, fig in figures.items():
            team = teams.get(team_id)
            lines.append(
                ChargebackLine(
                    close=close,
                    kind=kind,
                    team_id=team_id,
                    team_name=team.name if team else NO_TEAM,
                    cost_centre=team.cost_centre if team else "",
                    cost=fig.cost,
                    requests=fig.requests,
                    unpriced_requests=fig.unpriced,
                    flat_rate_requests=fig.flat_rate,
                )
            )
    ChargebackLine.objects.bulk_create(lines)
    total = sum((fig.cost for fig in live.values()), ZERO)
    audit.record(
        actor=actor,
        action="chargeback.month_closed",
        target=close,
        data={
            "month": f"{month:%Y-%m}",
            "cost": str(total),
            "teams": len(live),
            "adjustments": str(sum((fig.cost for fig in adjustments.values()), ZERO)),
            "note": note,
        },
    )
    return close


@transaction.atomic(durable=True)
def chargeback_month_reopen(*, actor: User, month: date, reason: str) -> ChargebackClose:
    """Unfreeze a month (its figures are the ledger's again until it is closed anew); audited with the reason.
    A month whose next month is closed stays closed: that month's adjustments were frozen against it."""
    permissions.require(permissions.can_close_chargeback_month(actor), "Only finance and admins reopen a month.")
    month = month_start(month)
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the month is reopened."})
    close = ChargebackClose.objects.select_for_update().filter(month=month, reopened_at__isnull=True).first()
    if close is None:
        raise InvalidTransition("open", "reopen")
    if ChargebackClose.objects.filter(month=next_month(month), reopened_at__isnull=True).exists():
        raise ValidationError({"month": f"Reopen {next_month(month):%B %Y} first: it is closed against this month."})
    close.reopened_at, close.reopened_by, close.reopen_reason = timezone.now(), actor, reason.strip()
    close.save(update_fields=["reopened_at", "reopened_by", "reopen_reason"])
    audit.record(
        actor=actor,
        action="chargeback.month_reopened",
        target=close,
        data={"month": f"{month:%Y-%m}", "reason": reason.strip(), "closed_at": close.closed_at.isoformat()},
    )
    return close


CSV_HEADER = (
    "month",
    "cost_centre",
    "team",
    "cost_usd",
    "requests",
    "unpriced_requests",
    "flat_rate_requests",
    "previous_month_cost_usd",
    "change_usd",
    "change_percent",
    "adjustment_previous_month_cost_usd",
    "adjustment_requests",
    "status",
)


def chargeback_csv_rows(report: Report):
    status = "closed" if report.is_closed else "open"
    for line in report.lines:
        yield (
            f"{report.month:%Y-%m}",
            line.cost_centre,
            line.team_name,
            line.month.cost,
            line.month.requests,
            line.month.unpriced,
            line.month.flat_rate,
            line.previous.cost,
            line.change,
            "" if line.change_percent is None else line.change_percent,
            line.adjustment.cost,
            line.adjustment.requests,
            status,
        )
