"""Create a token for the gateway callback (shown once; govsite keeps only its hash).

python manage.py create_ingest_token "litellm production"
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from budgets.services import ingest_token_create


class Command(BaseCommand):
    help = "Create an ingest token for the LiteLLM callback and print it once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="what the token is for, e.g. the gateway's name")

    def handle(self, *args, name: str, **options):
        try:
            token, secret = ingest_token_create(actor=None, name=name)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stderr.write(f"Ingest token {token.name!r} created. It is shown once; set it on the gateway as:")
        self.stdout.write(f"GOVSITE_INGEST_TOKEN={secret}")
