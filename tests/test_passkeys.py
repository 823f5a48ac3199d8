"""Passkeys as a second factor, without a browser: what a session verified by a passkey may reach, which steps need
which factor, the admin's reset, removal, and the audit trail. The ceremonies themselves, which need an
authenticator, are in test_browser_passkeys.py (a virtual one in Chromium)."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnCredential

from portal.capabilities import Role
from portal.models import AuditEvent, User
from portal.passkeys import CONFIRMATION_SECONDS
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def passkey(user: User, *, confirmed: bool = True) -> WebAuthnCredential:
    """A stored credential as registration leaves one. Its key is never used here: nothing signs with it."""
    return WebAuthnCredential.objects.create(
        user=user,
        name="Passkey",
        confirmed=confirmed,
        credential_id=secrets.token_bytes(32),
        public_key=secrets.token_bytes(77),
        sign_count=0,
    )


def session_with_device(user: User, persistent_id: str) -> HttpClient:
    """A session that has passed the password, and whose second factor is recorded as `persistent_id`."""
    http = HttpClient()
    http.force_login(user, backend="portal.backends.PracticeBackend")
    session = http.session
    session[DEVICE_ID_SESSION_KEY] = persistent_id
    session.save()
    return http


def after_password(username: str) -> HttpClient:
    http = HttpClient()
    response = http.post(
        reverse("portal:login"), {"practice": "harbour-tax", "username": username, "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_verify")
    return http


def test_a_session_verified_by_the_persons_own_passkey_is_verified_and_nothing_else_is(agent, admin):
    own = passkey(agent)
    verified = session_with_device(agent, own.persistent_id)
    assert verified.get(reverse("clients:list")).status_code == 200
    assert verified.get(reverse("portal:account")).context["user"] == agent
    # Someone else's passkey, an unconfirmed one, one since removed, or none at all: back to the second factor.
    unconfirmed = passkey(agent, confirmed=False)
    gone = passkey(agent)
    gone_id = gone.persistent_id
    gone.delete()
    for device_id in (passkey(admin).persistent_id, unconfirmed.persistent_id, gone_id):
        response = session_with_device(agent, device_id).get(reverse("clients:list"))
        assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_verify"), device_id
    no_device = HttpClient()
    no_device.force_login(agent, backend="portal.backends.PracticeBackend")
    assert no_device.get(reverse("clients:list"))["Location"] == reverse("portal:mfa_verify")


def test_a_passkey_is_offered_at_the_second_factor_only_to_whoever_has_one(agent):
    http = after_password("bob")
    page = http.get(reverse("portal:mfa_verify")).content.decode()
    assert "passkey-verification-button" not in page
    passkey(agent)
    page = http.get(reverse("portal:mfa_verify")).content.decode()
    assert 'id="passkey-verification-button"' in page and 'id="otp_webauthn_config"' in page
    # Its ceremony is open to the half-signed-in session (with the passkeys of that person only)...
    begun = http.post(reverse("otp_webauthn:credential-authentication-begin"))
    assert begun.status_code == 200
    allowed = [c["id"] for c in begun.json()["allowCredentials"]]
    assert len(allowed) == 1
    # ...and so is the script's message catalogue, which the page loads.
    assert http.get(reverse("otp_webauthn:js-i18n-catalog")).status_code == 200


def test_nobody_signs_in_by_passkey_alone(agent):
    passkey(agent)
    refused = HttpClient().post(reverse("otp_webauthn:credential-authentication-begin"))
    assert refused.status_code == 403 and refused.json()["code"] == "passwordless_login_disabled"


def test_adding_a_passkey_needs_a_second_factor_passed_first_and_the_password_again(agent, login):
    http = after_password("bob")
    response = http.post(reverse("otp_webauthn:credential-registration-begin"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_verify")
    verified = login(agent)
    begin = reverse("otp_webauthn:credential-registration-begin")
    refused = verified.post(begin)
    assert refused.status_code == 403 and refused.json()["code"] == "password_needed"
    assert "passkey-register-button" not in verified.get(reverse("portal:account")).content.decode()
    wrong = verified.post(reverse("portal:passkey_confirm_password"), {"passkey-password": "not-it"})
    assert wrong.status_code == 400 and verified.post(begin).status_code == 403
    refusal = AuditEvent.objects.get(action="mfa.passkey_refused", actor=agent)  # the wrong password's
    assert refusal.details == {"reason": "password"}
    verified.post(reverse("portal:passkey_confirm_password"), {"passkey-password": PASSWORD})
    assert 'id="passkey-register-button"' in verified.get(reverse("portal:account")).content.decode()
    begun = verified.post(begin)
    assert begun.status_code == 200
    options = begun.json()
    assert options["rp"] == {"id": "localhost", "name": "Practice Portal"}
    assert options["user"]["name"] == "bob@harbour-tax"  # the name alone may be another practice's too
    # The typed password is good for five minutes.
    session = verified.session
    session["passkey_password_confirmed_at"] -= CONFIRMATION_SECONDS + 1
    session.save()
    assert verified.post(begin).status_code == 403


def test_a_refused_passkey_is_audited_and_does_not_sign_in(agent):
    passkey(agent)
    http = after_password("bob")
    http.post(reverse("otp_webauthn:credential-authentication-begin"))
    forged = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
    response = http.post(
        reverse("otp_webauthn:credential-authentication-complete"), forged, content_type="application/json"
    )
    assert response.status_code >= 400
    failed = AuditEvent.objects.get(action="login.mfa_failed", actor=agent)
    assert failed.details["factor"] == "passkey"
    assert http.get(reverse("clients:list"))["Location"] == reverse("portal:mfa_verify")
    assert not AuditEvent.objects.filter(action="login.succeeded", actor=agent).exists()


def test_the_admins_reset_of_the_second_factor_removes_passkeys_too(admin, agent, login):
    own = passkey(agent)
    verified = session_with_device(agent, own.persistent_id)
    login(admin).post(reverse("portal:staff_reset_mfa", args=[agent.pk]))
    assert not WebAuthnCredential.objects.filter(user=agent).exists()
    assert verified.get(reverse("clients:list"))["Location"].startswith(reverse("portal:login"))
    event = AuditEvent.objects.get(action="staff.mfa_reset", object_id=str(agent.pk))
    assert event.details == {"passkeys_removed": 1}


def test_staff_remove_their_own_passkeys_only_and_it_is_audited(agent, admin, login):
    own, theirs = passkey(agent), passkey(admin)
    http = login(agent)
    assert 'data-testid="passkeys"' in http.get(reverse("portal:account")).content.decode()
    assert http.post(reverse("portal:passkey_remove", args=[theirs.pk])).status_code == 404
    assert WebAuthnCredential.objects.filter(pk=theirs.pk).exists()
    http.post(reverse("portal:passkey_remove", args=[own.pk]))
    assert not WebAuthnCredential.objects.filter(pk=own.pk).exists()
    removed = AuditEvent.objects.filter(action="mfa.passkey_removed")
    assert list(removed.values_list("actor", "details")) == [(agent.pk, {"passkey": own.pk})]


def test_a_passkey_of_someone_in_another_practice_opens_nothing_here(agent, other_practice):
    stranger = make_user(other_practice, "bob", Role.AGENT)
    foreign = passkey(stranger)
    response = session_with_device(agent, foreign.persistent_id).get(reverse("clients:list"))
    assert response["Location"] == reverse("portal:mfa_verify")
