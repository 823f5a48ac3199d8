from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import AppConfig

# Domain apps add a dashboard panel here in their AppConfig.ready(); the portal imports no domain app.
DASHBOARD_PANELS: list[Callable[[Any], dict[str, Any]]] = []
# Periodic jobs, as keyword arguments for rq.cron.register; portal/cron.py hands them to RQ's cron scheduler.
CRON_JOBS: list[dict[str, Any]] = []


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Practice portal"

    def ready(self) -> None:
        from portal.jobs import verify_audit_chains

        CRON_JOBS.append({"func": verify_audit_chains, "queue_name": "low", "cron": "15 2 * * *"})
