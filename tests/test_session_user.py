"""A verified session's device, user and practice are read in one query on every request (portal.middleware's
OTPMiddleware): nothing about the person is cached between requests, and anything the fast path does not accept
goes down Django's and django-otp's own path, which rejects or cleans the session as before."""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.test import Client as HttpClient
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from portal.capabilities import Role
from portal.models import User
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def session_with_device(user: User, persistent_id: str) -> HttpClient:
    http = HttpClient()
    http.force_login(user, backend="portal.backends.PracticeBackend")
    session = http.session
    session[DEVICE_ID_SESSION_KEY] = persistent_id
    session.save()
    return http


def test_a_verified_request_reads_device_user_and_practice_in_one_query(admin, login):
    http = login(admin)
    with CaptureQueriesContext(connection) as captured:
        page = http.get(reverse("portal:account"))
    assert page.status_code == 200
    assert admin.practice.name in page.content.decode()  # the header names the practice, read in that query
    about_the_person = [q["sql"] for q in captured if "portal_user" in q["sql"] or "portal_practice" in q["sql"]]
    assert len(about_the_person) == 1, about_the_person
    assert "otp_totp_totpdevice" in about_the_person[0]


def test_a_backup_code_session_is_verified(admin):
    device = StaticDevice.objects.create(user=admin, name="backup", confirmed=True)
    http = session_with_device(admin, device.persistent_id)
    assert http.get(reverse("clients:list")).status_code == 200


def test_a_device_of_someone_else_does_not_verify_the_session(admin, agent):
    """A session naming another person's device is not verified; django-otp drops the device from the session."""
    http = session_with_device(agent, TOTPDevice.objects.get(user=admin).persistent_id)
    response = http.get(reverse("clients:list"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_verify")
    assert DEVICE_ID_SESSION_KEY not in http.session


def test_an_unconfirmed_device_does_not_verify_the_session(practice):
    newbie = make_user(practice, "newbie", Role.AGENT, mfa=False)
    device = TOTPDevice.objects.create(user=newbie, name="phone", confirmed=False)
    http = session_with_device(newbie, device.persistent_id)
    response = http.get(reverse("clients:list"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_enrol")
    assert DEVICE_ID_SESSION_KEY not in http.session


def test_a_session_with_a_malformed_device_id_is_not_verified(admin):
    http = session_with_device(admin, "otp_totp.totpdevice/not-a-number")
    assert http.get(reverse("clients:list"))["Location"] == reverse("portal:mfa_verify")


def test_an_inactive_user_is_refused_even_without_a_new_session_epoch(agent, login):
    http = login(agent)
    assert http.get(reverse("clients:list")).status_code == 200
    User.objects.filter(pk=agent.pk).update(is_active=False)  # no session epoch change, no signal
    response = http.get(reverse("clients:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


def test_a_changed_password_ends_other_sessions(agent, login):
    http = login(agent)
    assert http.get(reverse("clients:list")).status_code == 200
    agent.set_password("another-long-password-2026")
    agent.save(update_fields=["password"])
    response = http.get(reverse("clients:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


def test_a_role_change_applies_to_the_next_request(admin, agent, login):
    agent_http = login(agent)
    assert agent_http.get(reverse("clients:add")).status_code == 200
    login(admin).post(reverse("portal:staff_detail", args=[agent.pk]), {"role": Role.READ_ONLY.value})
    assert User.objects.get(pk=agent.pk).role == Role.READ_ONLY
    assert agent_http.get(reverse("clients:add")).status_code == 403


# A passkey's row has a JSON column (its transports), the one field of these models that PostgreSQL hands back
# through a converter: read without it, the transports would be the JSON text rather than the list.
PASSKEY = {"credential_id": b"key", "public_key": b"key", "sign_count": 3, "transports": ["usb", "internal"]}


@pytest.mark.parametrize(
    ("device_class", "values"), [(TOTPDevice, {}), (StaticDevice, {}), (WebAuthnCredential, PASSKEY)]
)
def test_the_one_query_read_gives_what_the_orm_gives(admin, device_class, values):
    from portal.session_user import _reader, confirmed_device_with_user

    _reader.cache_clear()  # the statement made afresh, as in a new process, not the one an earlier test made
    device = device_class.objects.create(user=admin, name="either", confirmed=True, **values)
    found = confirmed_device_with_user(device_class, device.pk, admin.pk)
    expected = device_class.objects.select_related("user__practice").get(pk=device.pk)
    assert found is not None
    for ours, theirs in ((found, expected), (found.user, expected.user), (found.user.practice, expected.user.practice)):
        for field in type(theirs)._meta.concrete_fields:
            mine, orm = getattr(ours, field.attname), getattr(theirs, field.attname)
            assert (mine, type(mine)) == (orm, type(orm)), field.name
        assert not ours._state.adding and ours._state.db == "default"


def test_the_one_query_read_finds_no_device_of_another_user_or_unconfirmed(admin, agent):
    from portal.session_user import confirmed_device_with_user

    theirs = TOTPDevice.objects.get(user=admin)
    assert confirmed_device_with_user(TOTPDevice, theirs.pk, agent.pk) is None
    TOTPDevice.objects.filter(pk=theirs.pk).update(confirmed=False)
    assert confirmed_device_with_user(TOTPDevice, theirs.pk, admin.pk) is None


def session_with(user: User, **values: object) -> HttpClient:
    """A verified session, then some of its keys set to what a damaged or forged session store might hold."""
    http = session_with_device(user, TOTPDevice.objects.get(user=user).persistent_id)
    session = http.session
    for key, value in values.items():
        session[key] = value
    session.save()
    return http


@pytest.mark.parametrize(
    "values",
    [
        {BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"},  # a backend not configured
        {HASH_SESSION_KEY: 12345},  # not a string
        {SESSION_KEY: None},
        {DEVICE_ID_SESSION_KEY: "nosuchapp.device/1"},
    ],
    ids=["backend", "hash", "user id", "device model"],
)
def test_a_session_the_fast_path_cannot_read_goes_the_way_django_and_django_otp_take_it(admin, values):
    """Refused and sent to sign in or to verify, never let in, and never a server error."""
    response = session_with(admin, **values).get(reverse("clients:list"))
    assert response.status_code == 302
    assert response["Location"].startswith((reverse("portal:login"), reverse("portal:mfa_verify")))


@override_settings(AUTHENTICATION_BACKENDS=["axes.backends.AxesStandaloneBackend"])
def test_a_session_of_a_backend_no_longer_configured_is_not_signed_in(admin):
    response = session_with(admin).get(reverse("clients:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))


def test_the_one_query_read_of_someone_without_a_practice(db):
    from portal.session_user import confirmed_device_with_user

    loner = User.objects.create_user(username="loner", password="a-long-password-2026", role=Role.AGENT)
    device = TOTPDevice.objects.create(user=loner, name="phone", confirmed=True)
    found = confirmed_device_with_user(TOTPDevice, device.pk, loner.pk)
    assert found is not None and found.pk == device.pk and found.user.pk == loner.pk
    assert found.user.practice_id is None and found.user.practice is None
