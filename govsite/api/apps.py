from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "govsite.api"
    label = "api"
    verbose_name = "REST API"
