from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from portal.capabilities import Capability
from portal.http import PortalRequest
from portal.paths import path_of


def navigation(request: PortalRequest) -> dict[str, Any]:
    """Navigation shows only what the person can open."""
    user = request.user
    if not user.is_authenticated or not user.is_verified():
        return {"nav": []}
    can = user.has_capability
    items: list[tuple[str, str]] = [("Dashboard", "portal:dashboard")]
    if can(Capability.VIEW_CLIENTS):
        items += [("Clients", "clients:list"), ("Groups", "clients:groups")]
    if can(Capability.IMPORT_CLIENTS):
        items.append(("Import", "clients:import_upload"))
    from portal.apps import BANNERS, NAV_ITEMS

    items += [(label, name) for label, name, capability in NAV_ITEMS if can(Capability(capability))]
    if can(Capability.MANAGE_STAFF):
        items += [("Staff", "portal:staff_list"), ("Access review", "portal:access_review")]
    if can(Capability.VIEW_AUDIT):
        items.append(("Audit trail", "portal:audit_search"))
    if can(Capability.OPERATE_GATEWAY):
        items.append(("Gateway", "ato_gateway:console"))
    banners = [banner for source in BANNERS for banner in source(request)]
    # Links as (label, href, is the current page), for base.html to print as they are.
    match = request.resolver_match
    current = match.view_name if match else None
    links = [(label, path_of(name), name == current) for label, name in items]
    # Templates ask `can.EDIT_CLIENTS`: a plain mapping, because Django templates would call an Enum class.
    granted = user.capabilities
    return {
        "nav": links,
        "can": {c.name: c in granted for c in Capability},
        "banners": banners,
        # For the warning before the idle sign-out (portal.js); the middleware sends the same after every request.
        "idle_timeout": idle_seconds_left(request),
        "idle_warning": settings.SESSION_IDLE_WARNING_SECONDS,
    }


def idle_seconds_left(request: PortalRequest) -> int:
    """Seconds until SessionIdleTimeoutMiddleware ends this session if nothing else is done in it."""
    last_seen = request.session.get("last_seen", int(time.time()))
    return max(0, settings.SESSION_IDLE_TIMEOUT_SECONDS - (int(time.time()) - int(last_seen)))
