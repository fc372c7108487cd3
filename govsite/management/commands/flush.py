"""`flush`, run as the schema's owner (the app role has no TRUNCATE): with DATABASE_OWNER_URL set it connects as
the owner. Without resetting sequences (how a transactional test's teardown calls it) only tables that hold
rows are emptied: the append-only audit table refuses TRUNCATE even when empty, so a test harness that has
emptied it already (tests/conftest.py) can flush the rest. A flush of a database whose audit log holds events
is refused, as before."""

import contextlib

from django.apps import apps
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.core.management.commands import flush
from django.core.management.sql import emit_post_migrate_signal
from django.db import connections

from govsite import dbroles


def _tables_with_rows(connection, tables: list[str]) -> list[str]:
    if not tables:
        return []
    quote = connection.ops.quote_name
    union = " UNION ALL ".join(f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(t)})" for t in tables)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(union, tables)
        return [row[0] for row in cursor.fetchall()]


class Command(flush.Command):
    help = flush.Command.help + " Runs as DATABASE_OWNER_URL's role when set."

    def handle(self, **options):
        if options["interactive"]:
            # Django's own questions and output; only non-interactive flushes (tests, scripts) are narrowed.
            with dbroles.as_owner(options["database"]):
                return super().handle(**options)
        alias = options["database"]
        reset_sequences = options.get("reset_sequences", True)
        for app_config in apps.get_app_configs():
            # Django's flush imports each app's management module so their signal handlers are registered.
            with contextlib.suppress(ImportError):
                __import__(f"{app_config.name}.management")
        with dbroles.as_owner(alias):
            connection = connections[alias]
            tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
            emptied = tables if reset_sequences else _tables_with_rows(connection, tables)
            sql_list = connection.ops.sql_flush(
                no_style(), emptied, reset_sequences=reset_sequences, allow_cascade=options.get("allow_cascade", False)
            )
            try:
                connection.ops.execute_sql_flush(sql_list)
            except Exception as exc:
                raise CommandError(f"Database {connection.settings_dict['NAME']} couldn't be flushed: {exc}") from exc
            if tables and not options.get("inhibit_post_migrate", False):
                emit_post_migrate_signal(options["verbosity"], False, alias)
