"""`python manage.py verify_evidence FILE.zip`: re-hash every file of an evidence bundle against its
manifest. Exit 0 when all match, 1 naming each file that does not."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from audit.evidence import verify_bundle


class Command(BaseCommand):
    help = "Check an evidence bundle's files against the SHA-256 in its manifest.json."

    def add_arguments(self, parser):
        parser.add_argument("bundle", help="the evidence ZIP")

    def handle(self, *args, **options):
        result = verify_bundle(Path(options["bundle"]))
        if result.ok:
            self.stdout.write(f"OK {result.files} files match manifest.json (manifest sha256 {result.manifest_sha256})")
            return
        for problem in result.problems:
            self.stderr.write(f"FAIL {problem}")
        raise SystemExit(1)
