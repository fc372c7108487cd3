"""`python manage.py verify_evidence FILE.zip`: re-hash every file of an evidence bundle against its
manifest, then set the manifest against the SHA-256 the audit log recorded when the export was built
(when this site's database holds that export). Exit 0 when all match, 1 naming each file that does not."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from audit.evidence import check_against_record, verify_bundle


class Command(BaseCommand):
    help = "Check an evidence bundle's files against its manifest.json, and the manifest against the audit log."

    def add_arguments(self, parser):
        parser.add_argument("bundle", help="the evidence ZIP")
        parser.add_argument(
            "--files-only", action="store_true", help="only the file hashes; do not look the export up in the database"
        )

    def handle(self, *args, **options):
        result = verify_bundle(Path(options["bundle"]))
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"FAIL {problem}")
            raise SystemExit(1)
        self.stdout.write(f"OK {result.files} files match manifest.json (manifest sha256 {result.manifest_sha256})")
        if options["files_only"]:
            return
        record = check_against_record(result)
        if record.ok is False:
            self.stderr.write(f"FAIL {record.message}")
            raise SystemExit(1)
        self.stdout.write(f"{'OK' if record.ok else 'NOTE'} {record.message}")
