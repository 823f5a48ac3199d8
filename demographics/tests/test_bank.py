"""Bank account changes under four-eyes control, the whole way to the stand-in ATO: propose, the ATO's check, the
call-back on a number on file, another member's approval with their authenticator code, the Submit, the email to
the client; and each control refusing, with nothing changed and the refusal audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from ato_gateway import api
from clients.models import Client
from demographics import bank
from demographics.models import BankChange, BankChangeStatus
from portal.capabilities import Role
from portal.models import AuditEvent, User
from tests.ato_fixtures import Ato
from tests.conftest import current_code, make_user
from tests.gateway_fixtures import pump

from .test_snapshots import ask_and_wait, register_client, taxpayer

pytestmark = pytest.mark.django_db(transaction=True)

_ON_FILE = (
    "EXISTS (SELECT 1 FROM reg_addresses r WHERE r.taxpayer_id = t.id AND r.account_id IS NULL "
    "AND r.usage = '{}' AND r.end_date IS NULL)"
)
NEW = {"bsb": "062-000", "number": "12345678"}


def _client_with_contacts(ato: Ato, http: HttpClient) -> tuple[Client, dict[str, Any]]:
    """A linked individual with a phone number and an email address at the ATO, asked for (so they are on file)."""
    person = taxpayer(ato, "t.entity = 'IND' AND " + _ON_FILE.format("PHN") + " AND " + _ON_FILE.format("EML"))
    client = register_client(ato, person)
    ask_and_wait(http, client, "addresses")
    return client, person


def _propose(http: HttpClient, client: Client, **fields: str) -> Any:
    return http.post(reverse("demographics:bank_propose", args=[client.pk]), fields)


def _settled(change: BankChange, which: str = "validate") -> BankChange:
    change.refresh_from_db()
    question_id = change.validate_question_id if which == "validate" else change.submit_question_id
    assert question_id is not None
    pump(lambda: api.Question.objects.get(pk=question_id).is_settled, timeout=60)
    change.refresh_from_db()
    return change


def _proposed(ato: Ato, agent: User, login: Any) -> tuple[BankChange, dict[str, Any]]:
    http = login(agent)
    client, person = _client_with_contacts(ato, http)
    response = _propose(http, client, **NEW, account_name=f"{person['given_name']} {person['family_name']}"[:32])
    assert response.status_code == 302, response.content.decode()[:800]
    change = _settled(BankChange.objects.get(client=client))
    assert change.status == BankChangeStatus.PROPOSED
    return change, person


def _actions(change: BankChange) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="demographics.BankChange", object_id=str(change.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_a_bank_change_goes_through_every_control_and_the_ato_holds_it(
    ato: Ato, agent: User, admin: User, login: Any
) -> None:
    change, person = _proposed(ato, agent, login)
    assert change.numbers_on_file and change.expires_at - change.proposed_at == timedelta(days=7)
    # The proposer cannot approve (an agent lacks the capability; the page says someone else must).
    mine = login(agent)
    page = mine.get(reverse("demographics:bank_change", args=[change.pk])).content.decode()
    assert "Record the call-back" in page
    assert mine.post(reverse("demographics:bank_approve", args=[change.pk]), {"code": "123456"}).status_code == 403
    # Approving before the call-back is refused.
    theirs = login(admin)
    early = theirs.post(reverse("demographics:bank_approve", args=[change.pk]), {"code": current_code(admin)})
    assert early.status_code == 400 and "Record the call-back" in early.content.decode()
    # The admin records the call-back on a number on file, then approves with their code.
    number = change.numbers_on_file[0]
    called = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    done = theirs.post(reverse("demographics:bank_callback", args=[change.pk]), {"number": number, "called_at": called})
    assert done.status_code == 302, done.content.decode()[:800]
    change.refresh_from_db()
    assert change.called_by == admin and change.called_number == number
    page = theirs.get(reverse("demographics:bank_change", args=[change.pk])).content.decode()
    assert "Approve and send to the ATO" in page
    approved = theirs.post(reverse("demographics:bank_approve", args=[change.pk]), {"code": current_code(admin)})
    assert approved.status_code == 302, approved.content.decode()[:800]
    change = _settled(change, "submit")
    assert change.status == BankChangeStatus.ACCEPTED and change.approved_by == admin
    held = ato.query(
        "SELECT bsb, number FROM reg_bank_accounts WHERE taxpayer_id = ? AND account_id IS NULL AND end_date IS NULL",
        person["id"],
    )
    assert held == [{"bsb": "062000", "number": "12345678"}]
    email = ato.query(
        "SELECT email FROM reg_addresses WHERE taxpayer_id = ? AND usage = 'EML' AND account_id IS NULL "
        "AND end_date IS NULL",
        person["id"],
    )[0]["email"]
    assert [m.to for m in mail.outbox] == [[email]] and "ending 678" in mail.outbox[0].body
    assert change.notified_to == email
    assert _actions(change) == [
        "demographics.bank_propose",
        "demographics.bank_validate_proposed",
        "demographics.bank_approve_refused",
        "demographics.bank_callback",
        "demographics.bank_approve",
        "demographics.bank_submit_accepted",
        "demographics.bank_notify",
    ]
    page = theirs.get(reverse("demographics:bank_change", args=[change.pk])).content.decode()
    assert 'data-testid="accepted"' in page and "The client has been told by email" in page


def test_the_proposer_cannot_approve_their_own_change(ato: Ato, admin: User, login: Any) -> None:
    change, _ = _proposed(ato, admin, login)
    http = login(admin)
    called = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    http.post(
        reverse("demographics:bank_callback", args=[change.pk]),
        {"number": change.numbers_on_file[0], "called_at": called},
    )
    page = http.get(reverse("demographics:bank_change", args=[change.pk])).content.decode()
    assert 'data-testid="not-yours"' in page and "Approve and send" not in page
    refused = http.post(reverse("demographics:bank_approve", args=[change.pk]), {"code": current_code(admin)})
    assert refused.status_code == 400 and "someone else must approve it" in refused.content.decode()
    change.refresh_from_db()
    assert change.status == BankChangeStatus.PROPOSED and change.submit_question_id is None
    assert "demographics.bank_approve_refused" in _actions(change)


def test_a_wrong_code_an_unknown_number_and_an_expired_proposal_are_refused(
    ato: Ato, agent: User, admin: User, login: Any
) -> None:
    change, _ = _proposed(ato, agent, login)
    http = login(admin)
    called = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    stranger = http.post(
        reverse("demographics:bank_callback", args=[change.pk]), {"number": "0400000000", "called_at": called}
    )
    assert stranger.status_code == 400 and BankChange.objects.get(pk=change.pk).called_at is None
    # The service refuses it too, whatever form it came through.
    with pytest.raises(bank.ChangeRefused, match="only on a number the ATO held"):
        bank.bank_change_record_callback(user=admin, change=change, number="0400000000", called_at=timezone.now())
    http.post(
        reverse("demographics:bank_callback", args=[change.pk]),
        {"number": change.numbers_on_file[0], "called_at": called},
    )
    code = current_code(admin)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = http.post(reverse("demographics:bank_approve", args=[change.pk]), {"code": wrong})
    assert refused.status_code == 400 and "authenticator code is not right" in refused.content.decode()
    assert BankChange.objects.get(pk=change.pk).submit_question_id is None
    BankChange.objects.filter(pk=change.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = http.post(reverse("demographics:bank_approve", args=[change.pk]), {"code": code})
    assert expired.status_code == 400 and "expired unapproved" in expired.content.decode()
    change.refresh_from_db()
    assert change.status == BankChangeStatus.EXPIRED and change.submit_question_id is None
    assert "demographics.bank_expire" in _actions(change)


def test_an_account_the_ato_refuses_is_said_plainly_and_cannot_be_approved(
    ato: Ato, agent: User, admin: User, login: Any
) -> None:
    http = login(agent)
    client, person = _client_with_contacts(ato, http)
    response = _propose(http, client, bsb="999-999", number="12345678", account_name=person["family_name"])
    assert response.status_code == 302
    change = _settled(BankChange.objects.get(client=client))
    assert change.status == BankChangeStatus.REFUSED
    assert change.validate_question is not None
    errors = api.reply(change.validate_question).errors
    assert [i.code for i in errors] == ["CMN.ATO.CUFI.FI01"]
    page = http.get(reverse("demographics:bank_change", args=[change.pk])).content.decode()
    assert escape(api.item_in_plain_words(errors[0])) in page and "Record the call-back" not in page
    refused = login(admin).post(reverse("demographics:bank_approve", args=[change.pk]), {"code": current_code(admin)})
    assert refused.status_code == 400 and BankChange.objects.get(pk=change.pk).submit_question_id is None


def test_the_account_name_must_be_the_entitys_own(ato: Ato, agent: User, login: Any) -> None:
    http = login(agent)
    client, _ = _client_with_contacts(ato, http)
    response = _propose(http, client, **NEW, account_name="Somebody Else")
    assert response.status_code == 400 and "own family name" in response.content.decode()
    assert not BankChange.objects.exists()


def test_who_may_propose(ato: Ato, agent: User, reader: User, login: Any) -> None:
    http = login(agent)
    client, person = _client_with_contacts(ato, http)
    form = {**NEW, "account_name": person["family_name"]}
    assert _propose(login(reader), client, **form).status_code == 403
    restricted = make_user(ato.practice, "rory", Role.AGENT)
    User.objects.filter(pk=restricted.pk).update(restricted_to_groups=True)
    assert _propose(login(User.objects.get(pk=restricted.pk)), client, **form).status_code == 404
    bad = _propose(http, client, bsb="06200", number="12", account_name=person["family_name"])
    assert bad.status_code == 400 and "six digits" in bad.content.decode() and "5 to 9 digits" in bad.content.decode()
    assert not BankChange.objects.exists()


def test_no_phone_number_on_file_means_no_proposal(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'IND'")
    client = register_client(ato, person)
    response = _propose(login(agent), client, **NEW, account_name=person["family_name"])
    assert response.status_code == 400 and "holds no phone number" in response.content.decode()
    assert not BankChange.objects.exists()
