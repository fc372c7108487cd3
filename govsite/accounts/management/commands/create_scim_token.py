"""`manage.py create_scim_token NAME`: a SCIM bearer token for an identity provider, printed once."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from govsite.accounts import services


class Command(BaseCommand):
    help = "Create a SCIM 2.0 bearer token for an identity provider; the secret is printed once and never stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What uses it (e.g. okta); its changes are audited as scim:<name>.")

    def handle(self, *args, name: str, **options):
        try:
            token, secret = services.scim_token_create(actor=None, name=name)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stderr.write(
            f"SCIM token {token.name} created; it is shown this once. Base URL: {settings.SITE_URL}/scim/v2/"
        )
        self.stdout.write(secret)
