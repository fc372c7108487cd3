"""The dashboards' rollups are kept by the ingest only because adoption registers them (budgets, the
lower layer, knows nothing of adoption)."""

from __future__ import annotations

from datetime import date

import pytest

from adoption import rollups
from adoption.models import PersonWeek, TeamModelDay
from budgets import ingest
from budgets.models import DailyRollup, SpendRecord
from tests.adoption.builders import PROVISIONED, at, spend
from tests.factories import VirtualKeyFactory
from tests.permissions import MEMBER_A

pytestmark = pytest.mark.django_db
MONDAY = date(2026, 11, 2)
NEXT_MONDAY = date(2026, 11, 9)


def test_adoption_registers_its_rollups_with_the_ingest():
    (registration,) = [rollup for rollup in ingest.registered_rollups() if rollup.name == "adoption"]
    assert registration.ctes == rollups.NEW_ROWS_CTES.strip()
    assert registration.columns == rollups.NEW_ROWS_COLUMNS
    assert registration.roll_up is rollups.roll_up_new_rows


def test_a_rollup_reading_a_column_the_ledger_lacks_is_refused():
    with pytest.raises(ValueError, match="no_such_column"):
        ingest.register_rollup(name="broken", ctes="", columns=["time", "no_such_column"], roll_up=list)
    assert "broken" not in {rollup.name for rollup in ingest.registered_rollups()}


def test_the_ingest_fills_person_weeks_through_the_registration(world, monkeypatch):
    key = VirtualKeyFactory(team=world.team_a, owner=world.users[MEMBER_A], provisioned_at=PROVISIONED)
    ingest.ingest_spend_rows([spend(key, at(MONDAY)), spend(key, at(MONDAY, 13))], "push", evaluate_budgets=False)
    week = PersonWeek.objects.get(week=MONDAY, user=world.users[MEMBER_A])
    assert (week.requests, week.days) == (2, 1)  # Monday only
    assert TeamModelDay.objects.get(day=MONDAY).requests == 2

    # Without adoption's registration the ledger and budgets' own rollup still book the request, and the
    # dashboards' rollups do not see it: nothing else in the ingest writes them.
    monkeypatch.delitem(ingest._ROLLUPS, "adoption")
    ingest.ingest_spend_rows([spend(key, at(NEXT_MONDAY))], "push", evaluate_budgets=False)
    assert SpendRecord.objects.filter(time__date=NEXT_MONDAY).count() == 1
    assert DailyRollup.objects.get(day=NEXT_MONDAY).requests == 1
    assert not PersonWeek.objects.filter(week=NEXT_MONDAY).exists()
    assert not TeamModelDay.objects.filter(day=NEXT_MONDAY).exists()
