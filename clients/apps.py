from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig

if TYPE_CHECKING:
    from portal.http import PortalRequest


def clients_panel(request: PortalRequest) -> dict[str, Any]:
    from clients.models import Client, ImportJob

    user = request.user
    return {
        "title": "Client register",
        "template": "clients/_dashboard_panel.html",
        "client_count": Client.objects.visible_to(user).count(),
        "imports": ImportJob.objects.visible_to(user).defer("content")[:3],
    }


def visible_client_ids(user: Any) -> Any:
    from django.db.models import CharField
    from django.db.models.functions import Cast

    from clients.models import Client

    return Client.objects.visible_to(user).annotate(key=Cast("pk", CharField())).values("key")


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Client register"

    def ready(self) -> None:
        from portal.apps import CRON_JOBS, DASHBOARD_PANELS, RESTRICTED_VISIBLE

        DASHBOARD_PANELS.append(clients_panel)
        RESTRICTED_VISIBLE["clients.Client"] = visible_client_ids
        CRON_JOBS.append({"func": "clients.jobs.sweep_stalled_imports", "queue_name": "low", "interval": 300})
        # Hourly, so an abandoned upload's file (full TFNs) outlives its seven days by an hour at most.
        CRON_JOBS.append({"func": "clients.jobs.expire_abandoned_imports", "queue_name": "low", "interval": 3600})
