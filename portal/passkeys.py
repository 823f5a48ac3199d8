"""Passkeys (WebAuthn) as a second factor, through django-otp-webauthn: its ceremonies and browser script, with the
portal's names and audit trail.

A passkey is offered only after the password, at the second-factor step beside the authenticator code, and can be
added only by a session that has already passed a second factor (RequireMFAMiddleware keeps the registration URLs
from any other) and whose person has just typed their password again: like new backup codes, a new second factor
must not be had from a session left open on a shared desk. Passwordless sign-in stays off
(settings.OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN): the practice code, username and password come first, always."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.http import HttpResponse, HttpResponseNotAllowed
from django.urls import path
from django.utils import timezone
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from portal.audit import audit_record
from portal.http import PortalRequest
from portal.models import User

# How long after typing the password again the person may add a passkey (one passkey for each time).
CONFIRMATION_SECONDS = 5 * 60
_CONFIRMED_AT = "passkey_password_confirmed_at"


def passkey_registration_confirm(request: PortalRequest) -> None:
    request.session[_CONFIRMED_AT] = int(time.time())


def passkey_registration_confirmed(request: Any) -> bool:
    confirmed_at = request.session.get(_CONFIRMED_AT)
    return isinstance(confirmed_at, int) and 0 <= time.time() - confirmed_at <= CONFIRMATION_SECONDS


class PasswordNeeded(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = "Type your password again, then add the passkey."
    default_code = "password_needed"


class PasskeyHelper(WebAuthnHelper):
    """The library's helper, naming the account as staff know it and recording each new passkey with its audit
    event in one transaction."""

    def get_credential_name(self, user: Any) -> str:
        # What the browser lists among its passkeys: a username alone may be taken in several practices.
        assert isinstance(user, User)
        return f"{user.username}@{user.tenant.code}"

    def get_credential_display_name(self, user: Any) -> str:
        assert isinstance(user, User)
        return f"{user.display_name} ({user.tenant.name})"

    def create_credential(self, user: Any, response: Any, parsed_credential: Any, original_data: dict) -> Any:
        device = super().create_credential(user, response, parsed_credential, original_data)
        device.name = f"Passkey added {timezone.localtime():%-d %b %Y}"
        return device

    def register_complete(self, user: Any, state: dict, data: dict) -> Any:
        with transaction.atomic():
            device = super().register_complete(user, state, data)
            audit_record("mfa.passkey_added", request=self.request, target=user, details={"passkey": device.pk})
        return device


def _refused(exc: Exception) -> str:
    return exc.code if isinstance(exc, exceptions.OTPWebAuthnApiError) else type(exc).__name__


class _PasswordConfirmed:
    """For the registration views: the typed password is checked only for the ceremony's POSTs. Any other method is
    405 first (the library makes its checks before Django looks at the method)."""

    request: Any

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc, no-any-return]

    def check_can_register(self) -> None:
        if not passkey_registration_confirmed(self.request):
            raise PasswordNeeded()


class PasskeyRegistrationBegin(_PasswordConfirmed, BeginCredentialRegistrationView):
    pass


class PasskeyRegistrationComplete(_PasswordConfirmed, CompleteCredentialRegistrationView):
    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().post(*args, **kwargs)
        self.request.session.pop(_CONFIRMED_AT, None)  # the next passkey needs the password again
        return response

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if self.request.user.is_authenticated:
            audit_record("mfa.passkey_refused", request=self.request, details={"reason": _refused(exc)})
        return super().handle_exception(exc)  # type: ignore[no-any-return]


class PasskeyAuthenticationComplete(CompleteCredentialAuthenticationView):
    """The second factor by passkey. The session already holds the password's user (the ceremony is refused
    otherwise, passwordless sign-in being off), and the passkey must be that user's (the library checks)."""

    def complete_auth(self, device: Any) -> Any:
        with transaction.atomic():
            super().complete_auth(device)
            audit_record("login.succeeded", request=self.request, details={"factor": "passkey"})

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if self.request.user.is_authenticated:
            audit_record(
                "login.mfa_failed", request=self.request, details={"factor": "passkey", "reason": _refused(exc)}
            )
        return super().handle_exception(exc)  # type: ignore[no-any-return]


# The names the library's template tags reverse, under its namespace "otp_webauthn" (see portal/urls.py).
urlpatterns = [
    path("registration/begin/", PasskeyRegistrationBegin.as_view(), name="credential-registration-begin"),
    path("registration/complete/", PasskeyRegistrationComplete.as_view(), name="credential-registration-complete"),
    path("authentication/begin/", BeginCredentialAuthenticationView.as_view(), name="credential-authentication-begin"),
    path(
        "authentication/complete/",
        PasskeyAuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]), name="js-i18n-catalog"),
]


def passkeys_of(user: User) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at"))
