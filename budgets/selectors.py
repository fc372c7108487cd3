"""Reads for budget pages, alerts and reconciliation. Spend comes from the daily rollups; only the
reconciliation's per-key-and-day explanation reads the ledger (one grouped query per page)."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from budgets.models import (
    AlertDelivery,
    Budget,
    BudgetBlock,
    BudgetIncreaseRequest,
    CostDisagreement,
    CostSource,
    DailyRollup,
    IngestToken,
    Notice,
    PullState,
    SpendRecord,
)
from govsite.accounts import permissions
from keys.models import VirtualKey

ZERO = Decimal("0")
MONEY = Decimal("0.01")


# --- periods and spend -----------------------------------------------------------------------------


def budget_period(budget: Budget, today: date) -> tuple[date, date] | None:
    """The period `today` falls in (inclusive), or None for a custom period that is not running."""
    if budget.period == Budget.Period.CUSTOM:
        if budget.period_start <= today <= budget.period_end:
            return budget.period_start, budget.period_end
        return None
    last = calendar.monthrange(today.year, today.month)[1]
    return today.replace(day=1), today.replace(day=last)


def budget_rollups(budget: Budget) -> QuerySet[DailyRollup]:
    """The rollup rows that count against a budget (a team, a person in a team, or a key)."""
    if budget.key_id:
        return DailyRollup.objects.filter(key_id=budget.key_id)
    if budget.user_id:
        return DailyRollup.objects.filter(team_id=budget.team_id, user_id=budget.user_id)
    return DailyRollup.objects.filter(team_id=budget.team_id)


def budget_spend(budget: Budget, start: date, end: date) -> Decimal:
    total = budget_rollups(budget).filter(day__gte=start, day__lte=end).aggregate(total=Sum("cost"))["total"]
    return total or ZERO


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period_start: date | None
    period_end: date | None
    spend: Decimal
    amount: Decimal

    @property
    def percent(self) -> Decimal:
        if not self.amount:
            return ZERO
        return (self.spend / self.amount * 100).quantize(Decimal("0.1"))

    @property
    def running(self) -> bool:
        return self.period_start is not None

    @property
    def used(self) -> Decimal | None:
        """The share of the budget spent (1 = all of it); None when the period is not running or no amount."""
        if not self.running or not self.amount:
            return None
        return self.spend / self.amount

    def projected_spend(self, today: date) -> Decimal | None:
        """Spend at the period's end if the rest of it goes at the average daily rate so far."""
        if not self.running:
            return None
        total = (self.period_end - self.period_start).days + 1
        elapsed = min((today - self.period_start).days + 1, total)
        return self.spend / elapsed * total if elapsed > 0 else None

    def projected_date(self, now: datetime | None = None) -> date | None:
        """When the spend reaches 100% at the period's average daily rate so far (None: no spend yet)."""
        if self.period_start is None:
            return None
        now = now or timezone.now()
        if self.spend >= self.amount:
            return now.date()
        started = datetime.combine(self.period_start, datetime.min.time(), tzinfo=now.tzinfo)
        elapsed_days = max((now - started).total_seconds() / 86400, 1 / 24)
        rate = float(self.spend) / elapsed_days
        if rate <= 0:
            return None
        days_left = float(self.amount - self.spend) / rate
        return (now + timedelta(days=math.ceil(days_left * 24) / 24)).date()


def budget_status(budget: Budget, now: datetime | None = None) -> BudgetStatus:
    now = now or timezone.now()
    period = budget_period(budget, now.date())
    if period is None:
        return BudgetStatus(budget, None, None, ZERO, budget.amount)
    return BudgetStatus(budget, period[0], period[1], budget_spend(budget, *period), budget.amount)


# --- budget pages --------------------------------------------------------------------------------


BUDGET_SCOPES = {
    "team": Q(user__isnull=True, key__isnull=True),
    "person": Q(user__isnull=False),
    "key": Q(key__isnull=False),
}


def budget_list(*, user, team_slug: str = "", scope: str = "") -> QuerySet[Budget]:
    """The budgets the user may see; optionally one team's, or one kind (team, person or key budgets)."""
    budgets = Budget.objects.filter(permissions.budget_scope(user))
    if team_slug:
        budgets = budgets.filter(team__slug=team_slug)
    if scope:
        budgets = budgets.filter(BUDGET_SCOPES[scope])
    return budgets.select_related("team", "user", "key").order_by("team__name", "user__email", "key__alias")


def budget_statuses(budgets, now: datetime | None = None) -> list[BudgetStatus]:
    """The status of each budget (the list pages, the API's list): at most three rollup queries, one per
    kind of budget on the page (team, person, key), whatever the number of budgets. The same spend as
    `budget_status` reads budget by budget."""
    now = now or timezone.now()
    budgets = list(budgets)
    periods = {budget.pk: budget_period(budget, now.date()) for budget in budgets}
    running = [budget for budget in budgets if periods[budget.pk] is not None]
    daily: dict[tuple, Decimal] = {}
    if running:
        first = min(periods[budget.pk][0] for budget in running)
        last = max(periods[budget.pk][1] for budget in running)
        days = DailyRollup.objects.filter(day__gte=first, day__lte=last)
        key_ids = {b.key_id for b in running if b.key_id}
        user_ids = {b.user_id for b in running if b.user_id and not b.key_id}
        team_ids = {b.team_id for b in running if not (b.key_id or b.user_id)}
        queries = [
            ("key", ("key_id",), Q(key_id__in=key_ids), key_ids),
            ("person", ("team_id", "user_id"), Q(user_id__in=user_ids), user_ids),
            ("team", ("team_id",), Q(team_id__in=team_ids), team_ids),
        ]
        for kind, dims, scope, ids in queries:
            if not ids:
                continue  # no budget of this kind on the page: no query
            rows = days.filter(scope).values(*dims, "day").annotate(total=Sum("cost")).order_by()
            for row in rows:
                daily[(kind, *(row[dim] for dim in dims), row["day"])] = row["total"] or ZERO

    def spend(budget: Budget, start: date, end: date) -> Decimal:
        if budget.key_id:
            owner = ("key", budget.key_id)
        elif budget.user_id:
            owner = ("person", budget.team_id, budget.user_id)
        else:
            owner = ("team", budget.team_id)
        dates = (start + timedelta(days=n) for n in range((end - start).days + 1))
        return sum((daily.get((*owner, day), ZERO) for day in dates), ZERO)

    statuses = []
    for budget in budgets:
        period = periods[budget.pk]
        if period is None:
            statuses.append(BudgetStatus(budget, None, None, ZERO, budget.amount))
        else:
            statuses.append(BudgetStatus(budget, period[0], period[1], spend(budget, *period), budget.amount))
    return statuses


def budget_spend_by_person(budget: Budget, start: date, end: date) -> list[dict]:
    return list(
        budget_rollups(budget)
        .filter(day__gte=start, day__lte=end)
        .values("user_id", "user__email", "user__full_name")
        .annotate(cost=Sum("cost"), requests=Sum("requests"))
        .order_by("-cost")
    )


def budget_deliveries(budget: Budget, limit: int = 20) -> QuerySet[AlertDelivery]:
    return (
        AlertDelivery.objects.filter(budget_alert__budget=budget)
        .select_related("budget_alert")
        .order_by("-created_at")[:limit]
    )


def budget_open_block(budget: Budget) -> BudgetBlock | None:
    return budget.blocks.filter(lifted_at__isnull=True).first()


def increase_queue(*, user) -> QuerySet[BudgetIncreaseRequest]:
    return (
        BudgetIncreaseRequest.objects.filter(permissions.budget_increase_queue_scope(user))
        .select_related("budget__team", "budget__user", "budget__key", "key__owner", "key__request", "requested_by")
        .order_by("created_at")
    )


def increases_visible(*, user) -> QuerySet[BudgetIncreaseRequest]:
    return BudgetIncreaseRequest.objects.filter(permissions.budget_increase_scope(user)).select_related(
        "budget__team", "budget__user", "budget__key__owner", "key__owner", "key__request", "requested_by", "decided_by"
    )


def increase_list(*, user, status: str = "", team_slug: str = "") -> QuerySet[BudgetIncreaseRequest]:
    """The increase requests the user may see, newest first; optionally by status or team."""
    increases = increases_visible(user=user)
    if status:
        increases = increases.filter(status=status)
    if team_slug:
        increases = increases.filter(budget__team__slug=team_slug)
    return increases.order_by("-created_at", "-pk")


def budget_increases(budget: Budget) -> QuerySet[BudgetIncreaseRequest]:
    return budget.increase_requests.select_related("requested_by", "decided_by").order_by("-created_at")


# --- notices ------------------------------------------------------------------------------------------


def notice_list(*, user) -> QuerySet[Notice]:
    return Notice.objects.filter(user=user).order_by("-created_at")


def alert_notices_unread(*, user) -> QuerySet[Notice]:
    """The person's unread budget alerts and anomaly alerts (each is told to the people of its team who
    answer for it, by budgets.alerts), newest first: the inbox lists them until read."""
    return (
        unread_notices(user=user)
        .filter(Q(budget_alert__isnull=False) | Q(anomaly__isnull=False))
        .order_by("-created_at")
    )


def unread_notices(*, user) -> QuerySet[Notice]:
    """The person's notices not read yet (the navigation counts them; the home page shows the newest)."""
    return Notice.objects.filter(user=user, read_at__isnull=True)


def notices_unread(*, user, limit: int = 5) -> list[Notice]:
    """For the home page card: the newest unread notices."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(unread_notices(user=user).order_by("-created_at")[:limit])


# --- refusals, reconciliation, ingest status ------------------------------------------------------------

_RECON_SUMS = {
    "requests": Coalesce(Sum("requests"), 0),
    "gateway_spend": Coalesce(Sum("gateway_spend"), Value(ZERO)),
    "cost": Coalesce(Sum("cost"), Value(ZERO)),
    "computed": Coalesce(Sum("computed_count"), 0),
    "flat_rate": Coalesce(Sum("flat_rate_count"), 0),
    "unpriced": Coalesce(Sum("unpriced_count"), 0),
    "refusals_rate_limit": Coalesce(Sum("refusals_rate_limit"), 0),
    "refusals_budget": Coalesce(Sum("refusals_budget"), 0),
    "errors": Coalesce(Sum("errors"), 0),
}


def reconciliation(*, start: date, end: date, by: str = "key") -> list[dict]:
    """Per key (unmanaged keys by their hash) or per team: the gateway's spend against the ledger's cost."""
    rows = DailyRollup.objects.filter(day__gte=start, day__lte=end)
    if by == "team":
        grouped = rows.values("team_id", "team__name")
    else:
        grouped = rows.values("key_id", "key__alias", "token_hash", "team__name")
    result = list(grouped.annotate(**_RECON_SUMS).order_by("-cost"))
    for row in result:
        row["difference"] = row["cost"] - row["gateway_spend"]
    return result


def _explained(source: str) -> dict:
    """How many of a group's rows were priced this way, and how much of the difference they make."""
    rows = Q(cost_source=source)
    if source == CostSource.UNPRICED:  # no ledger cost: the gateway's whole figure is the difference
        amount = Coalesce(Sum(-F("gateway_spend"), filter=rows), Value(ZERO))
    else:
        amount = Coalesce(Sum(F("cost") - F("gateway_spend"), filter=rows), Value(ZERO))
    return {source: Count("pk", filter=rows), f"{source}_difference": amount}


RECONCILIATION_REASONS = [
    (CostSource.COMPUTED, "the gateway logged $0 for tokens (streamed without usage): the ledger computed it"),
    (CostSource.FLAT_RATE, "flat-rate model: the ledger books 0"),
    (CostSource.UNPRICED, "unpriced: the model is not in the price map, the ledger has no cost"),
    (CostSource.CACHE_HIT, "LiteLLM cache hit: the ledger books 0"),
]


def reconciliation_days(*, start: date, end: date, by: str = "key") -> QuerySet:
    """Per key (unmanaged keys by their hash) or team, and UTC day: the gateway's figure, the ledger's,
    their difference (ledger − gateway) and, per way of pricing, the rows and the part of the difference they explain.
    One grouped query over the ledger for the period (paged by the caller); `reconciliation_disagreements`
    adds the disagreements of a page in one more."""
    first = datetime.combine(start, time.min, tzinfo=UTC)
    last = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    dims = ("team_id", "team__name") if by == "team" else ("key_id", "token_hash", "key__alias", "team__name")
    sums = {}
    for source, _label in RECONCILIATION_REASONS:
        sums.update(_explained(source))
    return (
        SpendRecord.objects.filter(time__gte=first, time__lt=last)
        .annotate(day=TruncDate("time", tzinfo=UTC))
        .values("day", *dims)
        .annotate(
            requests=Count("pk"),
            gateway=Coalesce(Sum("gateway_spend"), Value(ZERO)),
            ledger=Coalesce(Sum("cost"), Value(ZERO)),
            difference=Coalesce(Sum("cost"), Value(ZERO)) - Coalesce(Sum("gateway_spend"), Value(ZERO)),
            **sums,
        )
        .order_by("-day", *dims)
    )


def reconciliation_disagreements(rows: list[dict], *, by: str = "key") -> None:
    """Add to each (key or team, day) row its disagreements by reason (`row["disagreements"]`: label,
    requests, the gateway's figure kept and litellm's): one query for the whole page."""
    for row in rows:
        row["disagreements"] = []
    if not rows:
        return
    days = [row["day"] for row in rows]
    first = datetime.combine(min(days), time.min, tzinfo=UTC)
    last = datetime.combine(max(days) + timedelta(days=1), time.min, tzinfo=UTC)
    if by == "team":
        # A disagreement names its key, not its team: the team is the key's.
        dim, found = "key__team_id", CostDisagreement.objects.filter(key__team_id__in={r["team_id"] for r in rows})
    else:
        dim, found = "key_id", CostDisagreement.objects.filter(key_id__in={r["key_id"] for r in rows if r["key_id"]})
    labels = dict(CostDisagreement.Reason.choices)
    grouped = (
        found.filter(time__gte=first, time__lt=last)
        .annotate(day=TruncDate("time", tzinfo=UTC))
        .values(dim, "day", "reason")
        .annotate(requests=Count("pk"), gateway=Sum("gateway_cost"), computed=Sum("computed_cost"))
        .order_by(dim, "day", "-requests", "reason")
    )
    by_group: dict[tuple, list[dict]] = {}
    for item in grouped:
        item["label"] = labels.get(item["reason"], item["reason"])
        by_group.setdefault((item[dim], item["day"]), []).append(item)
    owner = "team_id" if by == "team" else "key_id"
    for row in rows:
        row["disagreements"] = by_group.get((row[owner], row["day"]), [])


def reconciliation_totals(*, start: date, end: date) -> dict:
    return DailyRollup.objects.filter(day__gte=start, day__lte=end).aggregate(**_RECON_SUMS)


def refusals(*, start: date, end: date, by: str = "key") -> list[dict]:
    """429 rate-limit and budget refusals per key or per team, from the rollups."""
    dims = ("team_id",) if by == "team" else ("key_id", "token_hash")
    return list(
        DailyRollup.objects.filter(day__gte=start, day__lte=end)
        .values(*dims)
        .annotate(rate_limit=Sum("refusals_rate_limit"), budget=Sum("refusals_budget"))
        .filter(Q(rate_limit__gt=0) | Q(budget__gt=0))
        .order_by(*dims)
    )


def pull_state() -> PullState | None:
    return PullState.objects.filter(name="spend_logs").first()


def ingest_tokens() -> QuerySet[IngestToken]:
    return IngestToken.objects.select_related("created_by", "revoked_by").order_by("revoked_at", "name")


def deliveries_failing(*, limit: int = 20) -> QuerySet[AlertDelivery]:
    return (
        AlertDelivery.objects.filter(status__in=[AlertDelivery.Status.FAILED, AlertDelivery.Status.GAVE_UP])
        .select_related("team")
        .order_by("-updated_at")[:limit]
    )


def team_key_allocation(*, team_ids: list[int]) -> dict[int, dict]:
    """Per team: live keys and the monthly budget granted to them, this month's spend and the team's
    monthly budget (its status from `budget_statuses`); a fixed number of queries, whatever the teams."""
    result = {tid: {"live_keys": 0, "allocated": 0, "spend": 0, "budget": None} for tid in team_ids}
    rows = (
        VirtualKey.objects.filter(team_id__in=team_ids, status__in=VirtualKey.LIVE_STATUSES)
        .values("team_id")
        .annotate(live_keys=Count("pk"), allocated=Sum("max_budget"))
    )
    for row in rows:
        result[row["team_id"]].update(live_keys=row["live_keys"], allocated=row["allocated"])
    team_budgets = Budget.objects.filter(
        team_id__in=team_ids, user__isnull=True, key__isnull=True, is_active=True, period=Budget.Period.MONTHLY
    )
    for status in budget_statuses(team_budgets):
        result[status.budget.team_id].update(spend=status.spend, budget=status.budget.amount)
    unbudgeted = [tid for tid, team in result.items() if team["budget"] is None]
    if unbudgeted:
        month_start = timezone.now().date().replace(day=1)
        spend = (
            DailyRollup.objects.filter(team_id__in=unbudgeted, day__gte=month_start)
            .values("team_id")
            .annotate(total=Sum("cost"))
            .order_by()
        )
        for row in spend:
            result[row["team_id"]]["spend"] = row["total"] or 0
    return result


def key_usage(*, key_ids: list[int]) -> dict[int, dict]:
    """Per key: requests booked, first and last day used (from the daily rollups; one query). A rollout's page
    shows who has used their key."""
    rows = (
        DailyRollup.objects.filter(key_id__in=key_ids, requests__gt=0)
        .values("key_id")
        .annotate(requests=Sum("requests"), first_day=Min("day"), last_day=Max("day"))
    )
    return {row["key_id"]: row for row in rows}
