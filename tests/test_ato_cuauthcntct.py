"""CUAUTHCNTCT through the real gateway to the stand-in ATO: validate and submit a new authorised contact at client
and account level, the history kept with dates, and every rule's error."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ato_gateway import api
from ato_gateway.wire.documents import cuaddr, cuauthcntct
from ato_gateway.wire.documents.common import Account, ClientIdentifier, PersonName
from tests.ato_fixtures import AGENT_TAN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

# Clients with this many current client-level contacts (bound once), the latest started before the ATO's today.
WITH_CONTACTS = (
    "SELECT t.* FROM reg_taxpayers t WHERE (SELECT count(*) FROM reg_contacts c WHERE c.taxpayer_id = t.id "
    "AND c.account_id IS NULL AND c.end_date IS NULL AND c.start_date BETWEEN '2000-01-01' AND '2026-10-31') = ? "
    "AND NOT EXISTS (SELECT 1 FROM reg_contacts c WHERE c.taxpayer_id = t.id AND c.account_id IS NULL "
    "AND c.end_date IS NULL AND c.start_date > '2026-10-31') ORDER BY t.id"
)
NEW: dict[str, Any] = {
    "family_name": "Citizen",
    "given_name": "Jo",
    "position": "Office manager",
    "phone": "0298765432",
}


def _client(ato: Ato, sql: str, *params: object) -> dict:
    """The first taxpayer the query finds that the agent has a client-level link with."""
    rows = ato.query(
        "SELECT l.taxpayer_id FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? "
        "AND l.end_date IS NULL AND l.level = 'CLIENT'",
        AGENT_TAN,
    )
    linked = {r["taxpayer_id"] for r in rows}
    return next(r for r in ato.query(sql, *params) if r["id"] in linked)


def _request(
    cls: type[cuauthcntct.ValidateRequest] | type[cuauthcntct.SubmitRequest],
    tfn: str,
    *,
    account: Account | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    position: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    start: date | None = None,
) -> cuauthcntct.ValidateRequest | cuauthcntct.SubmitRequest:
    """The document for a contact given field by field, as the portal's form sends it: a missing name is sent as
    missing (the ATO's rule names the field), and empty fields are left out."""
    name = PersonName(family_name, given_name or None) if family_name else None
    contact = cuauthcntct.AuthorisedContact(name, position or None, phone or None, email or None, start)
    return cls(client=ClientIdentifier.of(tfn=tfn), account=account, contact=contact)


def _contacts(ato: Ato, taxpayer_id: int) -> list[dict]:
    return ato.query("SELECT * FROM reg_contacts WHERE taxpayer_id = ? ORDER BY id", taxpayer_id)


def test_validate_reports_the_replacement_and_changes_nothing(ato: Ato):
    client = _client(ato, WITH_CONTACTS, 1)
    before = _contacts(ato, client["id"])
    reply = ato.result(_request(cuauthcntct.ValidateRequest, client["tfn"], start=date(2026, 11, 16), **NEW))
    assert reply.ok and reply.document is not None
    assert (reply.document.action, reply.document.ended, reply.document.period.start) == (
        "REPLACE", 1, date(2026, 11, 16)
    )  # fmt: skip
    assert _contacts(ato, client["id"]) == before


def test_submit_replaces_the_contact_and_keeps_the_old_one_with_its_dates(ato: Ato):
    client = _client(ato, WITH_CONTACTS, 1)
    [old] = [c for c in _contacts(ato, client["id"]) if c["account_id"] is None and c["end_date"] is None]
    reply = ato.result(_request(cuauthcntct.SubmitRequest, client["tfn"], start=date(2026, 11, 16), **NEW))
    assert reply.ok and reply.document is not None and reply.document.action == "REPLACE"
    rows = [c for c in _contacts(ato, client["id"]) if c["account_id"] is None]
    assert next(c for c in rows if c["id"] == old["id"])["end_date"] == "2026-11-15"
    [new] = [c for c in rows if c["end_date"] is None]
    assert (new["family_name"], new["given_name"], new["position"], new["phone"], new["email"], new["start_date"]) == (
        "Citizen", "Jo", "Office manager", "0298765432", None, "2026-11-16"
    )  # fmt: skip


def test_several_current_contacts_are_all_replaced_with_a_warning(ato: Ato):
    client = _client(ato, WITH_CONTACTS, 2)
    reply = ato.result(_request(cuauthcntct.SubmitRequest, client["tfn"], **NEW))
    assert reply.ok and reply.document is not None and reply.document.ended == 2
    assert [(w.code, w.parameters["Count"]) for w in reply.warnings] == [("CMN.ATO.CUAUTHCNTCT.W02", "2")]
    current = [c for c in _contacts(ato, client["id"]) if c["account_id"] is None and c["end_date"] is None]
    assert [(c["family_name"], c["start_date"]) for c in current] == [("Citizen", "2026-11-30")]


def test_submit_adds_an_account_level_contact(ato: Ato):
    account = _client(
        ato,
        "SELECT t.*, a.id AS account_id, a.branch FROM reg_taxpayers t JOIN reg_accounts a ON a.taxpayer_id = t.id "
        "WHERE a.kind = 'AS' AND NOT EXISTS (SELECT 1 FROM reg_contacts c WHERE c.account_id = a.id) ORDER BY a.id",
    )
    reply = ato.result(
        _request(
            cuauthcntct.SubmitRequest,
            account["tfn"],
            account=Account("AS", account["branch"]),
            family_name="Nguyen",
            given_name="Minh",
            email="minh@example.com",
        )
    )
    assert reply.ok and reply.document is not None
    assert (reply.document.action, reply.document.ended) == ("ADD", 0)
    rows = [c for c in _contacts(ato, account["id"]) if c["account_id"] == account["account_id"]]
    assert [(c["family_name"], c["email"], c["start_date"], c["end_date"]) for c in rows] == [
        ("Nguyen", "minh@example.com", "2026-11-30", None)
    ]


def test_the_same_contact_again_is_a_warning_and_changes_nothing(ato: Ato):
    client = _client(ato, WITH_CONTACTS, 1)
    before = _contacts(ato, client["id"])
    [current] = [c for c in before if c["account_id"] is None and c["end_date"] is None]
    reply = ato.result(
        _request(
            cuauthcntct.SubmitRequest,
            client["tfn"],
            family_name=current["family_name"].upper(),
            given_name=current["given_name"],
            position=current["position"],
            phone=current["phone"],
            email=current["email"],
        )
    )
    assert reply.ok and reply.document is not None and reply.document.action == "NONE"
    assert [w.code for w in reply.warnings] == ["CMN.ATO.CUAUTHCNTCT.W01"]
    assert _contacts(ato, client["id"]) == before


def test_a_second_change_on_the_same_day_corrects_the_first(ato: Ato):
    client = _client(ato, WITH_CONTACTS, 1)
    assert ato.result(_request(cuauthcntct.SubmitRequest, client["tfn"], **NEW)).ok
    fixed = {**NEW, "phone": "0412345678"}
    reply = ato.result(_request(cuauthcntct.SubmitRequest, client["tfn"], **fixed))
    assert reply.document is not None and (reply.document.action, reply.document.ended) == ("CORRECT", 0)
    rows = [c for c in _contacts(ato, client["id"]) if c["account_id"] is None]
    assert [(c["phone"], c["start_date"]) for c in rows if c["end_date"] is None] == [("0412345678", "2026-11-30")]
    assert [c["end_date"] for c in rows].count("2026-11-29") == 1


_NAME = "AuthorisedContact/PersonNameDetails"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"family_name": None, "given_name": None},
         [("CMN.ATO.CUAUTHCNTCT.CNT01", f"{_NAME}/FamilyNameT"), ("CMN.ATO.CUAUTHCNTCT.CNT01", f"{_NAME}/GivenNameT")]),
        ({"given_name": "  "}, [("CMN.ATO.CUAUTHCNTCT.CNT01", f"{_NAME}/GivenNameT")]),
        ({"phone": "(02) 9876"}, [("CMN.ATO.CUAUTHCNTCT.CNT02", "AuthorisedContact/TelephoneNumberT")]),
        ({"email": "jo at example.com"}, [("CMN.ATO.CUAUTHCNTCT.CNT03", "AuthorisedContact/EmailAddressT")]),
        ({"start": date(2026, 12, 1)}, [("CMN.ATO.CUAUTHCNTCT.DT02", "AuthorisedContact/StartD")]),
        ({"start": date(1990, 1, 1)}, [("CMN.ATO.CUAUTHCNTCT.DT01", "AuthorisedContact/StartD")]),
        ({"account": Account("AS", "009")}, [("CMN.ATO.CUAUTHCNTCT.ACC02", "Account")]),
    ],
    ids=["no-name", "blank-given-name", "phone-not-digits", "email-without-at", "future-start",
         "before-current-start", "unknown-account"],
)  # fmt: skip
@pytest.mark.parametrize(
    "request_class", [cuauthcntct.ValidateRequest, cuauthcntct.SubmitRequest], ids=["validate", "submit"]
)
def test_each_rule_names_the_field_and_nothing_changes(ato: Ato, request_class, change, expected):
    client = _client(ato, WITH_CONTACTS, 1)
    before = _contacts(ato, client["id"])
    reply = ato.result(_request(request_class, client["tfn"], **{**NEW, **change}))
    assert [(e.code, e.parameters["Field"]) for e in reply.errors] == expected and reply.document is None
    assert _contacts(ato, client["id"]) == before


def test_an_unlinked_or_unknown_client_is_refused(ato: Ato):
    stranger = ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE NOT EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a "
        "ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.end_date IS NULL) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]
    before = _contacts(ato, stranger["id"])
    for account in (None, Account("AS", "009")):  # an unknown account tells a stranger nothing either
        reply = ato.result(_request(cuauthcntct.SubmitRequest, stranger["tfn"], account=account, **NEW))
        assert error_codes(reply) == ["CMN.ATO.AUTH.002"]
    assert _contacts(ato, stranger["id"]) == before
    unknown = ato.result(_request(cuauthcntct.ValidateRequest, "123456782", **NEW))
    assert error_codes(unknown) == ["CMN.ATO.GEN.ID01"]


def test_a_malformed_request_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CUAUTHCNTCTSubmitRequest xmlns="http://www.sbr.gov.au/ato/cuauthcntct"><ClientIdentifier>'
        "<TaxFileNumberId>123456782</TaxFileNumberId></ClientIdentifier><AuthorisedContact>"
        "<StartD>30/11/2026</StartD></AuthorisedContact></CUAUTHCNTCTSubmitRequest>"
    )
    reply = ato.reply(ato.send_raw(cuauthcntct.SubmitRequest.SERVICE_ACTION, document), cuauthcntct.SubmitResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and "StartD" in reply.errors[0].text


def _listed_contacts(ato: Ato, tfn: str, account: Account | None = None) -> list[tuple[object, ...]]:
    """The authorised contacts as the next CUADDR List gives them (the ATO's one way to read them)."""
    listed = ato.result(
        cuaddr.ListRequest(client=ClientIdentifier.of(tfn=tfn), account=account, include_history=True, usages=["CNT"])
    )
    assert listed.ok and listed.document is not None, listed.items
    return [
        (
            a.usage,
            a.contact_name.family_name if a.contact_name else None,
            a.position,
            a.phone,
            a.period.start.isoformat(),
            a.period.end.isoformat() if a.period.end else None,
        )
        for a in listed.document.addresses
    ]


def test_a_contact_submitted_is_what_the_next_list_gives_at_its_level(ato: Ato):
    client = _client(ato, WITH_CONTACTS, 1)
    [old] = [c for c in _contacts(ato, client["id"]) if c["account_id"] is None and c["end_date"] is None]
    assert ato.result(_request(cuauthcntct.SubmitRequest, client["tfn"], start=date(2026, 11, 16), **NEW)).ok
    listed = _listed_contacts(ato, client["tfn"])
    assert ("CNT", "Citizen", "Office manager", "0298765432", "2026-11-16", None) in listed
    assert ("CNT", old["family_name"], old["position"], old["phone"], old["start_date"], "2026-11-15") in listed
    # Every usage at once lists the contacts after the addresses, and an account's contact only at its account.
    everything = ato.result(cuaddr.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"]), include_history=True))
    assert everything.document is not None and everything.document.addresses[-1].usage == "CNT"
    account = _client(
        ato,
        "SELECT t.*, a.branch FROM reg_taxpayers t JOIN reg_accounts a ON a.taxpayer_id = t.id WHERE a.kind = 'AS' "
        "AND NOT EXISTS (SELECT 1 FROM reg_contacts c WHERE c.taxpayer_id = t.id) ORDER BY a.id",
    )
    level = Account("AS", account["branch"])
    assert ato.result(_request(cuauthcntct.SubmitRequest, account["tfn"], account=level, **NEW)).ok
    assert _listed_contacts(ato, account["tfn"], level) == [
        ("CNT", "Citizen", "Office manager", "0298765432", "2026-11-30", None)
    ]
    assert _listed_contacts(ato, account["tfn"]) == []


def test_the_contact_is_not_changed_as_an_address(ato: Ato):
    client = _client(ato, WITH_CONTACTS, 1)
    before = _contacts(ato, client["id"])
    contact = cuaddr.AddressUpdate(usage="CNT", electronic="accounts@example.com.au")
    reply = ato.result(cuaddr.SubmitRequest(client=ClientIdentifier.of(tfn=client["tfn"]), addresses=[contact]))
    assert [(e.code, e.parameters["Field"]) for e in reply.errors] == [("CMN.ATO.CUADDR.ADR07", "Address[1]/UsageC")]
    assert _contacts(ato, client["id"]) == before


def test_an_accounts_contact_replaced_ends_only_that_accounts(ato: Ato):
    """The contact is kept per level: replacing an account's ends the account's current one, and the client
    level's contact stays current."""
    client = _client(
        ato,
        f"SELECT * FROM ({WITH_CONTACTS}) t WHERE EXISTS (SELECT 1 FROM reg_accounts a "  # noqa: S608
        "WHERE a.taxpayer_id = t.id AND a.kind = 'AS' AND a.branch = '001' "
        "AND NOT EXISTS (SELECT 1 FROM reg_contacts c WHERE c.account_id = a.id))",
        1,
    )
    at_client = [c for c in _contacts(ato, client["id"]) if c["account_id"] is None]
    level = Account("AS", "001")
    first = _request(cuauthcntct.SubmitRequest, client["tfn"], account=level, **NEW, start=date(2026, 1, 5))
    assert ato.result(first).ok
    second = _request(cuauthcntct.SubmitRequest, client["tfn"], account=level, **{**NEW, "phone": "0291112222"})
    reply = ato.result(second)
    assert reply.ok and reply.document is not None and (reply.document.action, reply.document.ended) == ("REPLACE", 1)
    rows = _contacts(ato, client["id"])
    assert [c for c in rows if c["account_id"] is None] == at_client
    assert [(c["phone"], c["start_date"], c["end_date"]) for c in rows if c["account_id"] is not None] == [
        ("0298765432", "2026-01-05", "2026-11-29"),
        ("0291112222", "2026-11-30", None),
    ]


def test_an_account_the_client_does_not_have_is_refused_in_plain_words(ato: Ato):
    """An activity statement account of a client with none (another client's, for all the agent knows)."""
    client = _client(
        ato,
        "SELECT t.* FROM reg_taxpayers t WHERE NOT EXISTS (SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id "
        "AND a.kind = 'AS') ORDER BY t.id",
    )
    before = _contacts(ato, client["id"])
    for cls in (cuauthcntct.ValidateRequest, cuauthcntct.SubmitRequest):
        reply = ato.result(_request(cls, client["tfn"], account=Account("AS", "001"), **NEW))
        assert error_codes(reply) == ["CMN.ATO.CUAUTHCNTCT.ACC02"] and reply.document is None
        assert [api.item_in_plain_words(e) for e in reply.errors] == [
            "The ATO holds no record of activity statement account 001 for this client. Check the account and try "
            "again."
        ]
    assert _contacts(ato, client["id"]) == before
