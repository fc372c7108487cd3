"""The dashboards' figures are kept until a rollup changes (budgets.generation): a page after a booking, a
rebuild, a team's new name or any SQL on a rollup shows the new figures; a generation is never given twice; a
cache that does not answer leaves the figures computed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from adoption.models import KeyUse, LatencyRollup, PersonWeek, TagRollup, TeamModelDay, TeamToolDay
from budgets.generation import rollup_generation
from budgets.models import DailyRollup
from tests.adoption.builders import at, book, spend
from tests.dashboards.conftest import html_tables

pytestmark = pytest.mark.django_db

ROLLUPS = (DailyRollup, PersonWeek, KeyUse, TeamModelDay, TeamToolDay, TagRollup, LatencyRollup)


def _rollup_reads(queries) -> list[str]:
    """Reads of the rollups only the kept figures come from (the budgets' spend so far is read each time)."""
    kept = (PersonWeek, TeamToolDay, TagRollup, LatencyRollup)
    return [q["sql"] for q in queries if any(f'"{model._meta.db_table}"' in q["sql"] for model in kept)]


# A named period (the last 30 days hold cost_world's days): a custom period's figures are never kept.
LAST_30_DAYS = "period=30d"


def _team_page(client, cost_world, query: str = LAST_30_DAYS):
    url = f"{reverse('dashboard_team', args=[cost_world.world.team_a.slug])}?{query}"
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url)
    assert page.status_code == 200
    return page, queries


def _total_requests(page) -> int:
    header, *rows = html_tables(page)["models"]
    column = header.index("Requests")
    return sum(int(row[column].replace(",", "")) for row in rows)


def test_every_statement_on_a_rollup_gives_a_new_generation(cost_world):
    seen = {rollup_generation()}
    for model in ROLLUPS:
        with connection.cursor() as cursor:
            # Even a statement that changes no row: the trigger runs once per statement.
            column = model._meta.pk.column
            cursor.execute(f"UPDATE {model._meta.db_table} SET {column} = {column} WHERE false")
        generation = rollup_generation()
        assert generation not in seen, model.__name__
        seen.add(generation)


def test_a_generation_rolled_back_is_never_given_again(cost_world):
    before = rollup_generation()
    with pytest.raises(RuntimeError), transaction.atomic():
        DailyRollup.objects.filter(requests__lt=0).update(requests=0)
        rolled_back = rollup_generation()
        raise RuntimeError("roll back")
    assert rollup_generation() == before != rolled_back
    DailyRollup.objects.filter(requests__lt=0).update(requests=0)
    assert rollup_generation() not in (before, rolled_back)


def test_the_second_page_reads_no_rollup_and_a_booking_shows_on_the_next(cost_world, admin_client):
    first, queries = _team_page(admin_client, cost_world)
    assert _rollup_reads(queries)
    again, queries = _team_page(admin_client, cost_world)
    assert _rollup_reads(queries) == []  # kept
    assert html_tables(again) == html_tables(first)
    requests = _total_requests(first)

    book([spend(cost_world.keys["a"], at(cost_world.start, 17))])
    after, queries = _team_page(admin_client, cost_world)
    assert _rollup_reads(queries)
    assert _total_requests(after) == requests + 1


def test_a_rollup_changed_by_hand_and_a_team_renamed_show_on_the_next_page(cost_world, admin_client):
    url = f"{reverse('dashboard_org')}?{LAST_30_DAYS}"
    team = cost_world.world.team_a
    assert "98,765" not in admin_client.get(url).content.decode()
    # An admin's correction in SQL, outside the ingest: the page follows it.
    TeamModelDay.objects.filter(team=team, day=cost_world.start, model="gpt-4o").update(cost=Decimal("98765.43"))
    page = admin_client.get(url).content.decode()
    assert "98,765" in page
    team.name = "Renamed team"
    team.save(update_fields=["name"])
    assert "Renamed team" in admin_client.get(url).content.decode()


def test_a_custom_periods_figures_are_computed_every_time(cost_world, admin_client):
    """Only the named periods are kept: whatever dates people ask for, what is kept stays bounded."""
    first, _ = _team_page(admin_client, cost_world, cost_world.query)
    again, queries = _team_page(admin_client, cost_world, cost_world.query)
    assert _rollup_reads(queries)
    assert html_tables(again) == html_tables(first)


def test_with_no_cache_answering_the_figures_are_computed(cost_world, admin_client):
    kept, _ = _team_page(admin_client, cost_world)
    unreachable = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    with override_settings(CACHES=unreachable):
        page, queries = _team_page(admin_client, cost_world)
    assert _rollup_reads(queries)
    assert html_tables(page) == html_tables(kept)


def test_figures_cache_seconds_zero_computes_every_time(cost_world, admin_client):
    with override_settings(FIGURES_CACHE_SECONDS=0):
        _team_page(admin_client, cost_world)
        _, queries = _team_page(admin_client, cost_world)
    assert _rollup_reads(queries)


@pytest.mark.django_db(transaction=True)
def test_a_generation_table_restored_from_a_dump_is_a_new_generation():
    """A dump restored brings back the epoch and the number (and the sequence where it stood): the table's new
    oid still tells it apart, so nothing kept before the restore is served after it."""
    from govsite.dbroles import owner_cursor  # noqa: PLC0415 - DDL as the tables' owner

    before = rollup_generation()
    with owner_cursor() as cursor:
        cursor.execute(
            "CREATE TABLE govsite_rollup_generation_restored (LIKE govsite_rollup_generation INCLUDING ALL);"
            "INSERT INTO govsite_rollup_generation_restored SELECT * FROM govsite_rollup_generation;"
            "DROP TABLE govsite_rollup_generation;"
            "ALTER TABLE govsite_rollup_generation_restored RENAME TO govsite_rollup_generation;"
        )
    after = rollup_generation()
    assert after is not None and after != before
    assert after.split(":")[-2:] == before.split(":")[-2:]  # the same epoch and number, as a restore makes them
    DailyRollup.objects.filter(requests__lt=0).update(requests=0)  # the trigger writes the restored table
    assert rollup_generation() not in (before, after)
