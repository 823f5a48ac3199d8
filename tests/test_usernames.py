"""Usernames are unique within a practice only: another practice's usernames are neither revealed when choosing
one nor in the way, and sign-in names the practice by its code."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from portal.capabilities import Role
from portal.models import AuditEvent, Practice, User
from tests.conftest import PASSWORD, current_code, make_practice, make_user

pytestmark = pytest.mark.django_db


def sign_in(practice: str, username: str, password: str = PASSWORD) -> HttpClient:
    http = HttpClient()
    response = http.post(reverse("portal:login"), {"practice": practice, "username": username, "password": password})
    http.response = response  # type: ignore[attr-defined]
    return http


def invite(http: HttpClient, username: str) -> str:
    response = http.post(
        reverse("portal:staff_add"),
        {"username": username, "first_name": "Bo", "last_name": "Other", "email": "bo@example.com", "role": "agent"},
    )
    assert response.status_code == 200
    return response.content.decode()


def accept(invitation_page: str, password: str) -> None:
    link = invitation_page.split('data-testid="invite-link">', 1)[1].split("<", 1)[0]
    path = link.split("testserver", 1)[1]
    assert HttpClient().post(path, {"password1": password, "password2": password}).status_code == 302


def test_a_username_another_practice_uses_is_free_and_both_sign_in(admin, agent, outsider, login):
    """Practice B (outsider's) adds a "bob", as practice A has: no hint that A has one, and each bob signs in."""
    page = invite(login(outsider), "bob")
    assert "taken" not in page and "errorlist" not in page
    theirs = User.objects.get(practice=outsider.practice, username="bob")
    assert theirs != agent
    accept(page, "their-own-long-password")
    ours = sign_in(agent.practice.code, "bob")
    assert ours.response["Location"] == reverse("portal:mfa_verify")  # type: ignore[attr-defined]
    assert ours.post(reverse("portal:mfa_verify"), {"token": current_code(agent)}).status_code == 302
    assert ours.get(reverse("portal:account")).context["user"] == agent
    other = sign_in(outsider.practice.code, "bob", "their-own-long-password")
    assert other.response["Location"] == reverse("portal:mfa_enrol")  # type: ignore[attr-defined]
    assert other.get(reverse("portal:mfa_enrol")).context["user"] == theirs
    # Each practice's password opens only its own bob.
    assert sign_in(agent.practice.code, "bob", "their-own-long-password").response.status_code == 200  # type: ignore[attr-defined]


def test_a_username_taken_in_the_same_practice_is_still_refused(admin, agent, login):
    assert "That username is taken." in invite(login(admin), "BOB")
    assert User.objects.filter(username__iexact="bob").count() == 1


def test_the_database_refuses_a_second_username_within_a_practice_only(practice, other_practice):
    from django.db import IntegrityError, transaction

    make_user(practice, "sam", Role.AGENT)
    make_user(other_practice, "sam", Role.AGENT)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="SAM", password=PASSWORD, practice=practice)


def test_sign_in_needs_the_right_practice_code_and_says_nothing_of_which_part_is_wrong(admin, outsider):
    for practice, username in (("elsewhere-accounting", "alice"), ("no-such-practice", "alice"), ("", "alice")):
        refused = sign_in(practice, username).response  # type: ignore[attr-defined]
        assert refused.status_code == 200
    wrong_practice = sign_in("elsewhere-accounting", "alice").response  # type: ignore[attr-defined]
    wrong_password = sign_in("harbour-tax", "alice", "not-the-password").response  # type: ignore[attr-defined]
    assert wrong_practice.context["form"].non_field_errors() == wrong_password.context["form"].non_field_errors()
    assert "The practice code, username or password is not right." in wrong_practice.content.decode()
    # The failure against an existing account is filed with its practice; the one naming no account with none.
    failed = AuditEvent.objects.filter(action="login.failed")
    assert failed.filter(practice=admin.practice).count() == 1
    assert not failed.filter(practice=outsider.practice).exists()
    ok = sign_in(" Harbour-Tax ", "Alice").response  # type: ignore[attr-defined]
    assert ok.status_code == 302  # codes and usernames are compared without case or surrounding spaces


def test_wrong_passwords_lock_one_practices_alice_not_anothers(admin, other_practice):
    make_user(other_practice, "alice", Role.AGENT)
    for _ in range(5):
        sign_in("elsewhere-accounting", "alice", "wrong-password")
    assert sign_in("elsewhere-accounting", "alice").response.status_code == 429  # type: ignore[attr-defined]
    assert sign_in("harbour-tax", "alice").response.status_code == 302  # type: ignore[attr-defined]


def test_the_browser_remembers_the_practice_code_of_the_last_sign_in(admin):
    http = sign_in("harbour-tax", "alice")
    form = http.get(reverse("portal:login")).context["form"]
    assert form["practice"].value() == "harbour-tax"
    assert form.fields["username"].widget.attrs.get("autofocus")
    assert "autofocus" not in str(HttpClient().get(reverse("portal:login")).context["form"]["username"])


def test_staff_find_their_practice_code_on_their_account_page(admin, login):
    page = login(admin).get(reverse("portal:account")).content.decode()
    assert '<code data-testid="practice-code">harbour-tax</code>' in page


def test_each_practice_gets_its_own_code(db):
    first = make_practice("Harbour Tax")
    second = make_practice("Harbour Tax!", "51824753556")
    assert (first.code, second.code) == ("harbour-tax", "harbour-tax-2")
    assert Practice.objects.get(pk=first.pk).code == "harbour-tax"


def test_the_password_check_before_new_backup_codes_finds_the_right_account(admin, other_practice, login):
    make_user(other_practice, "alice", Role.AGENT)
    response = login(admin).post(reverse("portal:mfa_backup_codes"), {"password": PASSWORD})
    assert response.status_code == 200 and len(response.context["codes"]) == 10
