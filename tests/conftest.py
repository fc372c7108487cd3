pytest_plugins = ["tests.gateway_fixtures"]

# ruff: noqa: E402 - pytest_plugins comes first, by agreement with tests/gateway_fixtures.py.
# Shared fixtures: two teams, one person per role, and a logged-in client for each.

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.db import DatabaseCache
from django.core.management.color import no_style
from django.db import connection, connections
from django.test import Client

from audit.models import AuditEvent
from govsite import dbroles
from govsite.accounts.models import OrgRole, TeamRole
from tests.factories import TeamFactory, make_user
from tests.permissions import ADMIN, APPROVER_A, AUDITOR, FINANCE, MEMBER_A, MEMBER_B, World

AUDIT_TABLE = AuditEvent._meta.db_table


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


# --- the database roles -------------------------------------------------------------------------------------
# With DATABASE_OWNER_URL set (CI), the test database is created, migrated and dropped by the owner role and every
# test connects as the app role of DATABASE_URL, which owns nothing (govsite/dbroles.py). Without it (SQLite, a
# developer's single PostgreSQL user) one connection does everything, as before.


def _connect_default_as(credentials: dict) -> None:
    conn = connections["default"]
    conn.close()
    conn.settings_dict.update(credentials)


@pytest.fixture(scope="session")
def _database_roles():
    """(app credentials, owner credentials or None), read before anything switches the connection."""
    app = {key: connections["default"].settings_dict.get(key) for key in ("USER", "PASSWORD", "HOST", "PORT")}
    return app, dbroles.owner_credentials()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings, _database_roles):
    """The test database is created and migrated as the owner (pytest-django's setup runs right after this)."""
    _, owner = _database_roles
    if owner:
        _connect_default_as(owner)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, _database_roles):
    """Once it exists, the tests use it as the app role; the owner drops it at the end."""
    app, owner = _database_roles
    if not owner:
        yield
        return
    _connect_default_as(app)
    yield
    _connect_default_as(owner)


@pytest.fixture(autouse=True)
def _flush_past_append_only_audit(request):
    """Empty the database before a transactional test's flush, as the owner, past the audit table's guard.

    Django empties the database after a `transaction=True` test with one TRUNCATE of every table; the app role
    may not TRUNCATE, and the audit table refuses TRUNCATE from anyone (a trigger). Right before that flush
    (this fixture's teardown runs just before it), the owner lifts the trigger, truncates every table and puts
    the trigger back, in one transaction: no other session ever sees the audit table unguarded. The flush that
    follows (govsite's `flush`, as the owner) then finds every table empty and truncates nothing.
    """
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or "live_server" in request.fixturenames
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        transactional = True
    if not transactional or connection.vendor != "postgresql":
        return
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=False, allow_cascade=False)
    with dbroles.owner_cursor() as cursor:
        cursor.execute(f"ALTER TABLE {AUDIT_TABLE} DISABLE TRIGGER audit_event_no_truncate")
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(f"ALTER TABLE {AUDIT_TABLE} ENABLE TRIGGER audit_event_no_truncate")


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
