"""Least privilege in PostgreSQL: the owner role owns the schema, the app role only reads and writes rows.

`DATABASE_URL` is the app's role: the site, the workers and the schedules connect as it. It owns nothing, so it
can neither `ALTER` a table nor disable a trigger, has no `TRUNCATE` anywhere, and on the audit table only
`SELECT` and `INSERT` (the chain is append-only). `DATABASE_OWNER_URL` is the owner's role: `manage.py migrate`
(and `flush`) connect as it. The app's only DDL at run time (a ledger month made or dropped) goes through
SECURITY DEFINER functions the owner's migration made; `owner_cursor()` is the owner's own connection.
After every migrate the app role is granted what it needs on what exists; default privileges cover what later
migrations (and those functions: monthly partitions) create. `manage.py db_roles` makes both roles (run by a superuser).

Without `DATABASE_OWNER_URL` (SQLite, a developer's single PostgreSQL user) everything runs on the one connection.
The owner URL's user, password, host and port are used; its database is always the one the app is connected
to (so the test database, under pytest).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dj_database_url
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import connection, connections, transaction

# The keys of a DATABASES entry that say who connects, and where.
_CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")
# The app role may read and append audit events, never change or remove one.
AUDIT_TABLE_PRIVILEGES = ("SELECT", "INSERT")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")


def _audit_table() -> str:
    return apps.get_model("audit", "AuditEvent")._meta.db_table


def owner_credentials() -> dict[str, Any] | None:
    """The owner's USER, PASSWORD, HOST and PORT from DATABASE_OWNER_URL; None when it is unset (one role)."""
    url = getattr(settings, "DATABASE_OWNER_URL", "")
    if not url or connection.vendor != "postgresql":
        return None
    parsed = dj_database_url.parse(url)
    return {key: parsed.get(key) or "" for key in _CREDENTIALS}


def app_role() -> str:
    """The role the app logs in as: DATABASE_URL's user (whoever the connection is switched to for now)."""
    return dj_database_url.parse(settings.DATABASE_URL)["USER"] if settings.DATABASE_URL else ""


@contextmanager
def connected_as(alias: str, credentials: dict[str, Any]) -> Iterator[None]:
    """Reconnect the alias with other credentials (same database) for the block, then back: what `migrate` and
    `flush` do to run as the owner. The connection is closed on the way in and out, so nothing leaks across."""
    conn = connections[alias]
    saved = {key: conn.settings_dict.get(key) for key in _CREDENTIALS}
    if all(saved[key] == credentials.get(key) for key in ("USER", "HOST", "PORT")):
        yield
        return
    conn.close()
    conn.settings_dict.update(credentials)
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.update(saved)


@contextmanager
def as_owner(alias: str = "default") -> Iterator[bool]:
    """The alias connected as the owner for the block; yields whether a separate owner role is configured."""
    owner = owner_credentials() if alias == "default" else None
    if owner is None:
        yield False
        return
    with connected_as(alias, owner):
        yield True


def _owner_wrapper():
    """A connection of its own, as the owner, to the database the app is connected to."""
    settings_dict = {**connection.settings_dict, **owner_credentials(), "CONN_MAX_AGE": 0}
    backend = type(connections["default"])  # the backend's DatabaseWrapper (`connection` is only a proxy)
    return backend(settings_dict, alias="owner")


@contextmanager
def owner_cursor() -> Iterator[Any]:
    """A cursor connected as the owner, for DDL at run time (a new partition, a trigger); the block is one
    transaction, committed when it ends and rolled back if it raises. With DATABASE_OWNER_URL it is a connection
    of its own: it sees only what is committed, and DDL on a table the caller's open transaction has written
    waits for that transaction (call it outside one, as a job does). With no DATABASE_OWNER_URL it is the
    default connection's cursor inside `transaction.atomic()` (a savepoint when a transaction is already open)."""
    if owner_credentials() is None:
        with transaction.atomic(), connection.cursor() as cursor:
            yield cursor
        return
    wrapper = _owner_wrapper()
    try:
        wrapper.set_autocommit(False)
        with wrapper.cursor() as cursor:
            yield cursor
        wrapper.commit()
    except BaseException:
        if wrapper.connection is not None:
            wrapper.rollback()
        raise
    finally:
        wrapper.close()


# --- grants -----------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def grant_statements(*, owner: str, app: str, audit_table: str | None = None) -> list[str]:
    """What the app role may do, as SQL the owner (or a superuser) runs; idempotent, re-run after every migrate.
    Existing tables and sequences, then default privileges for what the owner creates later. (On a database not
    migrated yet, `grant_app_privileges` leaves out the two statements naming a table.)"""
    audit_table = audit_table or _audit_table()
    o, a = _q(owner), _q(app)
    tables, sequences = ", ".join(TABLE_PRIVILEGES), ", ".join(SEQUENCE_PRIVILEGES)
    return [
        f"GRANT USAGE ON SCHEMA public TO {a}",
        f"REVOKE CREATE ON SCHEMA public FROM {a}",
        f"GRANT {tables} ON ALL TABLES IN SCHEMA public TO {a}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {a}",
        f"REVOKE UPDATE, DELETE ON {_q(audit_table)} FROM {a}",
        f"REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {a}",
        f"GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {a}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public GRANT {tables} ON TABLES TO {a}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {a}",
    ]


def grant_app_privileges(cursor, *, owner: str, app: str) -> None:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [_audit_table()])
    migrated = cursor.fetchone()[0]
    for statement in grant_statements(owner=owner, app=app):
        if migrated or " ON SCHEMA " in statement or " IN SCHEMA " in statement:
            cursor.execute(statement)
    # The owner's few SECURITY DEFINER functions (the ledger's months: budgets 0008) are the app's only way to
    # DDL, each building its own statement from a date; nobody else may call them.
    cursor.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND p.prosecdef AND p.proname LIKE %s",
        ["govsite\\_%"],
    )
    for (function,) in cursor.fetchall():
        cursor.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {_q(app)}")


def _ensure_login_role(cursor, name: str, password: str, *, createdb: bool = False) -> str:
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [name])
    row = cursor.fetchone()
    if row and row[0]:
        # Never demote a superuser (the one running this, most likely): the roles must be two others.
        raise ValueError(f"{name} is a superuser: the owner and the app must be roles of their own")
    verb = "ALTER" if row else "CREATE"
    attributes = "LOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS " + (
        "CREATEDB" if createdb else "NOCREATEDB"
    )
    if password:
        # The password is a literal of the statement, quoted by psycopg: a utility statement takes no bound
        # parameter, and the server binds them (DB_PREPARE_THRESHOLD, server-side binding).
        statement = f"{verb} ROLE {_q(name)} WITH {attributes} PASSWORD %s"
        cursor.execute(cursor.db.ops.compose_sql(statement, [password]))
    else:
        cursor.execute(f"{verb} ROLE {_q(name)} WITH {attributes}")
    return "created" if verb == "CREATE" else "updated"


def _owned_by_others(cursor, owner: str) -> list[tuple[str, str]]:
    """(kind, name) of every table, sequence, view and function in schema public not owned by the owner."""
    cursor.execute(
        """
        SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              ELSE 'TABLE' END, quote_ident(c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
           AND pg_get_userbyid(c.relowner) <> %s
           -- a sequence owned by a column follows its table
           AND NOT (c.relkind = 'S' AND EXISTS (
               SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
        UNION ALL
        SELECT 'FUNCTION', p.oid::regprocedure::text
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> %s
        """,
        [owner, owner],
    )
    return cursor.fetchall()


def ensure_roles(
    cursor,
    *,
    database: str,
    owner: str,
    owner_password: str,
    app: str,
    app_password: str,
    createdb: bool = False,
) -> list[str]:
    """Create or update both roles (a superuser's cursor, connected to `database`), hand the database and every
    object in it to the owner, and grant the app role its rows. Idempotent; returns what it did, line by line."""
    if owner == app:
        raise ValueError("the owner and the app must be two roles")
    done = [f"role {owner} {_ensure_login_role(cursor, owner, owner_password, createdb=createdb)} (owner)"]
    done.append(f"role {app} {_ensure_login_role(cursor, app, app_password)} (app)")
    cursor.execute(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
        "WHERE u.rolname = %s",
        [app],
    )
    if cursor.fetchone():
        # No role membership: the app must not be able to SET ROLE to anything, the owner least of all.
        cursor.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
            [app],
        )
        for (granted,) in cursor.fetchall():
            cursor.execute(f"REVOKE {_q(granted)} FROM {_q(app)}")
            done.append(f"role {app} no longer a member of {granted}")
    cursor.execute(f"ALTER DATABASE {_q(database)} OWNER TO {_q(owner)}")
    cursor.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_q(database)} TO {_q(app)}")
    cursor.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {_q(owner)}")
    cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    moved = _owned_by_others(cursor, owner)
    for kind, name in moved:
        cursor.execute(f"ALTER {kind} {name} OWNER TO {_q(owner)}")
    if moved:
        done.append(f"{len(moved)} objects handed to {owner}")
    grant_app_privileges(cursor, owner=owner, app=app)
    done.append(
        f"{app} granted {', '.join(TABLE_PRIVILEGES)} on every table "
        f"({', '.join(AUDIT_TABLE_PRIVILEGES)} on the audit log), and on what {owner} creates later"
    )
    return done


# --- the system check --------------------------------------------------------------------------------------


def role_warnings(conn) -> list[checks.CheckMessage]:
    """What is wrong with the role `conn` is connected as, for an app connection: a superuser, or the audit
    table's owner (either can disable its append-only triggers, truncate it or rewrite it)."""
    if conn.vendor != "postgresql":
        return []
    table = _audit_table()
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, "
            "(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass(%s)) "
            "FROM pg_roles WHERE rolname = current_user",
            [table],
        )
        user, superuser, owns_audit = cursor.fetchone()
    owns_audit = bool(owns_audit) and not superuser  # a superuser "has" every role; said once, below
    found = []
    hint = (
        "Connect the app (DATABASE_URL) as a role that owns nothing and run migrations as the owner "
        "(DATABASE_OWNER_URL); `manage.py db_roles` makes both."
    )
    if superuser:
        found.append(
            checks.Warning(
                f"the app connects to PostgreSQL as {user}, a superuser: it can disable the audit log's "
                "append-only triggers and rewrite the log.",
                hint=hint,
                id="govsite.W010",
            )
        )
    if owns_audit:
        found.append(
            checks.Warning(
                f"the app connects to PostgreSQL as {user}, which owns (or is a member of the owner of) the "
                f"audit table {table}: it can ALTER, TRUNCATE it and disable its triggers.",
                hint=hint,
                id="govsite.W011",
            )
        )
    return found


@checks.register(checks.Tags.database)
def check_app_role(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """A database check: run by `migrate` (before it switches to the owner) and `check --database default`;
    silent without a database (`check --deploy` alone) and on SQLite."""
    if not databases or "default" not in databases:
        return []
    return role_warnings(connections["default"])
