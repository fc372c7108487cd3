"""The database roles in tests: the suite connects as the app role (DATABASE_URL) when DATABASE_OWNER_URL names a
separate owner, as CI does; the tampering tests play a PostgreSQL superuser explicitly, as an attacker must be.

TEST_DATABASE_SUPERUSER_URL (CI: postgres://postgres@127.0.0.1:5432/postgres) names that superuser; only its user,
password, host and port are used, on the test database. Without separate roles the one connection is already
a superuser (a developer's plain PostgreSQL URL), and the tampering happens on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dj_database_url
from django.db import connection, connections

from tests.gateway_fixtures import unavailable

SUPERUSER_URL_ENV = "TEST_DATABASE_SUPERUSER_URL"


def is_superuser(cursor) -> bool:
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    return bool(cursor.fetchone()[0])


def current_role(cursor) -> str:
    cursor.execute("SELECT current_user")
    return cursor.fetchone()[0]


def superuser_wrapper():
    """A connection of its own, as the superuser of TEST_DATABASE_SUPERUSER_URL, to the test database."""
    url = os.environ.get(SUPERUSER_URL_ENV)
    if not url:
        unavailable(f"the app's role is not a superuser: set {SUPERUSER_URL_ENV} for the tests that play one")
    parsed = dj_database_url.parse(url)
    credentials = {key: parsed.get(key) or "" for key in ("USER", "PASSWORD", "HOST", "PORT")}
    backend = type(connections["default"])  # the backend's DatabaseWrapper (`connection` is only a proxy)
    return backend({**connection.settings_dict, **credentials, "CONN_MAX_AGE": 0}, alias="superuser")


@contextmanager
def superuser_cursor() -> Iterator:
    """A cursor as a PostgreSQL superuser. The test's own connection when it is one; otherwise a connection of
    its own, in autocommit: it sees only what is committed, so a test using it is `transaction=True`."""
    with connection.cursor() as cursor:
        if is_superuser(cursor):
            yield cursor
            return
    wrapper = superuser_wrapper()
    try:
        with wrapper.cursor() as cursor:
            yield cursor
    finally:
        wrapper.close()
