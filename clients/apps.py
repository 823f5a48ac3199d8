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


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Client register"

    def ready(self) -> None:
        from portal.apps import CRON_JOBS, DASHBOARD_PANELS

        DASHBOARD_PANELS.append(clients_panel)
        CRON_JOBS.append({"func": "clients.jobs.sweep_stalled_imports", "queue_name": "low", "interval": 300})
        # Hourly, so an abandoned upload's file (full TFNs) outlives its seven days by an hour at most.
        CRON_JOBS.append({"func": "clients.jobs.expire_abandoned_imports", "queue_name": "low", "interval": 3600})
