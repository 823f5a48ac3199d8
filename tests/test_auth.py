"""Sign-in: password, then a TOTP second factor (enrolment with QR and backup codes), throttling, expiry."""

from __future__ import annotations

import time

import pytest
from django.test import Client as HttpClient
from django.test import override_settings
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.capabilities import Role
from portal.models import AuditEvent
from tests.conftest import PASSWORD, current_code, make_user, verified_client

pytestmark = pytest.mark.django_db


def sign_in(http: HttpClient, username: str, password: str = PASSWORD, practice: str = "harbour-tax"):  # type: ignore[no-untyped-def]
    """The sign-in form; the practice code defaults to the `practice` fixture's (Harbour Tax)."""
    return http.post(reverse("portal:login"), {"practice": practice, "username": username, "password": password})


def test_password_alone_does_not_reach_the_dashboard(admin):
    http = HttpClient()
    response = sign_in(http, "alice")
    assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_verify")
    assert http.get(reverse("portal:dashboard"))["Location"] == reverse("portal:mfa_verify")
    assert http.get(reverse("clients:list"))["Location"] == reverse("portal:mfa_verify")


def test_totp_code_completes_sign_in_and_is_audited(admin):
    http = HttpClient()
    sign_in(http, "alice")
    good = http.post(reverse("portal:mfa_verify"), {"token": current_code(admin)})
    assert good.status_code == 302
    assert http.get(reverse("portal:dashboard")).status_code == 200
    assert AuditEvent.objects.filter(actor=admin, action="login.succeeded").exists()


def test_wrong_code_is_refused_audited_and_throttled(admin):
    http = HttpClient()
    sign_in(http, "alice")
    bad = http.post(reverse("portal:mfa_verify"), {"token": "000000"})
    assert "That code is not right" in bad.content.decode()
    assert AuditEvent.objects.filter(actor=admin, action="login.mfa_failed").exists()
    # django-otp doubles a wait after each wrong code; even the right code is refused until it has passed.
    throttled = http.post(reverse("portal:mfa_verify"), {"token": current_code(admin)})
    assert "Too many wrong codes" in throttled.content.decode()
    assert http.get(reverse("portal:dashboard")).status_code == 302


def test_first_sign_in_enrols_an_authenticator_and_issues_backup_codes(practice):
    make_user(practice, "newbie", Role.AGENT, mfa=False)
    http = HttpClient()
    assert sign_in(http, "newbie")["Location"] == reverse("portal:mfa_enrol")
    page = http.get(reverse("portal:mfa_enrol")).content.decode()
    assert "<svg" in page and "otpauth" not in page  # the QR is drawn inline; the secret URI is not in the HTML
    device = TOTPDevice.objects.get(user__username="newbie", confirmed=False)
    code = f"{totp(device.bin_key):06d}"
    response = http.post(reverse("portal:mfa_enrol"), {"token": code})
    assert response.status_code == 200
    codes = response.context["codes"]
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert http.get(reverse("portal:dashboard")).status_code == 200
    # A backup code signs in once, and only once.
    http2 = HttpClient()
    sign_in(http2, "newbie")
    assert http2.post(reverse("portal:mfa_verify"), {"token": codes[0]}).status_code == 302
    http3 = HttpClient()
    sign_in(http3, "newbie")
    assert http3.post(reverse("portal:mfa_verify"), {"token": codes[0]}).status_code == 200
    assert StaticToken.objects.filter(device__user__username="newbie").count() == 9


def test_repeated_wrong_passwords_lock_the_account_for_that_address(admin):
    http = HttpClient()
    for _ in range(4):
        assert sign_in(http, "alice", "wrong-password").status_code == 200
    assert sign_in(http, "alice", "wrong-password").status_code == 429  # the fifth failure locks
    locked = sign_in(http, "alice", PASSWORD)  # and now even the right password is refused
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert AuditEvent.objects.filter(action="login.failed", practice=admin.practice).count() == 4
    assert AuditEvent.objects.filter(action="login.locked_out", practice=admin.practice).count() == 2


def test_deactivating_a_leaver_ends_their_session_at_once(admin, agent):
    agent_http = verified_client(agent)
    assert agent_http.get(reverse("clients:list")).status_code == 200
    admin_http = verified_client(admin)
    assert admin_http.post(reverse("portal:staff_deactivate", args=[agent.pk])).status_code == 302
    after = agent_http.get(reverse("clients:list"))
    assert after.status_code == 302 and after["Location"].startswith(reverse("portal:login"))
    assert sign_in(HttpClient(), "bob").status_code == 200  # and cannot sign in again


@override_settings(SESSION_IDLE_TIMEOUT_SECONDS=60)
def test_idle_session_expires(agent):
    http = verified_client(agent)
    assert http.get(reverse("portal:dashboard")).status_code == 200
    session = http.session
    session["last_seen"] = int(time.time()) - 3600
    session.save()
    response = http.get(reverse("portal:dashboard"))
    assert response.status_code == 302 and "expired=1" in response["Location"]


def test_htmx_request_without_mfa_is_redirected_by_header(admin):
    http = HttpClient()
    sign_in(http, "alice")
    response = http.get(reverse("clients:list"), headers={"HX-Request": "true"})
    assert response.status_code == 204 and response["HX-Redirect"] == reverse("portal:mfa_verify")


def test_a_backup_code_does_not_count_against_the_authenticator(practice):
    """Signing in with backup codes (a lost phone) must not throttle the authenticator."""
    from portal.services import mfa_replace_backup_codes

    user = make_user(practice, "nophone", Role.AGENT)
    codes = mfa_replace_backup_codes(user=user)
    for code in codes[:2]:
        http = HttpClient()
        sign_in(http, "nophone")
        assert http.post(reverse("portal:mfa_verify"), {"token": code}).status_code == 302
    http = HttpClient()
    sign_in(http, "nophone")
    assert http.post(reverse("portal:mfa_verify"), {"token": current_code(user)}).status_code == 302
    assert TOTPDevice.objects.get(user=user).throttling_failure_count == 0


def test_mfa_reset_ends_sessions_so_a_stolen_session_cannot_enrol(admin, agent, login):
    """Whoever has the lost phone may also have a signed-in browser: it must not be able to enrol its own app."""
    stolen = verified_client(agent)
    assert stolen.get(reverse("portal:dashboard")).status_code == 200
    login(admin).post(reverse("portal:staff_reset_mfa", args=[agent.pk]))
    response = stolen.get(reverse("portal:mfa_enrol"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


@override_settings(SESSION_IDLE_TIMEOUT_SECONDS=60)
def test_progress_polling_does_not_keep_an_idle_session_alive(agent):
    http = verified_client(agent)
    http.get(reverse("portal:dashboard"))
    session = http.session
    session["last_seen"] = int(time.time()) - 50
    session.save()
    http.get(reverse("portal:dashboard"), headers={"X-Poll": "1", "HX-Request": "true"})
    assert abs(http.session["last_seen"] - (int(time.time()) - 50)) <= 1
