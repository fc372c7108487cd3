"""Spend where keys are decided: the key lists show each key's spend this month (the ledger's sums), share of its
cap used, requests in the last 7 days and last request; they sort, filter, page and download as CSV at a fixed
number of queries; a key's page shows its usage and history."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Max, Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from budgets.ingest import ingest_spend_rows
from budgets.models import SpendRecord
from govsite.accounts.models import TeamRole
from tests.factories import SpendLogRowFactory, VirtualKeyFactory, make_user

pytestmark = pytest.mark.django_db


def _book(key, *, spends, when):
    ingest_spend_rows([SpendLogRowFactory(api_key=key.token_hash, spend=s, start_time=when) for s in spends], "pull")


def _this_month_start() -> datetime:
    now = timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_key_list_spend_equals_the_ledger_sums_for_the_same_keys_and_month(team_a, member_a_user, member_a_client):
    now = timezone.now()
    busy = VirtualKeyFactory(team=team_a, owner=member_a_user, max_budget=Decimal("40"))
    quiet = VirtualKeyFactory(team=team_a, owner=member_a_user)
    _book(busy, spends=[0.5, 1.25, 2.0], when=max(now - timedelta(minutes=5), _this_month_start()))
    _book(busy, spends=[7.0], when=_this_month_start() - timedelta(days=40))  # an earlier month: not this period
    _book(quiet, spends=[0.001], when=now)

    page = member_a_client.get(reverse("key_list"))
    rows = {k.pk: k for k in page.context["page"].object_list}
    start = _this_month_start()
    for key in (busy, quiet):
        ledger = SpendRecord.objects.filter(key=key, time__gte=start).aggregate(total=Sum("cost"))["total"]
        assert rows[key.pk].spend_period == ledger
        assert rows[key.pk].budget_used == ledger / key.max_budget
        assert rows[key.pk].last_request_at == SpendRecord.objects.filter(key=key).aggregate(t=Max("time"))["t"]
    assert rows[busy.pk].spend_period == Decimal("3.75")
    assert rows[busy.pk].requests_recent == 3  # the request 40 days ago is not of the last 7 days
    assert "$3.75" in page.content.decode() and "9.4%" in page.content.decode()  # 3.75 of 40


def test_the_team_list_sorts_by_spend_and_filters_by_status(team_a, approver_a_user, member_a_user, approver_a_client):
    cheap = VirtualKeyFactory(team=team_a, owner=member_a_user)
    dear = VirtualKeyFactory(team=team_a, owner=member_a_user)
    revoked = VirtualKeyFactory(team=team_a, owner=member_a_user, status="revoked")
    _book(cheap, spends=[0.1], when=timezone.now())
    _book(dear, spends=[3.0], when=timezone.now())
    by_spend = approver_a_client.get(reverse("key_list"), {"scope": "team", "sort": "-spend"})
    assert [k.pk for k in by_spend.context["page"].object_list] == [dear.pk, cheap.pk, revoked.pk]
    active = approver_a_client.get(reverse("key_list"), {"scope": "team", "status": "active", "sort": "spend"})
    assert [k.pk for k in active.context["page"].object_list] == [cheap.pk, dear.pk]
    assert 'aria-sort="ascending"' in active.content.decode()


def test_a_member_has_no_team_or_all_list(member_a_user, member_a_client, team_a, approver_a_user):
    other = VirtualKeyFactory(team=team_a, owner=approver_a_user)
    page = member_a_client.get(reverse("key_list"), {"scope": "all"})
    assert page.context["scope"] == "mine" and page.context["scopes"] == ["mine"]
    assert other.pk not in [k.pk for k in page.context["page"].object_list]


def test_the_csv_holds_every_key_of_the_filtered_list(team_a, team_b, member_a_user, admin_client):
    a = VirtualKeyFactory(team=team_a, owner=member_a_user, alias="=cmd|evil")
    VirtualKeyFactory(team=team_b, owner=make_user(teams={team_b: TeamRole.MEMBER}))
    _book(a, spends=[1.5], when=timezone.now())
    response = admin_client.get(reverse("key_list"), {"scope": "all", "team": team_a.slug, "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["alias"] for r in rows] == ["'=cmd|evil"]
    assert rows[0]["spend_this_month"] == "1.50" and rows[0]["requests_last_7_days"] == "1"


@pytest.mark.parametrize("scope,role", [("mine", "member_a"), ("team", "approver_a"), ("all", "admin")])
def test_key_lists_read_a_fixed_number_of_queries(scope, role, world, team_a, member_a_user):
    client = world.client(role)
    owner = member_a_user if role != "member_a" else world.users["member_a"]
    counts = {}
    made = 0
    for size in (3, 15):
        for _ in range(size - made):
            key = VirtualKeyFactory(team=team_a, owner=owner)
            _book(key, spends=[0.01, 0.02], when=timezone.now() - timedelta(hours=1))
        made = size
        client.get(reverse("key_list"), {"scope": scope})  # the session warmed
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("key_list"), {"scope": scope, "sort": "-spend"})
        assert len(response.context["page"].object_list) == size
        counts[size] = len(captured)
    assert counts[3] == counts[15], counts


def test_a_keys_page_shows_its_usage_and_history(team_a, member_a_user, member_a_client):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    day = datetime.now(UTC) - timedelta(days=1)
    _book(key, spends=[0.25, 0.75], when=day)
    ingest_spend_rows(
        [SpendLogRowFactory(api_key=key.token_hash, spend=0.0, start_time=day, status="failure", model_group="gpt-4o")],
        "pull",
    )
    page = member_a_client.get(reverse("key_detail", args=[key.pk]))
    usage = page.context["usage"]
    ledger = SpendRecord.objects.filter(key=key).aggregate(total=Sum("cost"))["total"]
    assert usage.totals["requests"] == 3 and usage.totals["cost"] == ledger >= Decimal("1")
    assert usage.totals["errors"] == 1
    assert [m["model"] for m in usage.models] == ["gpt-4o"]
    body = page.content.decode()
    assert key.display_name in body and "Usage, last 30 days" in body and "History" in body


def test_a_key_is_named_from_its_request(team_a, member_a_user):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user, request__purpose="Summarise support tickets")
    assert key.display_name == f"Summarise support tickets · {member_a_user.display_name}"
