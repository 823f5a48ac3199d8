"""Relationships pages: add a client from the ATO, a client's links, their removal and history."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest


@capability_required(Capability.VIEW_CLIENTS)
def home(request: PortalRequest) -> HttpResponse:
    return render(request, "relationships/home.html", {})
