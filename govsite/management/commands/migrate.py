"""`migrate`, run as the schema's owner: with DATABASE_OWNER_URL set, the migrations connect as the owner role
(so it owns every table they make) and, once they are done, the app role (DATABASE_URL's) is granted what it
needs on every table and sequence (govsite/dbroles.py). The system checks, the app role's included, run first,
as the app. Without DATABASE_OWNER_URL this is Django's migrate on the one connection."""

from django.core.management.commands import migrate
from django.db import connections

from govsite import dbroles


class Command(migrate.Command):
    help = migrate.Command.help + " Runs as DATABASE_OWNER_URL's role when set, then grants the app role."

    def handle(self, *args, **options):
        alias = options["database"]
        app, owner = dbroles.app_role(), dbroles.owner_credentials()
        with dbroles.as_owner(alias) as separate_owner:
            result = super().handle(*args, **options)
            if separate_owner and owner["USER"] != app:
                owner = owner["USER"]
                with connections[alias].cursor() as cursor:
                    dbroles.grant_app_privileges(cursor, owner=owner, app=app)
                if options["verbosity"] >= 1:
                    self.stdout.write(f"Migrated as {owner}; {app} granted its rows (not the schema).")
        return result
