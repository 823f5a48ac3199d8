from django.apps import AppConfig


class SuperannuationConfig(AppConfig):
    name = "superannuation"
    verbose_name = "Superannuation"

    def ready(self) -> None:
        from . import navigation

        # The pages' places in the portal (navigation, dashboard, a client's tab).
        navigation.register()
