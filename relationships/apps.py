from django.apps import AppConfig


class RelationshipsConfig(AppConfig):
    name = "relationships"
    verbose_name = "Relationships"

    def ready(self) -> None:
        from ato_gateway import api
        from portal.apps import CLIENT_TABS, CRON_JOBS, DASHBOARD_PANELS, NAV_ITEMS, RESTRICTED_VISIBLE

        from . import services
        from .bulk import services as bulk
        from .reconcile import services as reconcile
        from .reconcile import views as reconcile_views

        NAV_ITEMS.append(("Relationships", "relationships:home", "view_clients"))
        CLIENT_TABS["relationships"] = "relationships:client_tab"
        # A request's audit events and its messages to the ATO, for staff restricted to groups.
        RESTRICTED_VISIBLE["relationships.AtoRequest"] = services.visible_request_ids
        RESTRICTED_VISIBLE[services.SUBJECT] = services.visible_request_ids

        # The answers to a person's steps come back to one handler, a bulk link's rows to another; the list's pages
        # go to the reconciliation, which reads each page as a stream of its clients.
        api.register(services.PURPOSE, services.on_answer)
        api.register(bulk.PURPOSE, bulk.on_row_answer)
        api.register(reconcile.PURPOSE, reconcile.on_list_page, stream="clients")
        # Reconciliation: the lost-access panel, and the nightly run.
        DASHBOARD_PANELS.append(reconcile_views.dashboard_panel)
        CRON_JOBS.append(
            {"func": "relationships.reconcile.jobs.reconcile_nightly", "queue_name": "low", "cron": "30 1 * * *"}
        )
