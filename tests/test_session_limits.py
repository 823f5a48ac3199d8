"""The session's clocks and the MFA gate, each at its edge (portal.middleware): the idle limit and the absolute
lifetime are inclusive, the idle clock is rewritten at most once a minute and never by polling, the page is told
how long it has left, and before the second factor only the sign-in, sign-out and MFA pages (and static files) are
reachable. The middleware's clock is fixed so that each edge is exact."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.test import Client as HttpClient
from django.test import override_settings
from django.urls import reverse

from portal.capabilities import Role
from portal.models import User
from tests.conftest import PASSWORD, make_user, verified_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

IDLE, LIFETIME = 600, 3600
NOW = int(time.time())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("portal.middleware.time", SimpleNamespace(time=lambda: float(NOW)))
    with override_settings(SESSION_IDLE_TIMEOUT_SECONDS=IDLE, SESSION_COOKIE_AGE=LIFETIME):
        yield


def session_at(user: User, *, last_seen: int | None, signed_in_at: int | None) -> HttpClient:
    http = verified_client(user)
    session = http.session
    for key, value in (("last_seen", last_seen), ("signed_in_at", signed_in_at)):
        if value is None:
            session.pop(key, None)
        else:
            session[key] = value
    session.save()
    return http


def expired(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 302 and response["Location"] == f"{reverse('portal:login')}?expired=1"


def test_the_idle_limit_is_inclusive(agent):
    at_limit = session_at(agent, last_seen=NOW - IDLE, signed_in_at=NOW - 10)
    assert at_limit.get(reverse("portal:dashboard")).status_code == 200
    beyond = session_at(agent, last_seen=NOW - IDLE - 1, signed_in_at=NOW - 10)
    assert expired(beyond.get(reverse("portal:dashboard")))
    # Signed out, not only sent away: the next request is a stranger's.
    again = beyond.get(reverse("portal:dashboard"))
    assert again.status_code == 302 and again["Location"].startswith(reverse("portal:login") + "?next=")


def test_the_lifetime_counts_from_sign_in_however_busy(agent):
    """A session kept busy still ends SESSION_COOKIE_AGE after sign-in."""
    at_limit = session_at(agent, last_seen=NOW, signed_in_at=NOW - LIFETIME)
    assert at_limit.get(reverse("portal:dashboard")).status_code == 200
    beyond = session_at(agent, last_seen=NOW, signed_in_at=NOW - LIFETIME - 1)
    assert expired(beyond.get(reverse("portal:dashboard")))


def test_a_session_without_its_timestamps_starts_its_clocks_now(agent):
    http = session_at(agent, last_seen=None, signed_in_at=None)
    response = http.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    assert http.session["last_seen"] == NOW
    assert response["X-Session-Idle-Remaining"] == str(IDLE)


@pytest.mark.parametrize(
    ("age", "poll", "rewritten"),
    [(59, None, False), (60, None, True), (60, "1", False), (60, "0", True), (IDLE, "1", False)],
)
def test_the_idle_clock_is_rewritten_once_a_minute_and_not_by_polling(agent, age, poll, rewritten):
    http = session_at(agent, last_seen=NOW - age, signed_in_at=NOW - 10)
    headers = {"X-Poll": poll} if poll is not None else {}
    response = http.get(reverse("portal:dashboard"), headers=headers)
    assert response.status_code == 200
    assert http.session["last_seen"] == (NOW if rewritten else NOW - age)
    # The page's warning counts down from what is left of the idle time.
    assert response["X-Session-Idle-Remaining"] == str(IDLE if rewritten else IDLE - age)


def test_no_idle_clock_for_someone_not_signed_in_or_signing_out(agent):
    assert "X-Session-Idle-Remaining" not in HttpClient().get(reverse("portal:login"))
    http = session_at(agent, last_seen=NOW, signed_in_at=NOW)
    response = http.post(reverse("portal:logout"))
    assert response.status_code == 302 and "X-Session-Idle-Remaining" not in response
    assert "last_seen" not in http.session


# --- before the second factor ---


def half_signed_in(user: User) -> HttpClient:
    http = HttpClient()
    assert user.practice is not None
    credentials = {"practice": user.practice.code, "username": user.username, "password": PASSWORD}
    assert http.post(reverse("portal:login"), credentials).status_code == 302
    return http


def test_only_the_mfa_pages_and_static_files_are_reachable_before_the_second_factor(admin):
    http = half_signed_in(admin)
    assert http.get(reverse("portal:mfa_verify")).status_code == 200
    # The enrolment page itself sends someone with a device on to verification: the middleware let it through.
    enrol = http.get(reverse("portal:mfa_enrol"))
    assert enrol.status_code == 302 and enrol["Location"] == reverse("portal:mfa_verify")
    assert http.get(reverse("portal:login")).status_code in (200, 302)
    assert http.get("/static/portal/no-such-file.css").status_code == 404  # not sent to verification
    for name in ("portal:dashboard", "portal:account", "portal:mfa_backup_codes"):
        refused = http.get(reverse(name))
        assert refused.status_code == 302 and refused["Location"] == reverse("portal:mfa_verify"), name
    # A path that only ends like an exempt one is not exempt.
    assert http.get("/clients/mfa/verify/")["Location"] == reverse("portal:mfa_verify")
    assert http.get(reverse("portal:logout") + "X/")["Location"] == reverse("portal:mfa_verify")  # nor one longer
    signed_out = http.post(reverse("portal:logout"))
    assert signed_out.status_code == 302 and signed_out["Location"] == reverse("portal:login")
    assert http.get(reverse("portal:dashboard"))["Location"].startswith(reverse("portal:login"))


def test_someone_without_a_device_is_sent_to_enrol(practice):
    newbie = make_user(practice, "newbie", Role.AGENT, mfa=False)
    http = half_signed_in(newbie)
    response = http.get(reverse("portal:dashboard"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_enrol")
    hx = http.get(reverse("clients:list"), headers={"HX-Request": "true"})
    assert hx.status_code == 204 and hx["HX-Redirect"] == reverse("portal:mfa_enrol")
    assert http.get(reverse("portal:mfa_enrol")).status_code == 200


def test_a_poll_in_a_session_without_its_idle_clock_is_answered_and_starts_no_clock(agent):
    http = session_at(agent, last_seen=None, signed_in_at=NOW)
    response = http.get(reverse("portal:dashboard"), headers={"X-Poll": "1"})
    assert response.status_code == 200 and response["X-Session-Idle-Remaining"] == str(IDLE)
    assert "last_seen" not in http.session
