"""Access a practice's safety rests on: the second factor, another practice's ids, and a read-only role. Each test
here was seen to fail with the guard it names taken out (issue 18, items 1-3)."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from clients.models import AccountKind, AccountRole, Client, ClientAccount, ClientGroup
from portal.capabilities import Capability, Role
from tests.conftest import PASSWORD, add_clients

pytestmark = pytest.mark.django_db


def test_backup_codes_cannot_be_minted_between_password_and_second_factor(admin):
    """If the MFA middleware let this page through, codes made here would verify and sign the person in."""
    http = HttpClient()
    credentials = {"practice": admin.practice.code, "username": "alice", "password": PASSWORD}
    assert http.post(reverse("portal:login"), credentials).status_code == 302
    response = http.post(reverse("portal:mfa_backup_codes"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:mfa_verify")
    assert not StaticDevice.objects.filter(user=admin).exists()
    assert not StaticToken.objects.filter(device__user=admin).exists()


def test_another_practice_cannot_change_our_account_roles(practice, outsider, login):
    ours = add_clients(practice, 1)[0]
    account = ClientAccount.objects.create(client=ours, kind=AccountKind.ACTIVITY_STATEMENT, branch="001")
    AccountRole.objects.create(account=account, role="GST")
    theirs = add_clients(outsider.practice, 1, seed=11)[0]
    url = reverse("clients:account_roles", args=[theirs.pk, account.pk])
    response = login(outsider).post(url, {"roles": ["PAYGW"]})
    assert response.status_code == 404
    assert list(account.roles.values_list("role", flat=True)) == ["GST"]


def test_read_only_staff_cannot_create_client_groups(practice, reader, login):
    before = ClientGroup.objects.count()
    response = login(reader).post(reverse("clients:groups"), {"name": "Mine now", "description": ""})
    assert response.status_code == 403
    assert ClientGroup.objects.count() == before
    assert not ClientGroup.objects.filter(name="Mine now").exists()


def test_a_refusal_names_the_permission_missing_and_a_stranger_is_sent_to_sign_in(practice, reader, login):
    """The 403 page tells staff which permission to ask a practice admin for; someone not signed in is not told
    what the page needs, only asked to sign in. Neither adds a client."""
    row = {"kind": "individual", "family_name": "Added", "given_names": "By", "tfn": ""}
    page = login(reader).post(reverse("clients:add"), row)
    assert page.status_code == 403
    assert "You need the “Add and edit clients” permission for this page." in page.content.decode()
    stranger = HttpClient().post(reverse("clients:add"), row)
    assert stranger.status_code == 302 and stranger["Location"].startswith(reverse("portal:login") + "?next=")
    assert not Client.objects.filter(family_name="Added").exists()


def test_each_role_is_shown_by_its_name(practice, admin, agent, reader, login):
    labels = {Role.PRACTICE_ADMIN: "Practice admin", Role.AGENT: "Agent", Role.READ_ONLY: "Read-only"}
    assert {role: role.label for role in Role} == labels
    staff = login(admin).get(reverse("portal:staff_list")).content.decode()
    assert all(f"<td>{label}</td>" in staff for label in labels.values())
    assert Capability.MANAGE_GROUPS.label == "Manage client groups"
    assert len({c.label for c in Capability}) == len(Capability)  # every capability has words of its own
