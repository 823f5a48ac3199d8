"""Passkeys in a real Chromium, with the authenticator Chromium's DevTools protocol provides for tests (a platform
authenticator that holds discoverable keys and verifies its user at once): add a passkey on Your account after
signing in with the authenticator app, sign out, sign in again with the password and the passkey. Backup codes
still work beside it."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import CDPSession, Page, expect

from portal.capabilities import Role
from portal.models import AuditEvent, Practice
from portal.services import mfa_replace_backup_codes
from tests.browser_support import at_dashboard, sign_out
from tests.conftest import PASSWORD, current_code, make_user

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser


def add_virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """The one thing here that is not real: no person touches a key, Chromium's virtual authenticator answers.
    Returns the DevTools session and the authenticator's id in it."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def password_step(page: Page, base_url: str, firm: Practice, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Practice code").fill(firm.code)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{base_url}/mfa/verify/")


def test_add_a_passkey_then_sign_in_with_password_and_passkey(
    page: Page, base_url: str, firm: Practice, settings: Any
) -> None:
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [base_url]  # the live server's port is chosen when it starts
    user = make_user(firm, "pia", Role.AGENT)
    backup_codes = mfa_replace_backup_codes(user=user)
    cdp, authenticator = add_virtual_authenticator(page)

    # First sign-in with the authenticator app; the second-factor page offers no passkey yet.
    password_step(page, base_url, firm, "pia")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    expect(page.get_by_role("button", name="Use your passkey")).to_have_count(0)
    page.get_by_label("Code", exact=True).fill(current_code(user))
    page.get_by_role("button", name="Verify").click()
    at_dashboard(page, base_url)

    page.goto(f"{base_url}/account/")
    expect(page.get_by_text("You have no passkey.")).to_be_visible()
    # The password again first, as for new backup codes.
    passkey_form = page.locator("form", has=page.get_by_role("button", name="Continue to add a passkey"))
    passkey_form.get_by_label("Your password").fill(PASSWORD)
    passkey_form.get_by_role("button", name="Continue to add a passkey").click()
    page.get_by_role("button", name="Add a passkey").click()
    passkeys = page.get_by_test_id("passkeys").get_by_role("listitem")
    expect(passkeys).to_have_count(1)
    expect(passkeys.first).to_contain_text("not used yet")
    # One passkey for each time the password is typed.
    expect(page.get_by_role("button", name="Continue to add a passkey")).to_be_visible()
    stored = WebAuthnCredential.objects.get(user=user)
    assert stored.confirmed
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(held) == 1 and held[0]["isResidentCredential"]
    assert AuditEvent.objects.filter(action="mfa.passkey_added", actor=user).count() == 1
    sign_out(page, base_url)

    # Password, then the passkey instead of a code.
    password_step(page, base_url, firm, "pia")
    page.get_by_role("button", name="Use your passkey").click()
    at_dashboard(page, base_url)
    succeeded = AuditEvent.objects.filter(action="login.succeeded", actor=user).order_by("-seq")
    assert succeeded.values_list("details", flat=True)[0] == {"factor": "passkey"}
    stored.refresh_from_db()
    assert stored.last_used_at is not None
    page.goto(f"{base_url}/account/")
    expect(page.get_by_test_id("passkeys")).to_contain_text("last used")
    sign_out(page, base_url)

    # A backup code still signs in, with the passkey offered beside it.
    password_step(page, base_url, firm, "pia")
    expect(page.get_by_role("button", name="Use your passkey")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(backup_codes[0])
    page.get_by_role("button", name="Verify").click()
    at_dashboard(page, base_url)
    assert succeeded.values_list("details", flat=True)[0] == {"factor": "backup_code"}
