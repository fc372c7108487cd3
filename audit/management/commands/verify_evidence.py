"""`python manage.py verify_evidence FILE.zip`: re-hash every file of an evidence bundle against its
manifest and check its signed audit checkpoint with the public key alone (offline); then, on a site, set the
manifest against the SHA-256 the audit log recorded for the export, check the bundle was signed with this
site's key, and that the live chain still holds the bundle's head at its sequence number. Exit 0 when all
match, 1 naming each problem."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.evidence_check import (
    check_against_record,
    check_bundle_checkpoint,
    check_checkpoint_against_site,
    verify_bundle,
)


class Command(BaseCommand):
    help = (
        "Check an evidence bundle's files against its manifest.json and its signed audit checkpoint; on a site, "
        "the manifest against the audit log and the checkpoint's head against the live chain."
    )

    def add_arguments(self, parser):
        parser.add_argument("bundle", help="the evidence ZIP")
        parser.add_argument(
            "--offline",
            "--files-only",
            dest="offline",
            action="store_true",
            help="only what the bundle proves on its own (file hashes, the checkpoint's signature); no database",
        )
        parser.add_argument(
            "--public-key",
            help="PEM file of the site's checkpoint public key (from its audit page); default: the bundle's own copy",
        )

    def handle(self, *args, **options):
        result = verify_bundle(Path(options["bundle"]))
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"FAIL {problem}")
            raise SystemExit(1)
        self.stdout.write(f"OK {result.files} files match manifest.json (manifest sha256 {result.manifest_sha256})")
        key_pem = None
        if options["public_key"]:
            try:
                key_pem = Path(options["public_key"]).read_bytes()
            except OSError as exc:
                raise CommandError(f"--public-key: {exc}") from exc
        signed = check_bundle_checkpoint(Path(options["bundle"]), key_pem)
        if signed.ok is False:
            self.stderr.write(f"FAIL {signed.message}")
            raise SystemExit(1)
        self.stdout.write(f"{'OK' if signed.ok else 'NOTE'} {signed.message}")
        if options["offline"]:
            return
        record = check_against_record(result)
        problems = [record.message] if record.ok is False else []
        problems += check_checkpoint_against_site(signed)
        if problems:
            for problem in problems:
                self.stderr.write(f"FAIL {problem}")
            raise SystemExit(1)
        self.stdout.write(f"{'OK' if record.ok else 'NOTE'} {record.message}")
        if signed.checkpoint is not None:
            self.stdout.write(
                f"OK the live chain still holds event #{signed.checkpoint.seq} with the bundle's head hash"
            )
