"""`manage.py db_roles --superuser-url URL`: make (or bring up to date) the two PostgreSQL roles.

The roles and their passwords are read from the settings: the owner from DATABASE_OWNER_URL, the app from
DATABASE_URL. Connected as a superuser to the app's database, it creates or alters both login roles (neither a
superuser; the app a member of no role), makes the owner the owner of the database and of every table,
sequence, view and function in schema public (an existing deployment migrated as a superuser is handed over),
and grants the app role SELECT, INSERT, UPDATE, DELETE on every table but the audit log (SELECT, INSERT), and
on what the owner creates later (ALTER DEFAULT PRIVILEGES). Idempotent: run it before every `migrate`.
`--createdb` lets the owner create databases (pytest makes its test database as the owner: CI, developers).
"""

import dj_database_url
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from govsite import dbroles


class Command(BaseCommand):
    help = "Create or update the owner and app PostgreSQL roles (DATABASE_OWNER_URL, DATABASE_URL) and their grants."

    def add_arguments(self, parser):
        parser.add_argument(
            "--superuser-url", required=True, help="a PostgreSQL superuser, e.g. postgres://postgres@host:5432/postgres"
        )
        parser.add_argument("--createdb", action="store_true", help="let the owner create databases (tests)")

    def handle(self, *args, superuser_url, createdb, **options):
        if connection.vendor != "postgresql":
            raise CommandError("db_roles is for PostgreSQL: DATABASE_URL is not a PostgreSQL database.")
        if not settings.DATABASE_OWNER_URL:
            raise CommandError("Set DATABASE_OWNER_URL (the owner's role) and DATABASE_URL (the app's role).")
        owner = dj_database_url.parse(settings.DATABASE_OWNER_URL)
        app = dict(connection.settings_dict)  # a copy: the connection is switched to the superuser below
        admin = dj_database_url.parse(superuser_url)
        if owner["USER"] == app["USER"]:
            raise CommandError(f"DATABASE_OWNER_URL and DATABASE_URL both name {app['USER']}: they must be two roles.")
        credentials = {key: admin.get(key) or "" for key in ("USER", "PASSWORD", "HOST", "PORT")}
        if admin["USER"] in (owner["USER"], app["USER"]):
            raise CommandError(f"{admin['USER']} is the superuser: the owner and the app must be roles of their own.")
        # One transaction: the roles, the ownership and the grants all change, or none does.
        with dbroles.connected_as("default", credentials), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if not cursor.fetchone()[0]:
                raise CommandError(f"--superuser-url connects as {admin['USER']}, who is not a superuser.")
            try:
                done = dbroles.ensure_roles(
                    cursor,
                    database=app["NAME"],
                    owner=owner["USER"],
                    owner_password=owner.get("PASSWORD") or "",
                    app=app["USER"],
                    app_password=app.get("PASSWORD") or "",
                    createdb=createdb,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        for line in done:
            self.stdout.write(line)
