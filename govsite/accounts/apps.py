from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "govsite.accounts"
    label = "accounts"
    verbose_name = "People and teams"

    def ready(self):
        from govsite.accounts import signals  # noqa: F401
