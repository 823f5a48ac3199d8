from django.apps import AppConfig


class AtoSandboxConfig(AppConfig):
    name = "ato_sandbox"
