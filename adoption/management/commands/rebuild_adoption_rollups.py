"""`python manage.py rebuild_adoption_rollups [--from YYYY-MM-DD] [--to YYYY-MM-DD]`

Recompute the dashboards' rollups (adoption.models: PersonWeek, KeyUse, TeamModelDay, TeamToolDay,
TagRollup, LatencyRollup) from the ledger for a range of days, widened to whole ISO weeks (default: every
day the ledger holds): to repair, or after loading ledger rows by hand. Safe to run while spend is being
ingested (the ledger is locked against inserts for the duration of each chunk). Weeks past the raw
ledger's retention (LEDGER_RETENTION_MONTHS) are left alone: their raw rows are pruned, their rollups
are all that is left of them.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Min

from adoption import rollups
from budgets.models import SpendRecord

CHUNK_DAYS = 31


class Command(BaseCommand):
    help = (
        "Recompute the dashboards' rollups (people per week, teams × models and tools, tags, latency) from the ledger."
    )

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
        kept_from = rollups.rebuildable_from()
        if start < kept_from:
            self.stdout.write(
                f"Weeks before {kept_from} are past the raw ledger's retention: their rollups are kept as they are."
            )
            start = kept_from
        day = start
        while day <= end:
            last = min(end, day + timedelta(days=CHUNK_DAYS - 1))
            rollups.rebuild(day, last)
            self.stdout.write(f"rebuilt {day} – {last}")
            day = last + timedelta(days=1)
        self.stdout.write(self.style.SUCCESS(f"Adoption rollups rebuilt for {start} – {end}."))
