"""`python manage.py rebuild_adoption_rollups [--from YYYY-MM-DD] [--to YYYY-MM-DD]`

Recompute PersonDay, TagRollup and LatencyRollup from the ledger for a range of days (default: every
day the ledger holds): after installing the ingest hook on an existing ledger, or to repair. Safe to run
while the gateway is being ingested (the ledger is locked against inserts for the duration, per chunk).
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Min

from adoption import rollups
from budgets.models import SpendRecord

CHUNK_DAYS = 31


class Command(BaseCommand):
    help = "Recompute the adoption rollups (people per day, request tags, latency) from the ledger."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", type=date.fromisoformat, help="First day (UTC), inclusive.")
        parser.add_argument("--to", dest="end", type=date.fromisoformat, help="Last day (UTC), inclusive.")

    def handle(self, *args, start=None, end=None, **options):
        if start is None or end is None:
            bounds = SpendRecord.objects.aggregate(first=Min("time"), last=Max("time"))
            if bounds["first"] is None:
                self.stdout.write("The ledger is empty: nothing to rebuild.")
                return
            start = start or bounds["first"].date()
            end = end or bounds["last"].date()
        if end < start:
            raise CommandError("--to is before --from.")
        day = start
        while day <= end:
            last = min(end, day + timedelta(days=CHUNK_DAYS - 1))
            rollups.rebuild(day, last)
            self.stdout.write(f"rebuilt {day} – {last}")
            day = last + timedelta(days=1)
        self.stdout.write(self.style.SUCCESS(f"Adoption rollups rebuilt for {start} – {end}."))
