from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "govsite.accounts"
    label = "accounts"
    verbose_name = "People and teams"

    def ready(self):
        # Connects the receivers (signals: sessions; mfa: the second factors' audit events).
        # Imported here, not at the top: signals imports models, which the app
        # registry loads only after this module (the pattern Django documents for AppConfig.ready).
        from govsite.accounts import mfa, signals  # noqa: F401
