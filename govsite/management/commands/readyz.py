"""`manage.py readyz`: the /readyz checks from the command line (the worker's and cron's health checks in
docker-compose). Prints the same JSON; exits 1 naming what failed."""

import json

from django.core.management.base import BaseCommand, CommandError

from govsite.ops.health import readiness


class Command(BaseCommand):
    help = "Check the database, Redis (when configured), the gateway's liveness and the spend pull's lag."

    def handle(self, *args, **options):
        ready, body = readiness()
        self.stdout.write(json.dumps(body))
        if not ready:
            raise CommandError(f"not ready: {', '.join(body['failed'])}")
