"""The rollups the dashboards read: the SQL path, the portable path (SQLite) and the rebuild agree, and the
ingest hook counts each ledger row once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Sum

from adoption import rollups
from adoption.models import KeyUse, LatencyRollup, PersonWeek, TagRollup, TeamModelDay, TeamToolDay
from budgets.ingest import ingest_spend_rows
from budgets.models import SpendRecord
from tests.adoption.builders import PROVISIONED, at, spend
from tests.adoption.conftest import cost_rows
from tests.factories import VirtualKeyFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
TABLES = (PersonWeek, KeyUse, TeamModelDay, TeamToolDay, TagRollup, LatencyRollup)


def snapshot() -> dict:
    """Every rollup row, without its id."""
    result = {}
    for model in TABLES:
        fields = [field.attname for field in model._meta.concrete_fields if not field.primary_key or model is KeyUse]
        result[model.__name__] = sorted(model.objects.values_list(*fields), key=str)
    return result


def _clear():
    for model in TABLES:
        model.objects.all().delete()


def test_tags_are_key_value_pairs_without_user_agents():
    assert rollups.parse_tags(
        ["project:Atlas", " Workflow : code-review ", "ticket-42", "User-Agent: claude-cli", "user-agent: x/1", "a:"]
    ) == {("project", "Atlas"), ("workflow", "code-review"), ("tag", "ticket-42")}
    assert rollups.parse_tags("project:atlas") == set()  # not a list: nothing
    assert rollups.parse_tags([":x"]) == {("tag", ":x")}


def test_rebuild_is_idempotent_and_whole_weeks(cost_world):
    before = snapshot()
    assert all(before.values())
    assert rollups.rebuild(cost_world.start, cost_world.start) == rollups.whole_weeks(
        cost_world.start, cost_world.start
    )
    assert snapshot() == before


def test_the_portable_path_counts_as_the_sql_does(cost_world):
    """What SQLite's ingest hook adds equals what PostgreSQL's statement adds, row for row."""
    before = snapshot()
    _clear()
    rollups.roll_up_new_rows(SpendRecord.objects.all())
    assert snapshot() == before


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the ingest statement is PostgreSQL's (SQLite: the portable path)"
)
def test_the_hook_statement_adds_exactly_the_rows_a_data_modifying_cte_returns(cost_world):
    """NEW_ROWS_CTES as the ingest runs it: `new` is an INSERT ... RETURNING in the same statement. Book a
    copy of every ledger row that way; the rollups then equal a rebuild from the ledger."""
    columns = [field.column for field in SpendRecord._meta.concrete_fields]
    copied = ", ".join("'copy-' || request_id" if column == "request_id" else column for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH new AS (INSERT INTO {SpendRecord._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {copied} FROM {SpendRecord._meta.db_table} RETURNING {', '.join(rollups.NEW_ROWS_COLUMNS)}), "
            f"{rollups.NEW_ROWS_CTES} SELECT count(*) FROM new"
        )
        assert cursor.fetchone()[0] == SpendRecord.objects.filter(request_id__startswith="copy-").count()
    incremental = snapshot()
    days = [row.time.date() for row in SpendRecord.objects.only("time")]
    _clear()
    rollups.rebuild(min(days), max(days))
    assert snapshot() == incremental
    assert TeamModelDay.objects.aggregate(n=Sum("requests"))["n"] == SpendRecord.objects.count() == 2 * 65


def test_the_ingest_hook_books_each_request_once(world, flat_rate_kimi):
    from tests.permissions import APPROVER_A, MEMBER_A, MEMBER_B

    keys = {
        "a": VirtualKeyFactory(team=world.team_a, owner=world.users[MEMBER_A], provisioned_at=PROVISIONED),
        "b": VirtualKeyFactory(team=world.team_a, owner=world.users[APPROVER_A], provisioned_at=PROVISIONED),
        "c": VirtualKeyFactory(team=world.team_b, owner=world.users[MEMBER_B], provisioned_at=PROVISIONED),
    }
    rows = cost_rows(keys, date(2026, 11, 4)) + cost_rows(keys, date(2026, 11, 9))
    ingest_spend_rows(rows[:20], "push", evaluate_budgets=False)
    ingest_spend_rows(rows, "pull", evaluate_budgets=False)  # overlaps the first batch
    ingest_spend_rows(rows[10:], "pull", evaluate_budgets=False)  # all seen before
    booked = snapshot()
    _clear()
    rollups.rebuild(date(2026, 11, 4), date(2026, 11, 9))
    assert snapshot() == booked


def test_key_use_keeps_the_first_and_the_last_day(world):
    from tests.adoption.builders import book
    from tests.permissions import MEMBER_A

    key = VirtualKeyFactory(team=world.team_a, owner=world.users[MEMBER_A], provisioned_at=PROVISIONED)
    book([spend(key, at(date(2026, 10, 7))), spend(key, at(date(2026, 11, 18)))])
    rollups.rebuild(date(2026, 10, 5), date(2026, 10, 11))  # a rebuild of one week keeps the rest
    use = KeyUse.objects.get(key=key)
    assert (use.first_day, use.last_day) == (date(2026, 10, 7), date(2026, 11, 18))


@pytest.mark.slow
def test_migrations_and_the_portable_path_on_sqlite(tmp_path):
    """The demo's database: migrations apply, the SQLite ingest path fills the rollups, the pages render."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "LITELLM_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        GOVSITE_VAR_DIR=str(tmp_path),
        DEBUG="true",
        SECRET_KEY="sqlite-test",
        ALLOWED_HOSTS="testserver",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    manage = [sys.executable, "manage.py"]
    migrated = subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    script = textwrap.dedent(
        """
        from datetime import UTC, date, datetime, timedelta
        from decimal import Decimal
        from django.test import Client
        from adoption import rollups
        from adoption.models import KeyUse, PersonWeek, TagRollup, TeamModelDay
        from budgets.ingest import ingest_spend_rows
        from govsite.accounts.models import Membership, OrgRole, OrgRoleGrant, Team, User
        from govsite.devtools.sandbox import make_spend_row
        from keys.models import VirtualKey
        import hashlib
        team = Team.objects.create(name="T", slug="t")
        user = User.objects.create_user("p@example.com")
        Membership.objects.create(user=user, team=team)
        admin = User.objects.create_user("a@example.com")
        OrgRoleGrant.objects.create(user=admin, role=OrgRole.ADMIN)
        now = datetime.now(UTC)
        key = VirtualKey.objects.create(owner=user, team=team, kind="personal", alias="k", max_budget=1,
            expires_at=now + timedelta(days=9), status="active", last4="abcd", provisioned_at=now - timedelta(days=9),
            token_hash=hashlib.sha256(b"sk-sqlite").hexdigest())
        rows = [make_spend_row(api_key="sk-sqlite", start_time=now - timedelta(days=n), tags=["project:demo"])
                for n in range(3)]
        result = ingest_spend_rows(rows, "push", evaluate_budgets=False)
        assert result.inserted == 3, result
        assert sum(w.requests for w in PersonWeek.objects.all()) == 3  # the ingest's own (registered) roll-up
        days = [now.date() - timedelta(days=n) for n in range(3)]
        rollups.rebuild(min(days), max(days))
        assert sum(r.requests for r in TagRollup.objects.filter(tag_key="project", tag_value="demo")) == 3
        assert sum(r.requests for r in TeamModelDay.objects.all()) == 3
        assert sum(w.requests for w in PersonWeek.objects.all()) == 3
        assert KeyUse.objects.get(key=key).last_day == now.date()
        client = Client()
        client.force_login(admin)
        for url in ("/dashboards/", "/dashboards/teams/t/", "/adoption/", "/adoption/teams/t/", "/me/usage/"):
            assert client.get(url).status_code == 200, url
        print("sqlite ok")
        """
    )
    shell = subprocess.run([*manage, "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "sqlite ok" in shell.stdout, shell.stdout[-2000:] + shell.stderr[-3000:]
