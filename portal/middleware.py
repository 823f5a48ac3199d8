from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.middleware import OTPMiddleware as DjangoOTPMiddleware
from django_otp.models import Device

if TYPE_CHECKING:
    from portal.http import PortalRequest
    from portal.models import User

# Paths a signed-in person may reach before finishing MFA: the passkey's ceremony at the second-factor step and its
# script's messages among them, but not adding a passkey, which needs a second factor passed first.
_MFA_EXEMPT_NAMES = (
    "portal:login",
    "portal:logout",
    "portal:mfa_verify",
    "portal:mfa_enrol",
    "otp_webauthn:credential-authentication-begin",
    "otp_webauthn:credential-authentication-complete",
    "otp_webauthn:js-i18n-catalog",
)


class SessionIdleTimeoutMiddleware:
    """Ends a session after SESSION_IDLE_TIMEOUT_SECONDS without a request. The timestamp is rewritten at most
    once a minute so that busy pages do not turn every read into a session write."""

    def __init__(self, get_response: Callable[[PortalRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PortalRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get("last_seen", now)
            # The absolute lifetime counts from sign-in (portal.apps sets signed_in_at). SESSION_COOKIE_AGE alone
            # would slide: every save of last_seen moves the stored session's expiry on by the full age.
            signed_in_at = int(request.session.get("signed_in_at", now))
            if now - last > settings.SESSION_IDLE_TIMEOUT_SECONDS or now - signed_in_at > settings.SESSION_COOKIE_AGE:
                logout(request)
                return redirect(f"{reverse('portal:login')}?expired=1")
            # A page polling for progress is not a person at work: it must not keep an idle session alive.
            polling = request.headers.get("X-Poll") == "1"
            if not polling and (now - last >= 60 or "last_seen" not in request.session):
                request.session["last_seen"] = now
            response = self.get_response(request)
            # The page's warning before the sign-out (portal.js) keeps its clock by this, after every htmx request.
            if request.user.is_authenticated:
                seen = int(request.session.get("last_seen", now))
                left = max(0, settings.SESSION_IDLE_TIMEOUT_SECONDS - (int(time.time()) - seen))
                response["X-Session-Idle-Remaining"] = str(left)
            return response
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


# The only backend that signs staff in (axes' backend authenticates nobody); its get_user() is ModelBackend's, a
# plain read by pk.
_MODEL_BACKEND = "portal.backends.PracticeBackend"


class OTPMiddleware(DjangoOTPMiddleware):
    """django-otp's OTPMiddleware, in its place in settings.MIDDLEWARE, that reads a verified session's device, user
    and practice in one query instead of three ORM queries (portal/session_user.py has the measurements: ~5.2M of
    the client list's 16.9M instructions per request, against ~0.5M). Nothing is cached: each request still reads
    the rows, so a deactivation, role change, MFA reset or session-epoch change is seen by the very next request.

    The fast path only ever accepts. It takes the session when every check that django.contrib.auth.get_user() and
    django-otp make passes: the session names ModelBackend, the device is the session user's and confirmed, the
    user is active, and the session hash matches the current SECRET_KEY. Anything else (no device yet, a device of
    someone else, a deactivated user, a changed password or session epoch, a hash that matches only a
    SECRET_KEY_FALLBACKS key) goes down the unchanged path of Django and django-otp, which reject, flush or clean the
    session exactly as they always did."""

    def _verify_user_sync(self, request: Any, user: Any) -> Any:
        verified = self._verified_session_user(request)
        if verified is None:
            return super()._verify_user_sync(request, user)
        # AuthenticationMiddleware's lazy user (`user`, not evaluated) resolves to this same object if asked.
        request._cached_user = verified
        return verified

    def _verified_session_user(self, request: Any) -> User | None:
        session = request.session
        try:
            user_id = int(session[SESSION_KEY])
            backend_path = session[BACKEND_SESSION_KEY]
            session_hash = session[HASH_SESSION_KEY]
            label, _, device_id = self._normalize_persistent_id(session[DEVICE_ID_SESSION_KEY]).rpartition("/")
            device_class = apps.get_model(label)
            device_pk = int(device_id)
        except (KeyError, ValueError, TypeError, LookupError):
            return None
        if backend_path != _MODEL_BACKEND or backend_path not in settings.AUTHENTICATION_BACKENDS:
            return None
        if not issubclass(device_class, Device) or not isinstance(session_hash, str):
            return None
        from portal.session_user import confirmed_device_with_user

        device = confirmed_device_with_user(device_class, device_pk, user_id)
        if device is None:
            return None
        found: User = device.user
        if not found.is_active or not constant_time_compare(session_hash, found.get_session_auth_hash()):
            return None
        self._init_user_fields(found)
        found.otp_device = device  # type: ignore[attr-defined]  # django-otp's attribute, as its middleware sets it
        return found
