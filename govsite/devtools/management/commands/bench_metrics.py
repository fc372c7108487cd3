"""`python manage.py bench_metrics`: what one /metrics scrape costs at a large installation's size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/govsite DEBUG=false SECRET_KEY=bench \\
        python manage.py bench_metrics [--rollups 500000] [--outbox 20000] [--scrapes 30]

Works in a database of its own on DATABASE_URL's server (`--database`, default govsite_metrics_bench), made and
migrated when missing and filled once (a marker keys the data set; `--regenerate` starts over): `--rollups`
DailyRollup rows (days × keys × models: about a year of a 10-million-request ledger), `--outbox` finished rows in
each outbox table with a few hundred still waiting, quarantined rows and ingest tokens. Then times govsite's
own families (the collector, as /metrics runs it) over `--scrapes` scrapes after a warm-up and prints the
median, the p95 and the number of queries of one scrape.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import timedelta
from decimal import Decimal

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import generate_latest

from budgets.models import AlertDelivery, DailyRollup, IngestToken, QuarantinedRow
from govsite.accounts.models import SlackMessage, Team
from govsite.ops.views import GOVSITE_REGISTRY
from keys.models import GatewayCommand

MAINTENANCE_DB = "postgres"
BATCH = 5000


class Command(BaseCommand):
    help = "Time one /metrics scrape of govsite's own families at a large installation's size."

    def add_arguments(self, parser):
        parser.add_argument("--rollups", type=int, default=500_000)
        parser.add_argument("--outbox", type=int, default=20_000, help="finished rows per outbox table")
        parser.add_argument("--scrapes", type=int, default=30)
        parser.add_argument("--database", default="govsite_metrics_bench")
        parser.add_argument("--regenerate", action="store_true")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_metrics needs PostgreSQL: set DATABASE_URL.")
        name = options["database"]
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name) or name == connection.settings_dict["NAME"]:
            raise CommandError("--database must be a plain lower-case name other than DATABASE_URL's database.")
        home = connection.settings_dict["NAME"]
        self._use(MAINTENANCE_DB)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            exists = cursor.fetchone() is not None
            if exists and options["regenerate"]:
                cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                exists = False
            if not exists:
                cursor.execute(f'CREATE DATABASE "{name}"')
        self._use(name)
        try:
            call_command("migrate", verbosity=0)
            self._fill(options["rollups"], options["outbox"])
            self._time(options["scrapes"])
        finally:
            self._use(home)

    def _use(self, name: str) -> None:
        for conn in connections.all(initialized_only=True):
            conn.close()
        connection.settings_dict["NAME"] = name

    def _fill(self, rollups: int, outbox: int) -> None:
        if DailyRollup.objects.count() == rollups and GatewayCommand.objects.count() >= outbox:
            self.stdout.write(f"reusing the data set: {rollups:,} rollup rows, {outbox:,} rows per outbox")
            return
        started = time.monotonic()
        DailyRollup.objects.all().delete()
        today = timezone.now().date()
        keys, models = 2000, 7
        for start in range(0, rollups, BATCH):
            DailyRollup.objects.bulk_create(
                [
                    DailyRollup(
                        day=today - timedelta(days=i // (keys * models)),
                        token_hash=f"bench-key-{i % keys}",
                        model=f"bench-model-{(i // keys) % models}",
                        requests=20,
                        unpriced_count=1 if i % 50 == 0 else 0,
                        cost=Decimal("0.5"),
                    )
                    for i in range(start, min(start + BATCH, rollups))
                ]
            )
        team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        kinds = GatewayCommand.Kind.values
        GatewayCommand.objects.all().delete()
        AlertDelivery.objects.all().delete()
        SlackMessage.objects.all().delete()
        for start in range(0, outbox, BATCH):
            size = min(BATCH, outbox - start)
            GatewayCommand.objects.bulk_create(
                GatewayCommand(kind=kinds[i % len(kinds)], status="done") for i in range(size)
            )
            AlertDelivery.objects.bulk_create(
                AlertDelivery(channel="email", subject="s", body="b", status="sent") for _ in range(size)
            )
            SlackMessage.objects.bulk_create(
                SlackMessage(team=team, event="e", text="t", status="sent") for _ in range(size)
            )
        GatewayCommand.objects.bulk_create(GatewayCommand(kind=kinds[i % len(kinds)]) for i in range(300))
        AlertDelivery.objects.bulk_create(
            AlertDelivery(channel="slack", subject="s", body="b", status="failed", team=team) for _ in range(50)
        )
        QuarantinedRow.objects.all().delete()
        QuarantinedRow.objects.bulk_create(
            QuarantinedRow(fingerprint=f"{i:064x}", raw="{}", reason="bench", source="pull") for i in range(1000)
        )
        IngestToken.objects.get_or_create(name="bench", defaults={"token_hash": "0" * 64, "prefix": "bench"})
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.stdout.write(f"filled in {time.monotonic() - started:.0f} s")

    def _time(self, scrapes: int) -> None:
        generate_latest(GOVSITE_REGISTRY)  # warm-up
        with CaptureQueriesContext(connection) as captured:
            generate_latest(GOVSITE_REGISTRY)
        times = []
        for _ in range(scrapes):
            started = time.perf_counter()
            generate_latest(GOVSITE_REGISTRY)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[max(0, int(round(0.95 * len(times) + 0.5)) - 1)]
        self.stdout.write(
            f"govsite families over {DailyRollup.objects.count():,} rollup rows and "
            f"{GatewayCommand.objects.count():,} gateway commands: median {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms, {len(captured)} queries per scrape ({scrapes} scrapes)"
        )
