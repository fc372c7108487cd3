from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Benchmarks, the sandbox gateway and the demo: installed for their commands, never used by production."""

    name = "govsite.devtools"
    label = "devtools"
    verbose_name = "Development tooling (not used in production)"
