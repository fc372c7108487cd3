"""Read the gateway's spend logs for whole days into the ledger (idempotent; the watermark is untouched).

python manage.py backfill_spend --from 2026-11-01 --to 2026-11-23
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from budgets.pull import spend_backfill
from budgets.retention import raw_ledger_cutoff
from govsite.gateway.client import GatewayError


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date like 2026-11-01") from exc


class Command(BaseCommand):
    help = "Book the gateway's spend logs of the given days (UTC, both inclusive) into the ledger."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (UTC), inclusive")

    def handle(self, *args, start: str, end: str, **options):
        first, last = _date(start), _date(end)
        if last < first:
            raise CommandError("--to is before --from")
        kept_from = raw_ledger_cutoff().date()
        if first < kept_from:
            # Those weeks' raw rows are pruned, so a request seen again could not be recognised as booked:
            # the rollups (and every total) would count it twice.
            raise CommandError(
                f"--from is before {kept_from}: past the ledger's retention (LEDGER_RETENTION_MONTHS), whose "
                "raw rows are pruned and whose spend is already in the rollups. Start on or after that day."
            )

        def progress(window_start, window_end, result):
            if options["verbosity"] > 1:
                self.stdout.write(f"{window_start:%Y-%m-%d %H:%M} – {window_end:%H:%M}: {result.rows_seen} rows so far")

        try:
            result = spend_backfill(start=first, end=last, progress=progress)
        except GatewayError as exc:
            raise CommandError(
                f"the gateway failed: {exc}. Run the same command again: rows already booked are skipped."
            ) from exc
        self.stdout.write(
            f"{first} – {last}: {result.rows_seen} rows read in {result.pages} pages, {result.inserted} new, "
            f"{result.duplicates} already in the ledger, {result.rejected} invalid"
        )
