from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from portal.models import User


class PortalRequest(HttpRequest):
    """What a view behind login sees: the practice's staff member (with django-otp's is_verified) and htmx."""

    user: User  # type: ignore[assignment]
    htmx: HtmxDetails
