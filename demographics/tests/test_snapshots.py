"""The Details tab: each service asked the whole way to the stand-in ATO and back, kept as a snapshot, shown beside
the register with the differences marked and what changed since the snapshot before; the 2016 Get where the 2017
one is refused; a client the practice is not linked to; who may see and ask."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils.html import escape

from ato_gateway import api
from ato_gateway.api import QuestionState
from ato_gateway.wire.documents import cuaddr, cuauthcntct, cudtl, cufi
from ato_gateway.wire.documents.common import Account, Address, ClientIdentifier, Period, PersonName
from clients.models import AccountKind, Client, ClientAccount, ClientGroup
from demographics import services
from demographics.models import (
    AddressChange,
    AddressChangeStatus,
    AddressesSnapshot,
    AssociatesSnapshot,
    BankAccountsSnapshot,
    ContactsSnapshot,
    DetailsSnapshot,
    DriftAlert,
    ProfileChange,
    Service,
    Snapshot,
)
from portal.capabilities import Role
from portal.models import User
from tests.ato_fixtures import AGENT_TAN, Ato
from tests.conftest import make_user
from tests.gateway_fixtures import pump
from tests.questions import event, fabricate_question

pytestmark = pytest.mark.django_db(transaction=True)

_LINKED = (
    "EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id "
    "AND a.tan = ? AND l.level = 'CLIENT' AND l.end_date IS NULL)"
)


def taxpayer(ato: Ato, where: str = "1", *, linked: bool = True) -> dict[str, Any]:
    exists = "" if linked else "NOT "
    sql = f"SELECT t.* FROM reg_taxpayers t WHERE {where} AND {exists}{_LINKED} ORDER BY t.id LIMIT 1"  # noqa: S608
    rows = ato.query(sql, AGENT_TAN)
    assert rows, "the register has no such taxpayer"
    return rows[0]


def register_client(ato: Ato, person: dict[str, Any], **change: Any) -> Client:
    """The taxpayer as the practice's register holds them (with ``change`` where the register is out of date)."""
    if person["entity"] == "IND":
        client = Client(
            practice=ato.practice,
            kind="individual",
            family_name=person["family_name"],
            given_names=" ".join(n for n in (person["given_name"], person["other_given_name"]) if n),
            date_of_birth=person["birth_date"],
        )
    else:
        client = Client(practice=ato.practice, kind="company", organisation_name=person["organisation_name"])
    for name, value in change.items():
        setattr(client, name, value)
    if person["tfn"]:
        client.set_tfn(person["tfn"])
    else:
        client.abn = person["abn"]
    client.save()
    return client


def ask_and_wait(http: HttpClient, client: Client, service: str) -> str:
    response = http.post(reverse("demographics:ask", args=[client.pk]), {"service": service})
    assert response.status_code == 200, response.content.decode()[:500]
    model = {
        "details": DetailsSnapshot,
        "addresses": AddressesSnapshot,
        "bank": BankAccountsSnapshot,
        "contacts": ContactsSnapshot,
        "associates": AssociatesSnapshot,
    }[service]
    asked = model.objects.filter(client=client)
    assert asked.exists()
    # Every level's snapshot (the client's and each account's), each following its newest page's question.
    pump(lambda: all(api.Question.objects.get(pk=s.question_id).is_settled for s in asked.all()), timeout=60)
    return http.get(reverse("demographics:client_tab", args=[client.pk]) + f"?section={service}").content.decode()


def test_details_are_shown_beside_the_register_with_the_differences_marked(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'IND' AND t.birth_date IS NOT NULL")
    client = register_client(ato, person, date_of_birth="1901-01-01")
    page = ask_and_wait(login(agent), client, Service.DETAILS)
    snapshot = DetailsSnapshot.objects.get(client=client)
    assert snapshot.answered_at is not None and snapshot.question.state == QuestionState.ANSWERED
    document = api.reply(snapshot.question).document
    assert isinstance(document, cudtl.GetResponse)  # the typed answer is the question's
    assert document.client.birth_date is not None and document.client.birth_date.isoformat() == person["birth_date"]
    facts = {f["field"]: f["value"] for f in snapshot.facts or []}
    assert facts["Date of birth"] == person["birth_date"] and facts["Entity type"] == "IND"
    # The date of birth differs (the register's is wrong); the name is the same.
    differing = re.findall(r'<tr class="differs"><th scope="row">([^<]+)</th>', page)
    assert differing == ["Date of birth"] and page.count('data-testid="differs"') == 1
    assert "1901-01-01" in page and person["birth_date"] in page
    assert "This is the first answer kept" in page


def test_bank_accounts_and_what_changed_since_the_snapshot_before(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(
        ato,
        "t.entity = 'IND' AND EXISTS (SELECT 1 FROM reg_bank_accounts b WHERE b.taxpayer_id = t.id "
        "AND b.account_id IS NULL AND b.end_date IS NULL)",
    )
    client = register_client(ato, person)
    http = login(agent)
    first = ask_and_wait(http, client, Service.BANK)
    held = ato.query(
        "SELECT bsb, number, account_name FROM reg_bank_accounts WHERE taxpayer_id = ? AND account_id IS NULL "
        "AND end_date IS NULL",
        person["id"],
    )[0]
    assert held["number"] in first and escape(held["account_name"]) in first
    # The account changes at the ATO; the next snapshot says what is new and what is no longer held.
    name = f"{person['given_name'] or ''} {person['family_name']}".strip()[:32]
    submitted = ato.result(
        cufi.SubmitRequest(
            client=ClientIdentifier.of(tfn=person["tfn"]),
            bank_account=cufi.FinancialInstitutionAccount(bsb="062000", number="12345678", name=name),
        )
    )
    assert submitted.ok, submitted.errors
    second = ask_and_wait(http, client, Service.BANK)
    assert BankAccountsSnapshot.objects.filter(client=client, answered_at__isnull=False).count() == 2
    changes = second[second.index('data-testid="changes"') :]
    assert "<strong>New:</strong> BSB 062-000 account …678" in changes
    assert "<strong>No longer held:</strong> BSB " + held["bsb"][:3] in changes


@pytest.mark.parametrize("service", [Service.ADDRESSES, Service.CONTACTS, Service.ASSOCIATES])
def test_lists_are_kept_as_snapshots(ato: Ato, agent: User, login: Any, service: str) -> None:
    where: dict[str, str] = {
        Service.ADDRESSES: "t.entity = 'IND' AND EXISTS (SELECT 1 FROM reg_addresses r WHERE r.taxpayer_id = t.id "
        "AND r.usage = 'POS')",
        Service.CONTACTS: "t.entity = 'IND'",
        Service.ASSOCIATES: "EXISTS (SELECT 1 FROM reg_associates r WHERE r.taxpayer_id = t.id)",
    }
    person = taxpayer(ato, where[service])
    client = register_client(ato, person)
    if service == Service.CONTACTS:  # few individuals have a contact: the practice gives one
        contact = cuauthcntct.AuthorisedContact(name=PersonName("Citizen", "Jo"), email="accounts@example.com.au")
        given = ato.result(cuauthcntct.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), contact=contact))
        assert given.ok, given.errors
    page = ask_and_wait(login(agent), client, service)
    models: dict[str, type[Snapshot]] = {
        Service.ADDRESSES: AddressesSnapshot,
        Service.CONTACTS: ContactsSnapshot,
        Service.ASSOCIATES: AssociatesSnapshot,
    }
    snapshot = models[service].objects.get(client=client)
    assert snapshot.facts, "the answer's rows are kept"
    asked = api.question_request(snapshot.question)
    if service == Service.ADDRESSES:
        assert isinstance(asked, cuaddr.ListRequest) and "CNT" not in asked.usages and "POS" in asked.usages
        assert "POS" in {f["usage"] for f in snapshot.facts}
    if service == Service.CONTACTS:
        assert {f["usage"] for f in snapshot.facts} == {"CNT"}
    for fact in snapshot.facts:
        assert escape(str(fact.get("value", fact.get("name")))) in page


def test_a_client_the_practice_is_not_linked_to_is_refused_in_plain_words(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'IND'", linked=False)
    client = register_client(ato, person)
    page = ask_and_wait(login(agent), client, Service.DETAILS)
    snapshot = DetailsSnapshot.objects.get(client=client)  # no 2016 retry: the client, not the version, is refused
    assert snapshot.question.state == QuestionState.REFUSED and snapshot.facts is None
    refused = api.reply(snapshot.question).errors
    assert [i.code for i in refused] == ["CMN.ATO.AUTH.002"]
    assert escape(api.item_in_plain_words(refused[0])) in page and "Nothing was changed" in page


def test_a_refused_2017_get_is_asked_again_in_its_2016_version(practice: Any, agent: User) -> None:
    client = Client(practice=practice, kind="individual", family_name="Nguyen")
    client.set_tfn("123456782")
    client.save()
    ident = ClientIdentifier.of(tfn="123456782")
    question = fabricate_question(
        practice=practice,
        by=agent,
        purpose=services.PURPOSE,
        request=cudtl.GetRequest(client=ident),
        events=[event("CMN.ATO.GEN.XML03", "Error", "The message version is not supported")],
        state=QuestionState.REFUSED,
        about=api.Subject("demographics.details", str(client.pk), "Nguyen"),
    )
    DetailsSnapshot.objects.create(client=client, question=question)
    services.on_snapshot(question, api.reply(question))
    retry = DetailsSnapshot.objects.exclude(question=question).get(client=client)
    assert retry.question.service_action == cudtl.GetRequest2016.SERVICE_ACTION
    assert api.question_request(retry.question) == cudtl.GetRequest2016(client=ident)
    # Its answer fills the new snapshot.
    answer = cudtl.GetResponse2016(
        client=cudtl.ClientProfile2016(entity_type="IND", person_name=PersonName("Nguyen", "An"))
    )
    answered = fabricate_question(
        practice=practice,
        by=agent,
        purpose=services.PURPOSE,
        request=cudtl.GetRequest2016(client=ident),
        response=answer,
        about=api.Subject("demographics.details", str(client.pk), "Nguyen"),
    )
    DetailsSnapshot.objects.filter(pk=retry.pk).update(question=answered)
    services.on_snapshot(answered, api.reply(answered))
    retry.refresh_from_db()
    assert {"field": "Name", "value": "NGUYEN, An", "summary": "Name: NGUYEN, An"} in (retry.facts or [])


def test_who_may_see_and_ask(practice: Any, agent: User, reader: User, outsider: User, login: Any) -> None:
    client = Client(practice=practice, kind="individual", family_name="Nguyen")
    client.set_tfn("123456782")
    client.save()
    tab = reverse("demographics:client_tab", args=[client.pk])
    ask = reverse("demographics:ask", args=[client.pk])
    assert login(outsider).get(tab).status_code == 404
    assert login(outsider).post(ask).status_code == 404
    restricted = make_user(practice, "rory", Role.AGENT)
    User.objects.filter(pk=restricted.pk).update(restricted_to_groups=True)
    restricted.refresh_from_db()
    assert login(restricted).get(tab).status_code == 404
    ClientGroup.objects.create(practice=practice, name="Mine").clients.add(client)
    ClientGroup.objects.get(name="Mine").staff.add(restricted)
    assert login(restricted).get(tab).status_code == 200
    # Reading what the ATO holds changes nothing: a read-only member sees and may ask.
    page = login(reader).get(tab).content.decode()
    assert "The ATO has not been asked yet" in page and "Ask the ATO" in page
    assert login(reader).get(tab + "?section=nonsense").status_code == 404


def test_a_client_without_an_identifier_cannot_be_asked_about(practice: Any, agent: User, login: Any) -> None:
    client = Client.objects.create(practice=practice, kind="individual", family_name="Nobody")
    page = login(agent).post(reverse("demographics:ask", args=[client.pk]), {"service": "details"}).content.decode()
    assert "Record the client&#x27;s TFN, ABN or WPN first" in page
    assert not DetailsSnapshot.objects.exists()


def test_changes_between_snapshots() -> None:
    before = DetailsSnapshot(facts=[{"summary": "Name: A"}, {"summary": "ABN: 1"}])
    after = DetailsSnapshot(facts=[{"summary": "Name: B"}, {"summary": "ABN: 1"}])
    changes = services.snapshot_changes(after, before)
    assert changes is not None and changes.added == ["Name: B"] and changes.removed == ["Name: A"]
    assert services.snapshot_changes(after, None) is None
    assert services.snapshot_changes(after, after) == services.Changes([], [])


def test_periods_in_words() -> None:
    from datetime import date

    assert services._period(Period(date(2020, 1, 1))) == "from 2020-01-01, current"
    assert services._period(Period(date(2020, 1, 1), date(2021, 1, 1))) == "from 2020-01-01 to 2021-01-01"


def test_a_list_longer_than_a_page_is_read_page_by_page(ato: Ato, agent: User, login: Any, monkeypatch: Any) -> None:
    long = (
        "(SELECT COUNT(*) FROM reg_addresses a WHERE a.taxpayer_id = t.id AND a.account_id IS NULL "
        "AND a.usage != 'CNT') >= 3"
    )
    person = taxpayer(ato, long)
    client = register_client(ato, person)
    [held] = ato.query(
        "SELECT COUNT(*) AS n FROM reg_addresses WHERE taxpayer_id = ? AND account_id IS NULL AND usage != 'CNT'",
        person["id"],
    )
    monkeypatch.setattr(services, "PAGE_SIZE", 2)
    http = login(agent)
    response = http.post(reverse("demographics:ask", args=[client.pk]), {"service": "addresses"})
    assert response.status_code == 200
    snapshot = AddressesSnapshot.objects.get(client=client)
    pump(lambda: AddressesSnapshot.objects.filter(pk=snapshot.pk, answered_at__isnull=False).exists(), timeout=60)
    snapshot.refresh_from_db()
    assert len(snapshot.facts or []) == held["n"]
    asked = api.Question.objects.filter(purpose=services.PURPOSE, state=api.QuestionState.ANSWERED)
    assert asked.count() == (held["n"] + 1) // 2  # one question a page of two
    page = http.get(reverse("demographics:client_tab", args=[client.pk]) + "?section=addresses").content.decode()
    assert all(escape(str(f["value"])) in page for f in snapshot.facts or [])


_AS_ACCOUNT = (
    "t.entity = 'IND' AND t.tfn IS NOT NULL AND EXISTS (SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id "
    "AND a.kind = 'AS' AND a.branch = '001') AND NOT EXISTS (SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id "
    "AND a.kind = 'AS' AND a.branch = '002')"
)
_AS_001 = Account("AS", "001")


def _account_client(ato: Ato) -> tuple[dict[str, Any], Client]:
    """A client with an activity statement account 001 the register holds too."""
    person = taxpayer(ato, _AS_ACCOUNT)
    client = register_client(ato, person)
    ClientAccount.objects.create(client=client, kind=AccountKind.ACTIVITY_STATEMENT, branch="001")
    return person, client


def _levels(page: str) -> list[str]:
    return re.findall(r'<h3 data-testid="level">([^<]+)</h3>', page)


def _section_changes(page: str, level: str) -> str:
    """What the page says changed at one level: from its heading to the next level's."""
    start = page.index(f'<h3 data-testid="level">{level}</h3>')
    end = page.find('<h3 data-testid="level">', start + 1)
    return page[start : end if end != -1 else len(page)]


def test_account_level_records_are_kept_by_account_and_compared_with_the_one_before(
    ato: Ato, agent: User, login: Any
) -> None:
    person, client = _account_client(ato)
    ident = ClientIdentifier.of(tfn=person["tfn"])
    http = login(agent)
    ask_and_wait(http, client, Service.BANK)
    assert set(BankAccountsSnapshot.objects.filter(client=client).values_list("account_kind", "account_branch")) == {
        ("", ""),
        ("AS", "001"),
    }
    asked = api.question_request(BankAccountsSnapshot.objects.get(client=client, account_kind="AS").question)
    assert isinstance(asked, cufi.ListRequest) and asked.account == _AS_001
    # The account gets its own bank account and business address, and a contact, at the ATO.
    name = f"{person['given_name'] or ''} {person['family_name']}".strip()[:32]
    bank = cufi.FinancialInstitutionAccount(bsb="062000", number="87654321", name=name)
    assert ato.result(cufi.SubmitRequest(client=ident, account=_AS_001, bank_account=bank)).ok
    shop = Address("7 Shop Lane", None, "PARRAMATTA", "NSW", "2150")
    business = cuaddr.AddressUpdate(usage="BUS", address=shop)
    assert ato.result(cuaddr.SubmitRequest(client=ident, accounts=[_AS_001], addresses=[business])).ok
    contact = cuauthcntct.AuthorisedContact(name=PersonName("Bookkeeper", "Sam"), phone="0298765432")
    assert ato.result(cuauthcntct.SubmitRequest(client=ident, account=_AS_001, contact=contact)).ok
    page = ask_and_wait(http, client, Service.BANK)
    assert _levels(page) == ["Client level", "Activity statement account 001"]
    account = _section_changes(page, "Activity statement account 001")
    assert "<strong>New:</strong> Activity statement account 001: BSB 062-000 account …321" in account
    assert 'data-testid="no-changes"' in _section_changes(page, "Client level")
    page = ask_and_wait(http, client, Service.ADDRESSES)
    account = _section_changes(page, "Activity statement account 001")
    assert "7 Shop Lane, PARRAMATTA, NSW, 2150" in account
    assert "7 Shop Lane" not in _section_changes(page, "Client level")
    page = ask_and_wait(http, client, Service.CONTACTS)
    account = _section_changes(page, "Activity statement account 001")
    assert "BOOKKEEPER, Sam, 0298765432" in account
    [kept] = ContactsSnapshot.objects.filter(client=client, account_kind="AS").values_list("facts", flat=True)
    assert kept and kept[0]["level"] == "Activity statement account 001"


def test_the_drift_watch_compares_each_account_with_its_own_snapshot_before(ato: Ato, agent: User, login: Any) -> None:
    from demographics.tests.test_drift import _watch

    person, client = _account_client(ato)
    ident = ClientIdentifier.of(tfn=person["tfn"])
    _watch(ato)
    assert AddressesSnapshot.objects.filter(client=client, account_kind="AS", account_branch="001").count() == 1
    assert not DriftAlert.objects.exists()  # a first answer at a level is compared with nothing
    # A bank account for the account, behind the practice's back; the portal's own address change of the account.
    name = f"{person['given_name'] or ''} {person['family_name']}".strip()[:32]
    bank = cufi.FinancialInstitutionAccount(bsb="062000", number="87654321", name=name)
    assert ato.result(cufi.SubmitRequest(client=ident, account=_AS_001, bank_account=bank)).ok
    shop = Address("7 Shop Lane", None, "PARRAMATTA", "NSW", "2150")
    business = cuaddr.AddressUpdate(usage="BUS", address=shop)
    assert ato.result(cuaddr.SubmitRequest(client=ident, accounts=[_AS_001], addresses=[business])).ok
    AddressChange.objects.create(
        practice=ato.practice,
        client=client,
        created_by=agent,
        status=AddressChangeStatus.ACCEPTED,
        usage="BUS",
        line1="7 Shop Lane",
        locality="PARRAMATTA",
        state="NSW",
        postcode="2150",
        accounts=[["AS", "001"]],
    )
    # The portal's own contact change of the account, and a client-level contact behind the practice's back: the
    # account's change explains only the account's contact.
    contact = cuauthcntct.AuthorisedContact(name=PersonName("Bookkeeper", "Sam"), phone="0298765432")
    assert ato.result(cuauthcntct.SubmitRequest(client=ident, account=_AS_001, contact=contact)).ok
    stranger = cuauthcntct.AuthorisedContact(name=PersonName("Stranger", "Max"), phone="0291112222")
    assert ato.result(cuauthcntct.SubmitRequest(client=ident, contact=stranger)).ok
    ProfileChange.objects.create(
        practice=ato.practice,
        client=client,
        kind=ProfileChange.Kind.CONTACT,
        created_by=agent,
        status=AddressChangeStatus.ACCEPTED,
        values={"family_name": "Bookkeeper", "given_name": "Sam", "phone": "0298765432", "account": "AS:001"},
    )
    _watch(ato)
    [alert, contacts] = DriftAlert.objects.filter(client=client).order_by("-urgent", "pk")
    assert alert.urgent and alert.service == Service.BANK
    assert alert.after == [
        f"Activity statement account 001: BSB 062-000 account …321 {name} (from 2026-11-30, current)"
    ]
    assert contacts.service == Service.CONTACTS and not contacts.urgent
    assert any("STRANGER" in a for a in contacts.after)  # the client level's, not the account's
    assert not any("BOOKKEEPER" in a for a in contacts.after)


def test_the_portals_own_details_and_contact_changes_raise_no_drift_alert(ato: Ato, agent: User) -> None:
    from demographics.tests.test_drift import _watch

    person = taxpayer(ato, "t.entity = 'IND' AND t.death_date IS NULL")
    client = register_client(ato, person)
    ident = ClientIdentifier.of(tfn=person["tfn"])
    _watch(ato)
    # Both changed at the ATO by the portal's accepted changes (demographics/profile.py sends the same documents).
    renamed = cudtl.SubmitRequest(client=ident, entity_type="IND", person_name=PersonName("Okonkwo", "Ada"))
    assert ato.result(renamed).ok
    contact = cuauthcntct.AuthorisedContact(name=PersonName("Tran", "Linh"), phone="0298765432")
    assert ato.result(cuauthcntct.SubmitRequest(client=ident, contact=contact)).ok
    for kind, values in (
        (ProfileChange.Kind.DETAILS, {"family_name": "Okonkwo", "given_name": "Ada"}),
        (ProfileChange.Kind.CONTACT, {"family_name": "Tran", "given_name": "Linh", "phone": "0298765432"}),
    ):
        ProfileChange.objects.create(
            practice=ato.practice,
            client=client,
            kind=kind,
            created_by=agent,
            status=AddressChangeStatus.ACCEPTED,
            values=values,
        )
    _watch(ato)
    assert DetailsSnapshot.objects.filter(client=client, answered_at__isnull=False).count() == 2
    changed = ContactsSnapshot.objects.filter(client=client).order_by("-pk").first()
    assert changed is not None and any("TRAN, Linh" in f["summary"] for f in changed.facts or [])
    assert not DriftAlert.objects.exists()
