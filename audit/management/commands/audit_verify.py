"""`python manage.py audit_verify`: walk the hash chain, check PostgreSQL's append-only triggers, and set the
chain against the signed checkpoints kept outside the database. Exit 0 when all hold, 1 naming each problem."""

from django.core.management.base import BaseCommand

from audit.chain import append_only_problems, verify
from audit.checkpoints import checkpoint_dir, verify_checkpoints


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain, check its append-only triggers and set it against the signed checkpoints; "
        "exit 0 if intact, 1 naming what was found."
    )

    def handle(self, *args, **options):
        result = verify()
        report = verify_checkpoints()
        problems = ([] if result.ok else [result.line()]) + [f"FAIL {p}" for p in append_only_problems()]
        problems += [f"FAIL {p}" for p in report.problems]
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise SystemExit(1)
        self.stdout.write(result.line())
        if report.last is None:
            self.stdout.write(f"NOTE no checkpoint in {checkpoint_dir()} yet")
        else:
            self.stdout.write(
                f"OK {report.checkpoints} checkpoints signed by {report.key_fingerprint}, "
                f"the last at event #{report.last.seq} ({report.last.created_at})"
            )
