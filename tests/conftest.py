pytest_plugins = ["tests.gateway_fixtures"]

# ruff: noqa: E402 - pytest_plugins comes first, by agreement with tests/gateway_fixtures.py.
# Shared fixtures: two teams, one person per role, and a logged-in client for each.

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections
from django.test import Client

from govsite.accounts.models import OrgRole, TeamRole
from tests.factories import TeamFactory, make_user
from tests.permissions import ADMIN, APPROVER_A, AUDITOR, FINANCE, MEMBER_A, MEMBER_B, World


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    # allauth keeps its login rate-limit counters in the cache (Redis when REDIS_URL is set, else the
    # database cache); each test starts with none, whatever ran before it. Without Redis the cache is a
    # table, so a test without database access has nothing to clear.
    database_cache = isinstance(caches["default"], DatabaseCache)
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    )
    if database_cache and not uses_db:
        yield
        return
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _flush_past_append_only_audit(request):
    """Let a transactional test's teardown flush the audit table.

    On PostgreSQL the audit table refuses TRUNCATE, which is how Django empties the database after a
    `transaction=True` test. Right before that flush (this fixture's teardown runs just before it),
    triggers are switched off for the session; Django closes the connection straight after the flush,
    so the next test gets a fresh connection with the triggers back on.
    """
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or "live_server" in request.fixturenames
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        transactional = True
    if not transactional:
        return
    for connection in connections.all(initialized_only=True):
        if connection.vendor == "postgresql":
            # A test that made no query of its own has no connection open yet: the flush would open one.
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")


@pytest.fixture(scope="session")
def _checkpoint_key_file(tmp_path_factory):
    return tmp_path_factory.mktemp("audit-key") / "checkpoint-ed25519.pem"


@pytest.fixture(autouse=True)
def _audit_checkpoints_in_tmp(settings, tmp_path, _checkpoint_key_file):
    """Signed audit checkpoints go to the test's own directory (never var/); one signing key for the session,
    made on first use as a first deployment makes it."""
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"
    settings.AUDIT_CHECKPOINT_KEY = ""
    settings.AUDIT_CHECKPOINT_KEY_FILE = _checkpoint_key_file


# --- teams and people ---------------------------------------------------------------------------


@pytest.fixture
def team_a(db):
    return TeamFactory(name="Team A", slug="team-a")


@pytest.fixture
def team_b(db):
    return TeamFactory(name="Team B", slug="team-b")


@pytest.fixture
def admin_user(db):
    return make_user(email="admin@example.com", full_name="Ada Admin", org_roles=[OrgRole.ADMIN])


@pytest.fixture
def finance_user(db):
    return make_user(email="finance@example.com", full_name="Fin Ance", org_roles=[OrgRole.FINANCE])


@pytest.fixture
def auditor_user(db):
    return make_user(email="auditor@example.com", full_name="Audrey Auditor", org_roles=[OrgRole.AUDITOR])


@pytest.fixture
def approver_a_user(team_a):
    return make_user(email="approver-a@example.com", full_name="Appro Ver", teams={team_a: TeamRole.APPROVER})


@pytest.fixture
def member_a_user(team_a):
    return make_user(email="member-a@example.com", full_name="Mem Ber", teams={team_a: TeamRole.MEMBER})


@pytest.fixture
def member_b_user(team_b):
    return make_user(email="member-b@example.com", full_name="Bea Member", teams={team_b: TeamRole.MEMBER})


@pytest.fixture
def world(team_a, team_b, admin_user, finance_user, auditor_user, approver_a_user, member_a_user, member_b_user):
    return World(
        team_a=team_a,
        team_b=team_b,
        users={
            ADMIN: admin_user,
            FINANCE: finance_user,
            AUDITOR: auditor_user,
            APPROVER_A: approver_a_user,
            MEMBER_A: member_a_user,
            MEMBER_B: member_b_user,
        },
    )


# --- logged-in clients --------------------------------------------------------------------------


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user):
    return _logged_in(admin_user)


@pytest.fixture
def finance_client(finance_user):
    return _logged_in(finance_user)


@pytest.fixture
def auditor_client(auditor_user):
    return _logged_in(auditor_user)


@pytest.fixture
def approver_a_client(approver_a_user):
    return _logged_in(approver_a_user)


@pytest.fixture
def member_a_client(member_a_user):
    return _logged_in(member_a_user)


@pytest.fixture
def member_b_client(member_b_user):
    return _logged_in(member_b_user)
