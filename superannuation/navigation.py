"""Where the superannuation pages appear in the portal: the main navigation, the dashboard's panel of what is
due this week and overdue on the practice's worklist, and a client's Super tab."""

from __future__ import annotations

from typing import Any

from portal.http import PortalRequest


def dashboard_panel(request: PortalRequest) -> dict[str, Any]:
    from superannuation import services
    from superannuation.models import SuperFund

    has_funds = SuperFund.objects.visible_to(request.user).exists()
    counts = services.worklist_counts(user=request.user) if has_funds else {"due_week": 0, "overdue": 0, "open": 0}
    return {
        "title": "Super funds: TFN responses",
        "template": "superannuation/_panel.html",
        "has_funds": has_funds,
        **counts,
    }


def register() -> None:
    """Called once from the app's ready()."""
    from portal.apps import CLIENT_TABS, DASHBOARD_PANELS, NAV_ITEMS

    NAV_ITEMS.append(("Super funds", "superannuation:funds", "view_clients"))
    DASHBOARD_PANELS.append(dashboard_panel)
    CLIENT_TABS["super"] = "superannuation:client_tab"
