"""Run the sandbox gateway (a stand-in LiteLLM proxy) with this site's settings as defaults."""

from django.conf import settings
from django.core.management.base import BaseCommand

from govsite.devtools import sandbox  # litellm itself is imported only when the sandbox serves


class Command(BaseCommand):
    help = "Run the sandbox gateway on SANDBOX_PORT with its state in SANDBOX_DB_PATH."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument("--db", default=str(settings.SANDBOX_DB_PATH), help="SQLite file for the sandbox's state")
        parser.add_argument("--master-key", default=None, help="defaults to LITELLM_MASTER_KEY")

    def handle(self, *args, host, port, db, master_key, **options):
        master_key = master_key or settings.LITELLM_MASTER_KEY
        if not master_key:
            self.stderr.write("No master key: set LITELLM_MASTER_KEY or pass --master-key.")
            raise SystemExit(2)
        sandbox.serve(host=host, port=port, db_path=db, master_key=master_key)
