"""The database cache's table, made on every deployment whatever CACHES says today.

Without Redis the cache is Django's database cache (settings: CACHES), so allauth's failed-login counters
are shared by every process and every server on the database. A migration rather than a step to remember
(`createcachetable`): `migrate` runs everywhere (make demo, CI, docker-compose, a hand install), and a site
that drops Redis later finds the table already there.
"""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

CACHE_TABLE = "govsite_cache"  # settings.DATABASE_CACHE_TABLE


def create(apps, schema_editor):
    # createcachetable's own table definition (it skips a table that exists).
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, CACHE_TABLE, dry_run=False)


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(CACHE_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_scim_attributes_and_provisioning_history")]

    operations = [migrations.RunPython(create, drop)]
