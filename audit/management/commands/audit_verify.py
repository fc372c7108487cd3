from django.core.management.base import BaseCommand

from audit.chain import verify


class Command(BaseCommand):
    help = "Walk the audit hash chain; exit 0 if intact, 1 naming the first bad event."

    def handle(self, *args, **options):
        result = verify()
        if result.ok:
            self.stdout.write(result.line())
            return
        self.stderr.write(result.line())
        raise SystemExit(1)
