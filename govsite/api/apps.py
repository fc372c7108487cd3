from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "govsite.api"
    label = "api"
    verbose_name = "REST API"

    def ready(self):
        # Imported here, not at the top: both import models, which the app registry loads only after this
        # module (the pattern Django documents for AppConfig.ready).
        from govsite.accounts.services.people import register_deactivation_hook
        from govsite.api.services import api_tokens_revoke_on_deactivation

        register_deactivation_hook(api_tokens_revoke_on_deactivation)
