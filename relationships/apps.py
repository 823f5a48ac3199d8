from django.apps import AppConfig


class RelationshipsConfig(AppConfig):
    name = "relationships"
    verbose_name = "Relationships"

    def ready(self) -> None:
        from ato_gateway import handlers
        from ato_gateway.api import curel
        from ato_gateway.wire import registry
        from portal.apps import CLIENT_TABS, CRON_JOBS, DASHBOARD_PANELS, NAV_ITEMS

        from . import reconcile, services, views_reconcile

        NAV_ITEMS.append(("Relationships", "relationships:home", "view_clients"))
        CLIENT_TABS["relationships"] = "relationships:client_tab"

        # Every CUREL answer about a person's request comes back to one handler; the list's pages go to the
        # reconciliation, which registers its own.
        for key in (curel.SEARCH, curel.VALIDATE, curel.SUBMIT, curel.VALIDATE_REMOVE, curel.REMOVE):
            action = registry.get(key)
            handlers.register(action.service, action.action, services.on_answer)

        # Reconciliation: the List pages, the lost-access panel, and the nightly run.
        action = registry.get(curel.LIST)
        handlers.register(action.service, action.action, reconcile.on_list_page)
        DASHBOARD_PANELS.append(views_reconcile.dashboard_panel)
        CRON_JOBS.append(
            {"func": "relationships.jobs_reconcile.reconcile_nightly", "queue_name": "low", "cron": "30 1 * * *"}
        )
