"""Behind our TLS proxy every request arrives from the proxy's address: the client's is the one the proxy appended
to X-Forwarded-For. Sign-in throttling and the audit trail must both use that, and believe nothing the client
wrote in the header itself."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient
from django.test import override_settings
from django.urls import reverse

from portal.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PROXY = "172.18.0.3"


def sign_in(forwarded_for: str | None, username: str, password: str, proxy: str = PROXY):  # type: ignore[no-untyped-def]
    http = HttpClient(REMOTE_ADDR=proxy)
    if forwarded_for is not None:
        http.defaults["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return http.post(reverse("portal:login"), {"practice": "harbour-tax", "username": username, "password": password})


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_wrong_passwords_from_one_client_do_not_lock_out_another_behind_the_same_proxy(admin):
    for _ in range(5):
        sign_in("198.51.100.7", "alice", "wrong-password")
    assert sign_in("198.51.100.7", "alice", PASSWORD).status_code == 429
    # Someone else, through the same proxy, signs in as alice: not locked out.
    elsewhere = sign_in("198.51.100.8", "alice", PASSWORD)
    assert elsewhere.status_code == 302 and elsewhere["Location"] == reverse("portal:mfa_verify")
    failed = AuditEvent.objects.filter(action="login.failed").values_list("ip_address", flat=True)
    assert set(failed) == {"198.51.100.7"}


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_what_the_client_writes_into_the_header_is_not_believed(admin):
    # The proxy appends the address it saw; anything to its left is the client's own claim.
    for n in range(5):
        sign_in(f"203.0.113.{n}, 198.51.100.7", "alice", "wrong-password")
    assert sign_in("203.0.113.99, 198.51.100.7", "alice", PASSWORD).status_code == 429
    assert set(AuditEvent.objects.filter(action="login.failed").values_list("ip_address", flat=True)) == {
        "198.51.100.7"
    }
    # Nor any other header the proxy does not write.
    HttpClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.9", HTTP_X_REAL_IP="192.0.2.1").post(
        reverse("portal:login"), {"practice": "harbour-tax", "username": "alice", "password": "wrong-password"}
    )
    assert AuditEvent.objects.filter(action="login.failed").first().ip_address == "198.51.100.9"


@override_settings(TRUSTED_PROXY_COUNT=2)
def test_two_proxies_the_client_is_the_second_from_the_right(admin):
    sign_in("203.0.113.5, 198.51.100.7, 10.0.0.9", "alice", "wrong-password")
    assert AuditEvent.objects.get(action="login.failed").ip_address == "198.51.100.7"
    # A chain our proxies did not write in full: the connection's own address, not a guess from the header.
    sign_in("198.51.100.8", "alice", "wrong-password", proxy="10.0.0.10")
    assert AuditEvent.objects.filter(action="login.failed").first().ip_address == "10.0.0.10"


@override_settings(TRUSTED_PROXY_COUNT=0)
def test_without_a_proxy_the_header_is_ignored(admin):
    sign_in("198.51.100.7", "alice", "wrong-password", proxy="192.0.2.44")
    assert AuditEvent.objects.get(action="login.failed").ip_address == "192.0.2.44"


@override_settings(TRUSTED_PROXY_COUNT=1, LOGIN_ADDRESS_FAILURE_LIMIT=6, AXES_FAILURE_LIMIT=5)
def test_one_address_trying_many_usernames_is_paused(admin, agent):
    """Password spraying: one wrong password for each of many usernames never reaches axes' per-username limit,
    so a limit per address across usernames pauses it; other addresses are not affected."""
    for n in range(6):
        assert sign_in("198.51.100.7", f"guess{n}", "Summer2025!").status_code == 200
    paused = sign_in("198.51.100.7", "alice", PASSWORD)
    assert paused.status_code == 429
    assert "from your address is paused" in paused.content.decode()
    assert sign_in("198.51.100.8", "bob", PASSWORD).status_code == 302
