"""Practice admins manage staff: invite, role changes, group restriction, deactivation, access review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from portal.capabilities import Capability, Role
from portal.models import AuditEvent, User
from tests.conftest import add_clients, make_user

pytestmark = pytest.mark.django_db


def test_invite_then_accept_sets_password_and_leads_to_mfa(admin, login):
    http = login(admin)
    response = http.post(
        reverse("portal:staff_add"),
        {
            "username": "newagent",
            "first_name": "Nia",
            "last_name": "Ng",
            "email": "nia@example.com",
            "role": "agent",
        },
    )
    assert response.status_code == 200
    link = response.context["link"]
    invitee = User.objects.get(username="newagent")
    assert invitee.practice == admin.practice and not invitee.has_usable_password()
    guest = HttpClient()
    path = link.split("testserver", 1)[1]
    weak = guest.post(path, {"password1": "short", "password2": "short"})
    assert "at least 12 characters" in weak.content.decode()
    done = guest.post(path, {"password1": "a-long-enough-pass", "password2": "a-long-enough-pass"})
    assert done["Location"] == reverse("portal:mfa_enrol")
    assert HttpClient().get(path).status_code == 404  # the link works once
    assert AuditEvent.objects.filter(action="staff.invite_accepted", actor=invitee).exists()


def test_duplicate_username_is_refused_beside_the_field(admin, agent, login):
    response = login(admin).post(
        reverse("portal:staff_add"),
        {
            "username": "bob",
            "first_name": "B",
            "last_name": "B",
            "email": "b@example.com",
            "role": "agent",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["username"] == ["That username is taken."]


def test_role_change_is_audited_and_own_role_is_locked(admin, agent, login):
    http = login(admin)
    http.post(reverse("portal:staff_detail", args=[agent.pk]), {"role": "read_only"})
    agent.refresh_from_db()
    assert agent.role == Role.READ_ONLY and not agent.has_capability(Capability.EDIT_CLIENTS)
    assert AuditEvent.objects.filter(action="staff.role_changed", object_id=str(agent.pk)).exists()
    http.post(reverse("portal:staff_detail", args=[admin.pk]), {"role": "read_only"})
    admin.refresh_from_db()
    assert admin.role == Role.PRACTICE_ADMIN


def test_group_restriction_limits_which_clients_are_seen(practice, admin, agent, group, login):
    clients = add_clients(practice, 6)
    group.clients.add(*clients[:2])
    login(admin).post(reverse("clients:staff_groups", args=[agent.pk]), {"restricted": "on", "groups": [group.pk]})
    agent.refresh_from_db()
    assert agent.restricted_to_groups
    assert set(Client.objects.visible_to(agent)) == set(clients[:2])
    http = login(agent)
    assert http.get(reverse("clients:detail", args=[clients[0].pk])).status_code == 200
    assert http.get(reverse("clients:detail", args=[clients[5].pk])).status_code == 404


def test_access_review_flags_accounts_unused_for_90_days(practice, admin, agent, reader, login):
    User.objects.filter(pk=reader.pk).update(last_login=timezone.now() - timedelta(days=120))
    User.objects.filter(pk=agent.pk).update(last_login=timezone.now() - timedelta(days=5))
    response = login(admin).get(reverse("portal:access_review"))
    rows = {r["member"].username: r for r in response.context["rows"]}
    assert rows["rita"]["unused"] and not rows["bob"]["unused"]
    assert Capability.VIEW_FULL_TFN in rows["bob"]["caps"] and Capability.VIEW_FULL_TFN not in rows["rita"]["caps"]
    assert response.context["unused_count"] == 1
    assert "Unused 90+ days" in response.content.decode()


@pytest.mark.parametrize(
    "name", ["portal:staff_list", "portal:staff_add", "portal:access_review", "portal:audit_search"]
)
def test_agents_and_readers_cannot_open_admin_pages(name, agent, reader, login):
    for person in (agent, reader):
        assert login(person).get(reverse(name)).status_code == 403


def test_reset_mfa_forces_re_enrolment(admin, agent, login):
    login(admin).post(reverse("portal:staff_reset_mfa", args=[agent.pk]))
    http = HttpClient()
    credentials = {"practice": agent.practice.code, "username": "bob", "password": "correct-horse-battery-staple"}
    response = http.post(reverse("portal:login"), credentials)
    assert response["Location"] == reverse("portal:mfa_enrol")


def test_staff_of_a_practice_never_sees_anothers_staff(admin, outsider, login):
    make_user(outsider.practice, "theirs", Role.AGENT)
    page = login(admin).get(reverse("portal:staff_list")).content.decode()
    assert "theirs" not in page and "oscar" not in page
