"""Sessions and second factors: the absolute lifetime does not slide, a new set of backup codes needs the password
again, the typed authenticator key is base32, and a password change or an admin's reset ends other sessions."""

from __future__ import annotations

import base64
import time
from unittest import mock

import pytest
from django.conf import settings
from django.test import Client as HttpClient
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import AuditEvent
from tests.conftest import PASSWORD, make_user, verified_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-quite-different-passphrase-2026"


def test_the_absolute_lifetime_counts_from_sign_in_and_does_not_slide(agent):
    """A person at work all day (a request every 20 minutes, well inside the idle timeout) is still signed out
    SESSION_COOKIE_AGE after signing in. The wall clock is the one thing a test cannot wait ten hours for: the
    middleware's clock is moved on instead."""
    start = time.time()
    http = verified_client(agent)
    step = 20 * 60
    with mock.patch("portal.middleware.time.time") as clock:
        for elapsed in range(step, settings.SESSION_COOKIE_AGE, step):
            clock.return_value = start + elapsed
            assert http.get(reverse("portal:dashboard")).status_code == 200, f"signed out after {elapsed} s"
        clock.return_value = start + settings.SESSION_COOKIE_AGE + 60
        ended = http.get(reverse("portal:dashboard"))
    assert ended.status_code == 302 and ended["Location"] == f"{reverse('portal:login')}?expired=1"
    assert http.get(reverse("portal:dashboard"))["Location"].startswith(reverse("portal:login"))


def test_new_backup_codes_need_the_password_again(agent):
    http = verified_client(agent)
    StaticDevice.objects.create(user=agent, name="Backup codes", confirmed=True).token_set.create(token="keepme01")
    refused = http.post(reverse("portal:mfa_backup_codes"))
    assert refused.status_code == 400
    wrong = http.post(reverse("portal:mfa_backup_codes"), {"password": "not-my-password"})
    assert wrong.status_code == 400 and "That password is not right." in wrong.content.decode()
    assert list(StaticToken.objects.filter(device__user=agent).values_list("token", flat=True)) == ["keepme01"]
    assert AuditEvent.objects.filter(action="mfa.backup_codes_refused", actor=agent).count() == 2
    made = http.post(reverse("portal:mfa_backup_codes"), {"password": PASSWORD})
    assert made.status_code == 200
    tokens = set(StaticToken.objects.filter(device__user=agent).values_list("token", flat=True))
    assert len(tokens) == 10 and "keepme01" not in tokens
    assert all(token in made.content.decode() for token in tokens)


def test_the_key_to_type_is_base32_and_gives_the_same_codes(practice):
    user = make_user(practice, "newbie", "agent", mfa=False)
    http = HttpClient()
    http.force_login(user, backend="portal.backends.PracticeBackend")
    page = http.get(reverse("portal:mfa_enrol"))
    typed = page.context["secret"]
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    key = typed.replace(" ", "")
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    # What an authenticator app does with it: decode base32 and compute the code.
    decoded = base64.b32decode(key + "=" * (-len(key) % 8))
    assert decoded == device.bin_key
    code = f"{totp(decoded, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert http.post(reverse("portal:mfa_enrol"), {"token": code}).status_code == 200
    assert TOTPDevice.objects.get(pk=device.pk).confirmed


def test_changing_the_password_ends_every_other_session_and_keeps_this_one(agent):
    here, elsewhere = verified_client(agent), verified_client(agent)
    assert elsewhere.get(reverse("portal:dashboard")).status_code == 200
    bad = here.post(
        reverse("portal:password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert bad.status_code == 200 and bad.context["form"].errors
    changed = here.post(
        reverse("portal:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert here.get(reverse("portal:dashboard")).status_code == 200
    assert elsewhere.get(reverse("portal:dashboard"))["Location"].startswith(reverse("portal:login"))
    agent.refresh_from_db()
    assert agent.check_password(NEW_PASSWORD) and not agent.check_password(PASSWORD)
    assert AuditEvent.objects.filter(action="staff.password_changed", actor=agent).count() == 1


def test_an_admin_s_password_reset_ends_the_person_s_sessions_and_gives_a_one_time_link(admin, agent):
    theirs = verified_client(agent)
    assert theirs.get(reverse("portal:dashboard")).status_code == 200
    page = verified_client(admin).post(reverse("portal:staff_reset_password", args=[agent.pk]))
    assert page.status_code == 200
    link = page.context["link"]
    assert theirs.get(reverse("portal:dashboard"))["Location"].startswith(reverse("portal:login"))
    agent.refresh_from_db()
    assert not agent.has_usable_password()
    assert TOTPDevice.objects.filter(user=agent, confirmed=True).exists()  # the second factor stays
    assert AuditEvent.objects.filter(action="staff.password_reset", actor=admin).count() == 1
    fresh = HttpClient()
    chosen = fresh.post(link, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert chosen.status_code == 302
    assert HttpClient().get(link).status_code == 404  # used once
    agent.refresh_from_db()
    assert agent.check_password(NEW_PASSWORD)


def test_an_admin_cannot_reset_their_own_password_from_the_staff_page(admin):
    http = verified_client(admin)
    assert http.post(reverse("portal:staff_reset_password", args=[admin.pk])).status_code == 302
    admin.refresh_from_db()
    assert admin.check_password(PASSWORD)
