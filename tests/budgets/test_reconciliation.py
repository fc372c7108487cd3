"""The reconciliation page sets the gateway's spend against the ledger's cost and counts how each
row was priced."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from budgets.ingest import ingest_spend_rows
from keys.models import ModelPolicy
from tests.budgets.conftest import spend_row
from tests.factories import VirtualKeyFactory
from tests.keys.conftest import classification

pytestmark = pytest.mark.django_db
QUERIES = 13  # measured (a person's org and team roles are one query); the same at both sizes is what matters


def test_computed_flat_rate_and_unpriced_rows_are_counted_per_key(team_a, member_a_user, admin_client, finance_client):
    ModelPolicy.objects.create(
        name="kimi-k2.5", provider="moonshot", flat_rate=True, max_classification=classification("internal")
    )
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    now = datetime.now(UTC)
    rows = [
        spend_row(api_key=key.token_hash, model_group="gpt-4o", spend=0.0, start_time=now),  # gateway said $0
        spend_row(api_key=key.token_hash, model_group="kimi-k2.5", spend=0.01, start_time=now),
        spend_row(api_key=key.token_hash, model_group="acme-internal-llm", spend=0.0, start_time=now),
    ]
    assert ingest_spend_rows(rows, "pull").inserted == 3
    for client in (admin_client, finance_client):
        response = client.get(reverse("reconciliation"))
        assert response.status_code == 200
        row = next(r for r in response.context["page"].object_list if r.get("key_id") == key.pk)
        assert (row["computed"], row["flat_rate"], row["unpriced"]) == (1, 1, 1)
        assert response.context["totals"]["unpriced"] == 1
        assert "1 unpriced" in response.content.decode()


def _day(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 2, day, hour, tzinfo=UTC)


FEBRUARY = {"start": "2026-02-01", "end": "2026-02-28"}


def test_each_key_and_day_shows_both_figures_and_the_reason_for_every_difference(team_a, member_a_user, admin_client):
    ModelPolicy.objects.create(
        name="kimi-k2.5", provider="moonshot", flat_rate=True, max_classification=classification("internal")
    )
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    rows = [
        spend_row(api_key=key.token_hash, spend=0.0, start_time=_day(3)),  # streamed without usage: computed
        spend_row(api_key=key.token_hash, model_group="kimi-k2.5", spend=0.01, start_time=_day(3)),  # flat rate
        spend_row(api_key=key.token_hash, model="openai/acme-private", spend=0.0, start_time=_day(3)),  # unpriced
        {**spend_row(api_key=key.token_hash, spend=0.003, start_time=_day(3)), "cache_hit": "True"},  # a cache hit
        spend_row(api_key=key.token_hash, spend=0.0004, start_time=_day(3)),  # kept; litellm says 0.000225
        spend_row(api_key=key.token_hash, spend=0.000225, start_time=_day(4, hour=0)),  # the next UTC day, agreed
    ]
    assert ingest_spend_rows(rows, "pull").inserted == 6
    response = admin_client.get(reverse("reconciliation"), FEBRUARY)
    assert response.status_code == 200
    day4, day3 = response.context["page"].object_list  # newest first
    assert (day3["day"], day4["day"]) == (_day(3).date(), _day(4).date())
    assert (day3["requests"], day3["gateway"]) == (5, Decimal("0.0134"))
    assert (day3["computed"], day3["flat_rate"], day3["unpriced"], day3["cache_hit"]) == (1, 1, 1, 1)
    assert day3["computed_difference"] == Decimal("0.000225")  # computed where the gateway logged $0
    assert day3["flat_rate_difference"] == Decimal("-0.01")
    assert day3["unpriced_difference"] == 0  # the gateway logged $0 too: no cost either side, flagged
    assert day3["cache_hit_difference"] == Decimal("-0.003")
    explained = sum(day3[f"{source}_difference"] for source in ("computed", "flat_rate", "unpriced", "cache_hit"))
    assert day3["difference"] == day3["ledger"] - day3["gateway"] == explained
    (disagreement,) = day3["disagreements"]
    assert (disagreement["reason"], disagreement["requests"]) == ("unexplained", 1)
    assert disagreement["gateway"] == Decimal("0.0004") and disagreement["computed"] == Decimal("0.000225")
    assert (day4["requests"], day4["difference"], day4["disagreements"]) == (1, Decimal("0"), [])
    page = response.content.decode()
    assert (
        "1 streamed without usage, computed" in page
        and "1 cache hit:" in page
        and "Nothing in the row explains it" in page
    )

    by_team = admin_client.get(reverse("reconciliation"), {**FEBRUARY, "by": "team"}).context["page"].object_list
    assert by_team[1]["team__name"] == "Team A" and len(by_team[1]["disagreements"]) == 1


def test_the_csv_holds_every_key_and_day_with_its_reasons(team_a, member_a_user, finance_client):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user, alias="=HYPERLINK(evil)")
    ingest_spend_rows([spend_row(api_key=key.token_hash, spend=0.0, start_time=_day(d)) for d in (1, 2)], "pull")
    response = finance_client.get(reverse("reconciliation"), {**FEBRUARY, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0][:8] == ["day", "key", "token_hash", "team", "requests", "gateway", "ledger", "difference"]
    assert [line[0] for line in lines[1:]] == ["2026-02-02", "2026-02-01"]
    assert lines[1][1] == "'=HYPERLINK(evil)"  # not a formula in a spreadsheet
    assert lines[1][lines[0].index("computed_rows")] == "1"


def test_bad_dates_are_refused_and_no_csv_is_made(admin_client):
    response = admin_client.get(
        reverse("reconciliation"), {"start": "2026-02-10", "end": "2026-02-01", "format": "csv"}
    )
    assert response.status_code == 400 and not response["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("keys", [2, 12])
def test_the_page_reads_a_fixed_number_of_queries(keys, team_a, member_a_user, admin_client, django_assert_num_queries):
    """Two sizes, one count: the explanation of a page is two queries over the ledger, whatever its rows."""
    for _ in range(keys):
        key = VirtualKeyFactory(team=team_a, owner=member_a_user)
        ingest_spend_rows(
            [spend_row(api_key=key.token_hash, spend=0.0004, start_time=_day(d)) for d in (1, 2, 3)], "pull"
        )
    admin_client.get(reverse("reconciliation"), FEBRUARY)  # the session and permissions warmed
    with django_assert_num_queries(QUERIES) as captured:
        response = admin_client.get(reverse("reconciliation"), FEBRUARY)
    assert len(response.context["page"].object_list) == 3 * keys
    assert all(row["disagreements"] for row in response.context["page"].object_list), captured


def test_a_member_gets_no_csv_either(team_a, member_a_user, member_a_client):
    key = VirtualKeyFactory(team=team_a, owner=member_a_user)
    ingest_spend_rows([spend_row(api_key=key.token_hash, spend=0.001, start_time=_day(1))], "pull")
    response = member_a_client.get(reverse("reconciliation"), {**FEBRUARY, "format": "csv"})
    assert response.status_code == 403 and key.token_hash not in response.content.decode()
