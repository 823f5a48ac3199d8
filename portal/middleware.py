from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

if TYPE_CHECKING:
    from portal.http import PortalRequest

# Paths a signed-in person may reach before finishing MFA.
_MFA_EXEMPT_NAMES = ("portal:login", "portal:logout", "portal:mfa_verify", "portal:mfa_enrol")


class SessionIdleTimeoutMiddleware:
    """Ends a session after SESSION_IDLE_TIMEOUT_SECONDS without a request. The timestamp is rewritten at most
    once a minute so that busy pages do not turn every read into a session write."""

    def __init__(self, get_response: Callable[[PortalRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PortalRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get("last_seen", now)
            if now - last > settings.SESSION_IDLE_TIMEOUT_SECONDS:
                logout(request)
                return redirect(f"{reverse('portal:login')}?expired=1")
            # A page polling for progress is not a person at work: it must not keep an idle session alive.
            polling = request.headers.get("X-Poll") == "1"
            if not polling and (now - last >= 60 or "last_seen" not in request.session):
                request.session["last_seen"] = now
        return self.get_response(request)


class RequireMFAMiddleware:
    """Every staff session must pass a second factor before it reaches anything but the MFA pages."""

    def __init__(self, get_response: Callable[[PortalRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._exempt: tuple[str, ...] | None = None

    def __call__(self, request: PortalRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.is_verified():
            if self._exempt is None:
                self._exempt = tuple(reverse(name).rstrip("/") for name in _MFA_EXEMPT_NAMES)
            path = request.path.rstrip("/")
            if not (path in self._exempt or request.path.startswith(settings.STATIC_URL)):
                from django_otp import devices_for_user

                target = "portal:mfa_verify" if any(devices_for_user(user)) else "portal:mfa_enrol"
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = reverse(target)
                    return response
                return redirect(target)
        return self.get_response(request)
