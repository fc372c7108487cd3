from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "govsite.gateway"
    label = "gateway"
    verbose_name = "LiteLLM gateway"
