from django.apps import AppConfig


class AdoptionConfig(AppConfig):
    name = "adoption"

    def ready(self):
        # Imported here, not at the top: rollups imports models, which the app registry loads only after
        # this module (the pattern Django documents for AppConfig.ready).
        from adoption import rollups

        rollups.register()
