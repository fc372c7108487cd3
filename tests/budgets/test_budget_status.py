"""One budget-status selector: each budget's spend this period (monthly or custom) equals the ledger's,
read for a whole page in a fixed number of queries; the share used and the projected end-of-period spend
come from the same status on the budget pages, the API and the dashboards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Q, Sum
from django.urls import reverse

from budgets import selectors
from budgets.models import Budget, SpendRecord
from govsite.accounts.models import TeamRole
from tests.adoption.builders import PROVISIONED, book, spend
from tests.api.helpers import token_client
from tests.factories import VirtualKeyFactory, make_user
from tests.permissions import ADMIN, MEMBER_A

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def _at(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)


def _ledger(budget: Budget, start: date, end: date) -> Decimal:
    """The budget's spend straight from the ledger rows (not the rollups the selector reads)."""
    if budget.key_id:
        scope = Q(key_id=budget.key_id)
    elif budget.user_id:
        scope = Q(team_id=budget.team_id, user_id=budget.user_id)
    else:
        scope = Q(team_id=budget.team_id)
    rows = SpendRecord.objects.filter(scope, time__date__gte=start, time__date__lte=end)
    return rows.aggregate(total=Sum("cost"))["total"] or Decimal("0")


def test_every_kind_of_budget_reads_the_ledgers_spend_for_its_own_period(world):
    admin, member = world.users[ADMIN], world.users[MEMBER_A]
    other = make_user(teams={world.team_a: TeamRole.MEMBER})
    key, others_key = (
        VirtualKeyFactory(team=world.team_a, owner=member, provisioned_at=PROVISIONED),
        VirtualKeyFactory(team=world.team_a, owner=other, provisioned_at=PROVISIONED),
    )
    key_b = VirtualKeyFactory(team=world.team_b, owner=world.users["member_b"], provisioned_at=PROVISIONED)
    days = [date(2026, 2, 27), date(2026, 3, 1), date(2026, 3, 10), date(2026, 3, 15)]
    book([spend(k, _at(day)) for day in days for k in (key, others_key, key_b)] + [spend(key, _at(date(2026, 3, 10)))])
    budgets = [
        Budget.objects.create(team=world.team_a, amount=Decimal("1"), created_by=admin),
        Budget.objects.create(team=world.team_a, user=member, amount=Decimal("1"), created_by=admin),
        Budget.objects.create(team=world.team_a, key=key, amount=Decimal("1"), created_by=admin),
        Budget.objects.create(
            team=world.team_b,
            amount=Decimal("1"),
            period=Budget.Period.CUSTOM,
            period_start=date(2026, 2, 25),
            period_end=date(2026, 3, 20),
            created_by=admin,
        ),
        Budget.objects.create(  # over: not running, no spend counted
            team=world.team_a,
            key=others_key,
            amount=Decimal("1"),
            period=Budget.Period.CUSTOM,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31),
            created_by=admin,
        ),
    ]
    statuses = selectors.budget_statuses(Budget.objects.filter(pk__in=[b.pk for b in budgets]).order_by("pk"), NOW)
    periods = [
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 2, 25), date(2026, 3, 20)),
    ]
    for status, (start, end) in zip(statuses, periods, strict=False):
        assert (status.period_start, status.period_end) == (start, end)
        assert status.spend == _ledger(status.budget, start, end) > 0
        assert status.spend == selectors.budget_status(status.budget, NOW).spend  # one budget at a time: the same
        assert status.used == status.spend / status.budget.amount
    team, person, of_key, custom, over = statuses
    assert person.spend == of_key.spend < team.spend  # the other person's spend counts for the team only
    assert custom.spend == _ledger(custom.budget, date(2026, 2, 25), date(2026, 3, 15))  # February's days count
    assert not over.running and over.spend == 0 and over.used is None and over.projected_spend(NOW.date()) is None
    # Half the days of March gone (15 of 31): the rest of the month at the same daily rate.
    assert team.projected_spend(NOW.date()) == team.spend / 15 * 31


def _grow(world, n: int):
    admin = world.users[ADMIN]
    rows = []
    for _ in range(n):
        person = make_user(teams={world.team_a: TeamRole.MEMBER})
        key = VirtualKeyFactory(team=world.team_a, owner=person, provisioned_at=PROVISIONED)
        Budget.objects.create(team=world.team_a, user=person, amount=Decimal("5"), created_by=admin)
        Budget.objects.create(team=world.team_a, key=key, amount=Decimal("5"), created_by=admin)
        Budget.objects.create(
            team=world.team_a,
            key=VirtualKeyFactory(team=world.team_a, owner=person, provisioned_at=PROVISIONED),
            amount=Decimal("5"),
            period=Budget.Period.CUSTOM,
            period_start=date.today() - timedelta(days=3),  # noqa: DTZ011 - the pages read the server's UTC day
            period_end=date.today() + timedelta(days=3),  # noqa: DTZ011
            created_by=admin,
        )
        rows.append(spend(key, datetime.now(UTC) - timedelta(hours=1)))
    book(rows)


def _list_queries(client, url, django_assert_max_num_queries, bound):
    client.get(url)  # warm the session, as on a real visit
    with django_assert_max_num_queries(bound):
        assert client.get(url).status_code == 200


# The session, the user's roles, the page of budgets, its count, and at most three rollup queries (one per
# kind of budget): the same at both sizes.
BOUNDS = {"budget_list": 10, "api_budgets": 6}


@pytest.mark.parametrize("url_name", ["budget_list", "api_budgets"])
def test_the_budget_list_runs_the_same_number_of_queries_for_few_and_many_budgets(
    world, django_assert_max_num_queries, url_name
):
    client = token_client(world.users[ADMIN], scope="read") if url_name == "api_budgets" else world.client(ADMIN)
    url = reverse(url_name)
    _grow(world, 1)
    bound = BOUNDS[url_name]
    _list_queries(client, url, django_assert_max_num_queries, bound)
    _grow(world, 12)
    _list_queries(client, url, django_assert_max_num_queries, bound)
