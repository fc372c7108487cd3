"""`python manage.py export_focus --from DATE --to DATE --out FILE.csv|FILE.parquet`: the ledger of a period in
FOCUS 1.2, built in this process a batch at a time with its progress on stderr. Recorded and audited like an
export asked for in the site."""

from __future__ import annotations

import getpass
import socket
from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from budgets.finops import exports
from budgets.models import FocusExport, FocusFormat


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = "Write the ledger of a period as a FOCUS 1.2 file (CSV or Parquet, by --out's extension or --format)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last day, inclusive, YYYY-MM-DD (UTC)")
        parser.add_argument("--out", required=True, help="the file to write (.csv or .parquet)")
        parser.add_argument("--format", choices=FocusFormat.values, default=None, help="default: from --out")
        parser.add_argument(
            "--strict",
            action="store_true",
            help="leave unpriced rows out (FOCUS requires a cost on every row; govsite never books them at $0)",
        )

    def handle(self, *args, **options):
        out = Path(options["out"]).expanduser().resolve()
        fmt = options["format"] or ("parquet" if out.suffix.lower() == ".parquet" else "csv")
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a directory")
        label = f"manage.py export_focus ({getpass.getuser()}@{socket.gethostname()})"
        try:
            export = exports.focus_export_create_for_cli(
                label=label,
                period_start=_date(options["start"]),
                period_end=_date(options["end"]),
                fmt=fmt,
                strict=options["strict"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc

        def progress(totals, ledger_rows: int) -> None:
            share = f"{100 * totals.ledger_rows / ledger_rows:.0f}%" if ledger_rows else "-"
            self.stderr.write(f"  {totals.ledger_rows}/{ledger_rows} ledger rows ({share}), {totals.rows} FOCUS rows")

        exports.focus_export_build(export_id=export.pk, out=out, on_progress=progress)
        export.refresh_from_db()
        if export.status != FocusExport.Status.DONE:
            raise CommandError(f"export #{export.pk} failed: {export.error}")
        self.stdout.write(
            f"{out}: {export.focus_rows} FOCUS rows from {export.ledger_rows_done} ledger rows, "
            f"effective cost {export.effective_cost} USD, {export.unpriced_rows} unpriced rows "
            f"({'left out: --strict' if export.strict else 'null cost, tagged'}), "
            f"sha256 {export.sha256}"
        )
