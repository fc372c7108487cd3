"""Dashboards read a real streaming replica (made by .ci/replica; GOVSITE_TEST_REPLICA_URL says where): their
queries go to it, a decision and the page after it read the primary, and a replica whose replay is paused
sends the dashboards back to the primary."""

from __future__ import annotations

import os
import time

import dj_database_url
import psycopg
import pytest
from django.db import connection, connections
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from govsite import replica

pytestmark = pytest.mark.django_db(transaction=True)
URL = os.environ.get("GOVSITE_TEST_REPLICA_URL", "")


@pytest.fixture
def streaming_replica(settings):
    if connection.vendor != "postgresql":
        pytest.skip("streaming replication is PostgreSQL's")
    if not URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs .ci/replica and sets GOVSITE_TEST_REPLICA_URL")
        pytest.skip("no streaming replica (GOVSITE_TEST_REPLICA_URL)")
    host, port = URL.split("@", 1)[1].split("/", 1)[0].split(":")
    config = {**connection.settings_dict, "HOST": host, "PORT": port}
    settings.DATABASES = {**settings.DATABASES, "replica": config}
    # Made here rather than listed in connections.settings: the test case then allows it (Django lets
    # connections made during a test through) and neither creates nor flushes a database on the standby.
    connections["replica"] = load_backend(config["ENGINE"]).DatabaseWrapper(config, "replica")
    # The standby replays the whole server's WAL (other databases too): a busy machine lags a little.
    settings.REPLICA_MAX_LAG_SECONDS = 30
    settings.REPLICA_LAG_CHECK_SECONDS = 0
    replica.forget_lag()
    yield connections["replica"]
    replay("resume")
    connections["replica"].close()
    del connections["replica"]
    replica.forget_lag()


def replay(action: str) -> None:
    """Pause or resume the standby's replay as the replica URL's own user: the app's role, which the suite
    connects as, may not (PostgreSQL keeps those functions to superusers)."""
    assert action in ("pause", "resume")
    admin = dj_database_url.parse(URL)
    with psycopg.connect(
        host=admin["HOST"], port=admin["PORT"], user=admin["USER"], dbname=connection.settings_dict["NAME"]
    ) as conn:
        conn.execute(f"SELECT pg_wal_replay_{action}()")


def _replica_caught_up(conn):
    for _ in range(200):
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.05)


def test_dashboards_read_the_replica_and_decisions_read_the_primary(streaming_replica, world, client):
    with streaming_replica.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True  # a real standby
    _replica_caught_up(streaming_replica)
    client.force_login(world.users["admin"])
    with CaptureQueriesContext(streaming_replica) as on_replica, CaptureQueriesContext(connection) as on_primary:
        page = client.get(reverse("dashboard_org"))
    assert page.status_code == 200
    assert "Figures read from the read replica" in page.content.decode()
    assert any("adoption_" in q["sql"] or "budgets_dailyrollup" in q["sql"] for q in on_replica.captured_queries)
    # The permission check and the session read the primary, never the replica.
    assert not [
        q["sql"][:200]
        for q in on_replica.captured_queries
        if 'FROM "accounts_' in q["sql"] or "django_session" in q["sql"]
    ]
    assert any("django_session" in q["sql"] for q in on_primary.captured_queries)

    # A decision (a team made by the admin) and the page after it read the primary only.
    with CaptureQueriesContext(streaming_replica) as on_replica:
        response = client.post(reverse("team_create"), {"name": "Platform", "slug": "platform"})
        after = client.get(response.headers.get("Location") or reverse("team_list"))
    assert response.status_code in (200, 302) and after.status_code == 200
    assert on_replica.captured_queries == []


def test_a_replica_whose_replay_is_paused_sends_the_dashboards_to_the_primary(
    streaming_replica, world, client, settings
):
    settings.REPLICA_MAX_LAG_SECONDS = 1
    client.force_login(world.users["admin"])
    replay("pause")
    # Writes the replica receives but does not replay, until it is more than a second behind.
    for _ in range(100):
        world.team_a.save()
        replica.forget_lag()
        lag = replica.replica_lag()
        if lag is not None and lag > 1:
            break
        time.sleep(0.1)
    replica.forget_lag()
    with CaptureQueriesContext(streaming_replica) as on_replica:
        page = client.get(reverse("dashboard_org"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Figures read from the primary: the replica is" in body and "behind" in body
    assert not any("adoption_" in q["sql"] for q in on_replica.captured_queries)


def test_an_evidence_export_reads_the_replica_once_it_has_replayed_the_checkpoint_signed_for_it(
    streaming_replica, world
):
    from tests.audit.conftest import build_export  # noqa: PLC0415 - the auditor workspace's helper

    with CaptureQueriesContext(streaming_replica) as on_replica:
        export = build_export(world.users["auditor"])
    assert export.status == "done", export.error  # its checks, the chain's included, passed on the replica
    assert any("audit_auditevent" in q["sql"] for q in on_replica.captured_queries)
    assert not any(q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE")) for q in on_replica.captured_queries)


def test_a_replica_that_does_not_answer_sends_the_dashboards_to_the_primary_and_says_so(settings, world, client):
    if connection.vendor != "postgresql":
        pytest.skip("streaming replication is PostgreSQL's")
    from govsite.devtools.processes import free_port  # noqa: PLC0415 - a port nothing listens on

    config = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": str(free_port())}
    settings.DATABASES = {**settings.DATABASES, "replica": config}
    connections["replica"] = load_backend(config["ENGINE"]).DatabaseWrapper(config, "replica")
    replica.forget_lag()
    try:
        client.force_login(world.users["admin"])
        page = client.get(reverse("dashboard_org"))
        assert page.status_code == 200
        assert "Figures read from the primary: the replica does not answer" in page.content.decode()
    finally:
        connections["replica"].close()
        del connections["replica"]
        replica.forget_lag()


def _requests_on_the_org_dashboard(client) -> int:
    from tests.dashboards.conftest import html_tables  # noqa: PLC0415 - the dashboards' table reader

    page = client.get(reverse("dashboard_org"))
    assert page.status_code == 200
    assert "Figures read from the read replica" in page.content.decode()
    header, *rows = html_tables(page)["models"]
    return sum(int(row[header.index("Requests")].replace(",", "")) for row in rows)


def test_kept_figures_follow_the_replica_they_were_read_from(streaming_replica, world, client):
    """The rollups' generation is read where the rollups are (budgets.generation): a replica that has not
    replayed a booking yet shows its own figures, and once it has, the page computes them again."""
    from datetime import timedelta  # noqa: PLC0415

    from django.utils import timezone  # noqa: PLC0415

    from tests.adoption.builders import book, spend  # noqa: PLC0415
    from tests.factories import VirtualKeyFactory  # noqa: PLC0415

    key = VirtualKeyFactory(team=world.team_a, owner=world.users["member_a"])
    book([spend(key, timezone.now() - timedelta(minutes=2))])
    _replica_caught_up(streaming_replica)
    client.force_login(world.users["admin"])
    assert _requests_on_the_org_dashboard(client) == 1

    replay("pause")
    book([spend(key, timezone.now() - timedelta(minutes=1))])
    # The primary has it; the replica received it and has not replayed it: its figures, kept or not, are its own.
    assert _requests_on_the_org_dashboard(client) == 1
    replay("resume")
    _replica_caught_up(streaming_replica)
    assert _requests_on_the_org_dashboard(client) == 2
