from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import AppConfig

# Domain apps add a dashboard panel here in their AppConfig.ready(); the portal imports no domain app.
DASHBOARD_PANELS: list[Callable[[Any], dict[str, Any]]] = []


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Practice portal"
