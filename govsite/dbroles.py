"""The database role that owns the schema, for DDL the site runs while it is up (the ledger's monthly
partitions: creation ahead, retention's detach and drop). The site's own role owns nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection


@contextmanager
def owner_cursor() -> Iterator:
    """A cursor connected as DATABASE_OWNER_URL when it is set, else the default connection's cursor."""
    url = getattr(settings, "DATABASE_OWNER_URL", "") or ""
    if not url:
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg  # noqa: PLC0415 - only needed when an owner role is configured

    with psycopg.connect(url, autocommit=True) as owner, owner.cursor() as cursor:
        yield cursor
