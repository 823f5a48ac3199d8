from __future__ import annotations

from typing import Any

from django.urls import reverse

from portal.capabilities import Capability
from portal.http import PortalRequest


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
    if can(Capability.MANAGE_STAFF):
        items += [("Staff", "portal:staff_list"), ("Access review", "portal:access_review")]
    if can(Capability.VIEW_AUDIT):
        items.append(("Audit trail", "portal:audit_search"))
    if can(Capability.OPERATE_GATEWAY):
        items.append(("Gateway", "ato_gateway:console"))
    from portal.apps import BANNERS

    banners = [banner for source in BANNERS for banner in source(request)]
    # Links as (label, href, is the current page), resolved here rather than by a {% url %} tag and a
    # `request.resolver_match.view_name` lookup per item in base.html: the template engine made those ~4x dearer.
    match = request.resolver_match
    current = match.view_name if match else None
    links = [(label, reverse(name), name == current) for label, name in items]
    # Templates ask `can.EDIT_CLIENTS`: a plain mapping, because Django templates would call an Enum class.
    granted = user.capabilities
    return {"nav": links, "can": {c.name: c in granted for c in Capability}, "banners": banners}
