"""`python manage.py export_evidence --from DATE --to DATE --out FILE.zip`: the evidence bundle from the
command line, built in this process. The export is recorded and audited like one made in the site."""

from __future__ import annotations

import getpass
import socket
from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit import services
from audit.reports import in_report_order
from govsite.accounts.models import Team


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = "Build an evidence bundle (ZIP) for a period; prints its SHA-256, row counts and failed checks."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last day, inclusive, YYYY-MM-DD (UTC)")
        parser.add_argument("--out", required=True, help="where to write the ZIP")
        parser.add_argument("--team", action="append", default=[], help="team slug (repeat for more; default all)")
        parser.add_argument("--sample-size", type=int, default=None, help="keys to sample (default 25; 0 for none)")
        parser.add_argument("--seed", default="", help="sample seed (default: a new random one, in the manifest)")

    def handle(self, *args, **options):
        out = Path(options["out"]).expanduser().resolve()
        if out.suffix.lower() != ".zip":
            raise CommandError("--out must name a .zip file")
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a directory")
        teams = list(Team.objects.filter(slug__in=options["team"]))
        missing = sorted(set(options["team"]) - {team.slug for team in teams})
        if missing:
            raise CommandError(f"no team with slug {', '.join(missing)}")
        label = f"manage.py export_evidence ({getpass.getuser()}@{socket.gethostname()})"
        try:
            export = services.evidence_export_create_for_cli(
                label=label,
                period_start=_date(options["start"]),
                period_end=_date(options["end"]),
                teams=teams,
                sample_size=options["sample_size"],
                sample_seed=options["seed"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        services.evidence_export_build(export_id=export.pk, out=out)
        export.refresh_from_db()
        self.stdout.write(f"wrote {out} ({export.file_size} bytes)")
        self.stdout.write(f"sha256 {export.sha256}")
        for name, rows in in_report_order(export.row_counts):
            self.stdout.write(f"  {name}: {rows} rows")
        self.stdout.write(f"audit chain: {'intact' if export.chain_ok else 'BROKEN'}")
        self.stdout.write(f"failed checks: {export.failed_checks}")
