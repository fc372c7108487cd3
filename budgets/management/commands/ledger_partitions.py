"""`python manage.py ledger_partitions [--month YYYY-MM]`: the ledger's monthly partitions (PostgreSQL).

Without --month, what the daily job does: this month and LEDGER_PARTITIONS_AHEAD_MONTHS ahead. With it,
that month (e.g. one the default partition holds rows of), its rows moved out of the default."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from budgets import partitions


def _month(value: str) -> partitions.Month:
    try:
        return partitions.Month(date.fromisoformat(f"{value}-01"))
    except ValueError as exc:
        raise CommandError(f"--month must be YYYY-MM, not {value!r}") from exc


class Command(BaseCommand):
    help = "Create the ledger's monthly partitions (PostgreSQL); lists rows the default partition holds."

    def add_arguments(self, parser):
        parser.add_argument("--month", type=_month, help="One month to create (YYYY-MM).")

    def handle(self, *args, month=None, **options):
        if not partitions.is_partitioned():
            self.stdout.write("The ledger is a plain table here (SQLite): nothing to do.")
            return
        made = [month.name] if month and partitions.ledger_partition_create(month) else []
        if month is None:
            made = partitions.ledger_partitions_ensure()
        self.stdout.write(f"created: {', '.join(made) or 'none'}")
        for start, rows in partitions.default_partition_months():
            self.stdout.write(self.style.WARNING(f"default partition: {start:%Y-%m}: {rows} rows"))
