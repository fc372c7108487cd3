from django.apps import AppConfig


class GovsiteConfig(AppConfig):
    name = "govsite"
    verbose_name = "govsite"

    def ready(self):
        # Registers the database check on the app's role (a superuser, or the audit table's owner).
        from govsite import dbroles  # noqa: F401
