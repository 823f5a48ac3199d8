from django.apps import AppConfig


class AtoGatewayConfig(AppConfig):
    name = "ato_gateway"
