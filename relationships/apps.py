from django.apps import AppConfig


class RelationshipsConfig(AppConfig):
    name = "relationships"
    verbose_name = "Relationships"

    def ready(self) -> None:
        from ato_gateway import handlers
        from ato_gateway.api import curel
        from ato_gateway.wire import registry
        from portal.apps import NAV_ITEMS

        from . import services

        NAV_ITEMS.append(("Relationships", "relationships:home", "view_clients"))

        # Every CUREL answer about a person's request comes back to one handler; the list's pages go to the
        # reconciliation, which registers its own.
        for key in (curel.SEARCH, curel.VALIDATE, curel.SUBMIT, curel.VALIDATE_REMOVE, curel.REMOVE):
            action = registry.get(key)
            handlers.register(action.service, action.action, services.on_answer)
