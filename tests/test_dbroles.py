"""Least privilege in PostgreSQL (govsite/dbroles.py): the suite connects as the app role when DATABASE_OWNER_URL
names an owner (CI does), and that role may not disable the audit log's triggers, alter, truncate, update or
delete it; the database check names a superuser and the audit table's owner; migrate grants what later
migrations create, and `owner_cursor()` is the owner's."""

from __future__ import annotations

from datetime import date

import pytest
from django.core import checks
from django.db import DatabaseError, connection, connections, transaction

from audit.models import AuditEvent
from budgets import partitions
from govsite import dbroles
from tests.audit.helpers import write_events
from tests.database_roles import current_role, is_superuser, superuser_wrapper
from tests.gateway_fixtures import unavailable

TABLE = AuditEvent._meta.db_table

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the roles are PostgreSQL's")


@pytest.fixture
def app_role(db):
    """The suite runs as the restricted app role; in CI (CI=true) anything else is a failure."""
    if dbroles.owner_credentials() is None:
        unavailable("DATABASE_OWNER_URL is not set: the suite runs as one role (see .ci/run for the two)")
    return dbroles.app_role()


def test_the_suite_connects_as_the_app_role_which_is_no_superuser_and_owns_nothing(app_role):
    with connection.cursor() as cursor:
        assert current_role(cursor) == app_role
        assert not is_superuser(cursor)
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'USAGE')"
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize(
    ("statement", "refused"),
    [
        (f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_no_update_delete", "must be owner of table"),
        (f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL", "must be owner of table"),
        (f"ALTER TABLE {TABLE} ADD COLUMN forged text", "must be owner of table"),
        (f"TRUNCATE {TABLE}", "permission denied for table"),
        (f"DELETE FROM {TABLE}", "permission denied for table"),
        (f"UPDATE {TABLE} SET action = 'forged'", "permission denied for table"),
        (f"DROP TABLE {TABLE}", "must be owner of table"),
        ("SET session_replication_role = replica", "permission denied to set parameter"),
        ("CREATE TABLE planted (id int)", "permission denied for schema public"),
    ],
)
def test_the_app_role_may_not_touch_the_audit_table_or_the_schema(app_role, statement, refused):
    write_events(3)
    with pytest.raises(DatabaseError, match=refused), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 3
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == ["test.event"] * 3


def test_the_app_role_reads_and_appends_audit_events(app_role):
    events = write_events(2)
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in events]).count() == 2


@pytest.mark.django_db(transaction=True)  # the owner's DDL on a connection of its own sees only what is committed
def test_migrate_granted_the_app_role_every_table_and_default_privileges_for_later_ones(app_role):
    owner = dbroles.owner_credentials()["USER"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT has_table_privilege(c.oid, 'SELECT')"
        )
        assert cursor.fetchall() == []
        cursor.execute(
            "SELECT has_table_privilege(%s, 'INSERT'), has_table_privilege(%s, 'UPDATE'), "
            "has_table_privilege(%s, 'TRUNCATE')",
            [TABLE, TABLE, TABLE],
        )
        assert cursor.fetchone() == (True, False, False)
    # A table the owner makes later (a monthly partition, a new migration's table) is the app's to use.
    with dbroles.owner_cursor() as cursor:
        assert current_role(cursor) == owner
        cursor.execute("CREATE TABLE govsite_later_table (id int)")
    try:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO govsite_later_table VALUES (1)")
            cursor.execute("SELECT count(*) FROM govsite_later_table")
            assert cursor.fetchone()[0] == 1
    finally:
        with dbroles.owner_cursor() as cursor:
            cursor.execute("DROP TABLE govsite_later_table")


@pytest.mark.django_db(transaction=True)
def test_an_owner_cursor_block_that_raises_is_rolled_back(app_role):
    with pytest.raises(ZeroDivisionError), dbroles.owner_cursor() as cursor:
        cursor.execute("CREATE TABLE govsite_rolled_back (id int)")
        raise ZeroDivisionError
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('govsite_rolled_back')")
        assert cursor.fetchone()[0] is None


# --- the system check ----------------------------------------------------------------------------------------


def _ids(messages) -> set[str]:
    return {m.id for m in messages}


@pytest.mark.django_db
def test_the_check_is_silent_without_a_database_so_check_deploy_needs_none():
    assert dbroles.check_app_role(databases=None) == []


def test_the_check_is_silent_for_the_app_role(app_role):
    assert (
        _ids(checks.run_checks(databases=["default"], tags=[checks.Tags.database]))
        & {
            "govsite.W010",
            "govsite.W011",
        }
        == set()
    )


@pytest.mark.django_db
def test_the_check_warns_for_a_superuser():
    with connection.cursor() as cursor:
        own_superuser = is_superuser(cursor)
    if own_superuser:  # a developer's single role: the registered check says it of the suite's own connection
        found = checks.run_checks(databases=["default"], tags=[checks.Tags.database])
    else:
        wrapper = superuser_wrapper()
        try:
            found = dbroles.role_warnings(wrapper)
        finally:
            wrapper.close()
    warning = next(m for m in found if m.id == "govsite.W010")
    assert isinstance(warning, checks.Warning)
    assert "superuser" in warning.msg
    assert "govsite.W011" not in _ids(found)  # said once


def test_the_check_warns_for_the_audit_tables_owner(app_role):
    owner = dbroles.owner_credentials()
    settings_dict = {**connection.settings_dict, **owner, "CONN_MAX_AGE": 0}
    wrapper = type(connections["default"])(settings_dict, alias="owner-check")
    try:
        found = dbroles.role_warnings(wrapper)
    finally:
        wrapper.close()
    assert _ids(found) == {"govsite.W011"}
    assert TABLE in found[0].msg


@pytest.mark.django_db(transaction=True)  # DDL: the partitions are made and dropped for real
def test_the_app_role_makes_and_drops_ledger_months_only_through_the_owner_s_functions(app_role):
    owner = dbroles.owner_credentials()["USER"]
    ahead, past = partitions.Month(date(2031, 1, 1)), partitions.Month(date(2019, 1, 1))
    # Not by itself: it may not create a table, nor attach or detach one.
    refused = pytest.raises(DatabaseError, match="permission denied|must be owner")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {ahead.name} PARTITION OF budgets_spendrecord "
            "FOR VALUES FROM ('2031-01-01') TO ('2031-02-01')"
        )
    try:
        assert partitions.month_create(ahead) is True
        assert partitions.month_create(ahead) is False  # made once
        assert partitions.month_create(past) is True
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relname IN (%s, %s)",
                [ahead.name, past.name],
            )
            assert sorted(cursor.fetchall()) == sorted([(ahead.name, owner), (past.name, owner)])
        # Retention may let a past month go, never the current one or a later one.
        with pytest.raises(DatabaseError, match="never dropped"), transaction.atomic():
            partitions.month_drop(ahead)
        assert partitions.month_drop(past) is True
        assert partitions.month_drop(past) is False
        assert {m.start for m in partitions.months()} >= {ahead.start}
        assert past.start not in {m.start for m in partitions.months()}
    finally:
        with dbroles.owner_cursor() as cursor:
            for month in (ahead, past):
                cursor.execute(f"DROP TABLE IF EXISTS {month.name}")


def test_a_roles_password_is_set_exactly_even_with_quotes_and_percent_signs(db):
    """CREATE/ALTER ROLE take the password as a literal of the statement (a utility statement binds no parameter,
    and the connection binds parameters on the server): quotes and a percent sign are kept exactly. With md5
    encryption for the session, the stored hash shows the password that was set."""
    import hashlib
    import os

    from tests.database_roles import superuser_cursor

    name, password = f"govsite_test_role_{os.getpid()}", 'it\'s 100% "odd"; DROP ROLE postgres; --'
    with superuser_cursor() as cursor:
        cursor.execute("SET password_encryption = 'md5'")
        try:
            assert dbroles._ensure_login_role(cursor, name, password) == "created"
            assert dbroles._ensure_login_role(cursor, name, password) == "updated"
            cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [name])
            assert cursor.fetchone()[0] == "md5" + hashlib.md5((password + name).encode()).hexdigest()  # noqa: S324
        finally:
            cursor.execute(f"DROP ROLE IF EXISTS {name}")
            cursor.execute("RESET password_encryption")
