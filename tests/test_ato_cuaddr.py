"""CUADDR through the real gateway to the stand-in ATO: list addresses a page at a time, validate and submit new
current addresses at client level and for accounts, and every rule's error."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from ato_gateway import api
from ato_gateway.models import OutboxMessage
from ato_gateway.wire.documents import codec, cuaddr
from ato_gateway.wire.documents.common import Account, Address, ClientIdentifier
from tests.ato_fixtures import AGENT_TAN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

HOME = Address("12 Wattle Street", None, "PARRAMATTA", "NSW", "2150", "au")
# One current client-level address of the usage (bound twice), started well before the ATO's today (2026-11-30).
WITH_CURRENT = (
    "SELECT t.* FROM reg_taxpayers t WHERE (SELECT count(*) FROM reg_addresses r WHERE r.taxpayer_id = t.id "
    "AND r.usage = ? AND r.account_id IS NULL AND r.end_date IS NULL AND r.start_date BETWEEN '2000-01-01' AND "
    "'2026-10-31') = 1 AND (SELECT count(*) FROM reg_addresses r WHERE r.taxpayer_id = t.id AND r.usage = ? "
    "AND r.account_id IS NULL AND r.end_date IS NULL) = 1 ORDER BY t.id"
)
STRANGER = (
    "SELECT t.* FROM reg_taxpayers t WHERE NOT EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a "
    "ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.end_date IS NULL) ORDER BY t.id LIMIT 1"
)


def _linked(ato: Ato) -> set[int]:
    """The taxpayers the agent has a current client-level link with."""
    rows = ato.query(
        "SELECT l.taxpayer_id FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? "
        "AND l.end_date IS NULL AND l.level = 'CLIENT'",
        AGENT_TAN,
    )
    return {r["taxpayer_id"] for r in rows}


def _client(ato: Ato, sql: str = "SELECT * FROM reg_taxpayers ORDER BY id", *params: object) -> dict:
    """The first taxpayer the query finds that the agent has a client-level link with."""
    linked = _linked(ato)
    return next(r for r in ato.query(sql, *params) if r["id"] in linked)


def _addresses(ato: Ato, taxpayer_id: int) -> list[dict]:
    return ato.query("SELECT * FROM reg_addresses WHERE taxpayer_id = ? ORDER BY id", taxpayer_id)


def _pages(ato: Ato, tfn: str, **fields: Any) -> tuple[list[cuaddr.ListedAddress], int]:
    items: list[cuaddr.ListedAddress] = []
    continuation, pages = None, 0
    while True:
        document = cuaddr.ListRequest(client=ClientIdentifier.of(tfn=tfn), continuation=continuation, **fields)
        reply = ato.result(document)
        assert reply.ok and reply.document is not None, reply.items
        items += reply.document.addresses
        pages += 1
        continuation = reply.document.continuation
        if continuation is None:
            return items, pages


def _key(item: cuaddr.ListedAddress) -> tuple:
    place = item.address
    end = item.period.end.isoformat() if item.period.end else None
    return (item.usage, place.line1 if place else None, item.phone, item.electronic, item.period.start.isoformat(), end)


def _row_key(row: dict) -> tuple:
    return (row["usage"], row["line1"], row["phone"], row["email"], row["start_date"], row["end_date"])


# --- List ---


def test_list_pages_through_every_address_with_history_and_only_current_without(ato: Ato):
    counts = ato.query(
        "SELECT taxpayer_id FROM reg_addresses WHERE account_id IS NULL GROUP BY taxpayer_id "
        "ORDER BY count(*) DESC, taxpayer_id"
    )
    linked = _linked(ato)
    busiest = next(r["taxpayer_id"] for r in counts if r["taxpayer_id"] in linked)
    tfn = ato.query("SELECT tfn FROM reg_taxpayers WHERE id = ?", busiest)[0]["tfn"]
    rows = [r for r in _addresses(ato, busiest) if r["account_id"] is None]
    everything, pages = _pages(ato, tfn=tfn, include_history=True, page_size=3)
    assert [_key(i) for i in everything] == [_row_key(r) for r in rows]
    assert len(rows) > 3 and pages == -(-len(rows) // 3)  # a full last page says so: no empty page follows
    current, _ = _pages(ato, tfn=tfn, include_history=False)
    assert [_key(i) for i in current] == [_row_key(r) for r in rows if r["end_date"] is None]
    postal, _ = _pages(ato, tfn=tfn, include_history=True, usages=["POS"])
    assert [_key(i) for i in postal] == [_row_key(r) for r in rows if r["usage"] == "POS"]


def test_a_page_streams_item_by_item(ato: Ato):
    person = _client(ato, WITH_CURRENT, "RES", "RES")
    document = cuaddr.ListRequest(client=ClientIdentifier.of(tfn=person["tfn"]), include_history=True)
    reply = ato.stream(ato.ask(document).message, cuaddr.ListResponse, "addresses")
    items = reply.stream
    assert reply.ok and items is not None
    listed = list(items)
    assert [_key(i) for i in listed] == [_row_key(r) for r in _addresses(ato, person["id"]) if r["account_id"] is None]
    assert items.document is not None and items.document.continuation is None


def test_list_for_one_account_gives_that_accounts_addresses_only(ato: Ato):
    linked = _linked(ato)
    found = ato.query(
        "SELECT r.*, a.kind, a.branch, t.tfn FROM reg_addresses r JOIN reg_accounts a ON a.id = r.account_id "
        "JOIN reg_taxpayers t ON t.id = r.taxpayer_id ORDER BY r.id"
    )
    row = next(r for r in found if r["taxpayer_id"] in linked)
    items, _ = _pages(ato, tfn=row["tfn"], account=Account(row["kind"], row["branch"]), include_history=True)
    assert [_key(i) for i in items] == [
        _row_key(r) for r in _addresses(ato, row["taxpayer_id"]) if r["account_id"] == row["account_id"]
    ]
    assert items and all(i.usage == "BUS" for i in items)


def test_an_account_level_link_reaches_its_account_but_not_the_client_level(ato: Ato):
    link = ato.query(
        "SELECT t.tfn, a.kind, a.branch FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id "
        "JOIN reg_accounts a ON a.id = l.account_id JOIN reg_taxpayers t ON t.id = l.taxpayer_id "
        "WHERE g.tan = ? AND l.level = 'ACCOUNT' AND l.end_date IS NULL AND NOT EXISTS (SELECT 1 FROM reg_links c "
        "WHERE c.agent_id = l.agent_id AND c.taxpayer_id = l.taxpayer_id AND c.level = 'CLIENT' "
        "AND c.end_date IS NULL) ORDER BY l.id LIMIT 1",
        AGENT_TAN,
    )[0]
    refused = ato.result(cuaddr.ListRequest(client=ClientIdentifier.of(tfn=link["tfn"])))
    assert error_codes(refused) == ["CMN.ATO.AUTH.002"]
    allowed = ato.result(
        cuaddr.ListRequest(client=ClientIdentifier.of(tfn=link["tfn"]), account=Account(link["kind"], link["branch"]))
    )
    assert allowed.ok


def test_list_refuses_an_unlinked_client_an_unknown_one_and_a_foreign_continuation(ato: Ato):
    stranger = ato.query(STRANGER, AGENT_TAN)[0]
    assert error_codes(ato.result(cuaddr.ListRequest(client=ClientIdentifier.of(tfn=stranger["tfn"])))) == [
        "CMN.ATO.AUTH.002"
    ]
    assert error_codes(ato.result(cuaddr.ListRequest(client=ClientIdentifier.of(tfn="123456782")))) == [
        "CMN.ATO.GEN.ID01"
    ]
    person = _client(ato)
    reply = ato.result(cuaddr.ListRequest(client=ClientIdentifier.of(tfn=person["tfn"]), continuation="Y3VyZWw6MTox"))
    assert error_codes(reply) == ["CMN.ATO.CUADDR.LST01"]


def test_a_malformed_list_request_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CUADDRListRequest xmlns="http://www.sbr.gov.au/ato/cuaddr"><ClientIdentifier>'
        "<TaxFileNumberId>123456782</TaxFileNumberId></ClientIdentifier><IncludeHistoryI>true</IncludeHistoryI>"
        "<UsageC>HOME</UsageC></CUADDRListRequest>"
    )
    reply = ato.reply(ato.send_raw(cuaddr.ListRequest.SERVICE_ACTION, document), cuaddr.ListResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and "UsageC" in reply.errors[0].text


# --- Validate and Submit ---


def test_validate_reports_the_plan_and_changes_nothing(ato: Ato):
    person = _client(ato, WITH_CURRENT, "RES", "RES")
    before = _addresses(ato, person["id"])
    update = cuaddr.AddressUpdate("RES", HOME, start=date(2026, 11, 15))
    reply = ato.result(cuaddr.ValidateRequest(client=ClientIdentifier.of(tfn=person["tfn"]), addresses=[update]))
    assert reply.ok and reply.document is not None
    [result] = reply.document.results
    assert (result.usage, result.action, result.period.start, result.account) == (
        "RES",
        "REPLACE",
        date(2026, 11, 15),
        None,
    )
    assert _addresses(ato, person["id"]) == before


def test_submit_replaces_the_current_address_and_keeps_the_old_one_as_history(ato: Ato):
    person = _client(ato, WITH_CURRENT, "RES", "RES")
    [old] = [r for r in _addresses(ato, person["id"]) if r["usage"] == "RES" and r["end_date"] is None]
    update = cuaddr.AddressUpdate("RES", HOME, start=date(2026, 11, 15))
    reply = ato.result(cuaddr.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), addresses=[update]))
    assert reply.ok and reply.document is not None and reply.document.results[0].action == "REPLACE"
    rows = [r for r in _addresses(ato, person["id"]) if r["usage"] == "RES"]
    assert next(r for r in rows if r["id"] == old["id"])["end_date"] == "2026-11-14"
    [new] = [r for r in rows if r["end_date"] is None]
    assert (new["line1"], new["locality"], new["state"], new["postcode"], new["start_date"]) == (
        "12 Wattle Street", "PARRAMATTA", "NSW", "2150", "2026-11-15"
    )  # fmt: skip


def test_submit_adds_a_usage_the_client_had_none_of_from_the_atos_today(ato: Ato):
    without_web = (
        "SELECT * FROM reg_taxpayers t WHERE NOT EXISTS (SELECT 1 FROM reg_addresses r WHERE r.taxpayer_id = t.id "
        "AND r.usage = 'WEB') ORDER BY t.id"
    )
    person = _client(ato, without_web)
    update = cuaddr.AddressUpdate("WEB", electronic="https://www.example.com/jo")
    reply = ato.result(cuaddr.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), addresses=[update]))
    assert reply.ok and reply.document is not None
    assert reply.document.results[0].action == "ADD" and reply.document.results[0].period.start == date(2026, 11, 30)
    [web] = [r for r in _addresses(ato, person["id"]) if r["usage"] == "WEB"]
    assert (web["email"], web["start_date"], web["end_date"]) == ("https://www.example.com/jo", "2026-11-30", None)


def test_the_same_address_again_is_a_warning_and_changes_nothing(ato: Ato):
    person = _client(ato, WITH_CURRENT, "PHN", "PHN")
    before = _addresses(ato, person["id"])
    [phone] = [r for r in before if r["usage"] == "PHN" and r["end_date"] is None]
    update = cuaddr.AddressUpdate("PHN", phone=phone["phone"])
    reply = ato.result(cuaddr.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), addresses=[update]))
    assert reply.ok and reply.document is not None and reply.document.results[0].action == "NONE"
    assert [(w.code, w.parameters["Field"]) for w in reply.warnings] == [("CMN.ATO.CUADDR.W01", "Address[1]")]
    assert _addresses(ato, person["id"]) == before


def test_a_second_change_on_the_same_day_corrects_the_first(ato: Ato):
    person = _client(ato, WITH_CURRENT, "POS", "POS")
    box = Address("PO Box 1", None, "SYDNEY", "NSW", "2001", "au")
    first = cuaddr.AddressUpdate("POS", box, start=date(2026, 11, 20))
    assert ato.result(cuaddr.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), addresses=[first])).ok
    second = cuaddr.AddressUpdate("POS", replace(box, line1="PO Box 2"), start=date(2026, 11, 20))
    reply = ato.result(cuaddr.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), addresses=[second]))
    assert reply.document is not None and reply.document.results[0].action == "CORRECT"
    rows = [r for r in _addresses(ato, person["id"]) if r["usage"] == "POS" and r["account_id"] is None]
    assert [r["line1"] for r in rows if r["end_date"] is None] == ["PO Box 2"]
    assert not [r for r in rows if r["line1"] == "PO Box 1"]
    assert [r["end_date"] for r in rows].count("2026-11-19") == 1


def test_submit_for_several_accounts_replaces_each_accounts_address(ato: Ato):
    owner = _client(
        ato, "SELECT * FROM reg_taxpayers t WHERE (SELECT count(*) FROM reg_accounts a WHERE a.taxpayer_id = t.id) > 2"
    )
    accounts = ato.query("SELECT id, kind, branch FROM reg_accounts WHERE taxpayer_id = ? ORDER BY id", owner["id"])
    office = Address("Level 4", "88 George Street", "SYDNEY", "NSW", "2000", "au")
    reply = ato.result(
        cuaddr.SubmitRequest(
            client=ClientIdentifier.of(tfn=owner["tfn"]),
            accounts=[Account(a["kind"], a["branch"]) for a in accounts],
            addresses=[cuaddr.AddressUpdate("BUS", office, start=date(2026, 11, 2))],
        )
    )
    assert reply.ok and reply.document is not None
    assert [(r.account.kind if r.account else None) for r in reply.document.results] == [a["kind"] for a in accounts]
    rows = _addresses(ato, owner["id"])
    for account in accounts:
        current = [r for r in rows if r["account_id"] == account["id"] and r["usage"] == "BUS" and not r["end_date"]]
        assert [(r["line1"], r["start_date"]) for r in current] == [("Level 4", "2026-11-02")]


def test_batches_keep_each_message_within_the_atos_limit_of_accounts(ato: Ato):
    many = [Account("AS", f"{n:03d}") for n in range(1, 61)]
    batches = cuaddr.account_batches(many)
    assert [len(b) for b in batches] == [25, 25, 10] and [a for b in batches for a in b] == many
    assert cuaddr.account_batches([]) == [[]]  # client level: one message, rather than silently none
    too_many = cuaddr.SubmitRequest(
        client=ClientIdentifier.of(tfn="123456782"),
        accounts=many,
        addresses=[cuaddr.AddressUpdate("PHN", phone="0298765432")],
    )
    with pytest.raises(ValueError, match="at most 25"):  # our own bug is kept out of the outbox
        api.ask(too_many, practice=ato.practice, by=ato.user, purpose="tests.ask")
    assert not OutboxMessage.objects.exists()
    owner = _client(
        ato,
        "SELECT * FROM reg_taxpayers t WHERE EXISTS (SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id "
        "AND a.kind = 'AS') ORDER BY t.id",
    )
    accounts = ato.query("SELECT kind, branch FROM reg_accounts WHERE taxpayer_id = ? ORDER BY id", owner["id"])
    documents = [
        cuaddr.SubmitRequest(
            client=ClientIdentifier.of(tfn=owner["tfn"]),
            accounts=batch,
            addresses=[cuaddr.AddressUpdate("PHN", phone="0298765432")],
        )
        for batch in cuaddr.account_batches([Account(a["kind"], a["branch"]) for a in accounts])
    ]
    replies = [ato.reply(ato.ask(d).message, cuaddr.SubmitResponse) for d in documents]
    assert len(replies) == 1 and replies[0].ok
    assert len([r for r in _addresses(ato, owner["id"]) if r["phone"] == "0298765432"]) == len(accounts)


def test_more_than_25_accounts_in_one_message_is_refused(ato: Ato):
    owner = _client(ato)
    document = cuaddr.SubmitRequest(
        client=ClientIdentifier.of(tfn=owner["tfn"]),
        accounts=[Account("AS", f"{n:03d}") for n in range(1, 27)],
        addresses=[cuaddr.AddressUpdate("PHN", phone="0298765432")],
    )
    reply = ato.reply(
        ato.send_raw(cuaddr.SubmitRequest.SERVICE_ACTION, codec.encode(document).decode()), cuaddr.SubmitResponse
    )
    assert error_codes(reply) == ["CMN.ATO.CUADDR.ACC01"] and reply.errors[0].parameters["Count"] == "26"


_FUTURE = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        ([cuaddr.AddressUpdate("RES", Address("1 A St", None, "MELBOURNE", "NSW", "3000", "au"))],
         [("CMN.ATO.CUADDR.ADR01", "Address[1]/AddressDetails/PostcodeT")]),
        ([cuaddr.AddressUpdate("RES", Address("1 A St", None, "SYDNEY", None, None, "au"))],
         [("CMN.ATO.CUADDR.ADR02", "Address[1]/AddressDetails/StateOrTerritoryC"),
          ("CMN.ATO.CUADDR.ADR02", "Address[1]/AddressDetails/PostcodeT")]),
        ([cuaddr.AddressUpdate("PHN", phone="02 9876 5432")],
         [("CMN.ATO.CUADDR.ADR03", "Address[1]/TelephoneNumberT")]),
        ([cuaddr.AddressUpdate("EML", electronic="jo.example.com")],
         [("CMN.ATO.CUADDR.ADR04", "Address[1]/ElectronicAddressT")]),
        ([cuaddr.AddressUpdate("EML", electronic="jo@example")],
         [("CMN.ATO.CUADDR.ADR04", "Address[1]/ElectronicAddressT")]),
        ([cuaddr.AddressUpdate("PHN", HOME, phone="0298765432")], [("CMN.ATO.CUADDR.ADR05", "Address[1]")]),
        ([cuaddr.AddressUpdate("POS", HOME), cuaddr.AddressUpdate("POS", HOME)],
         [("CMN.ATO.CUADDR.ADR06", "Address[2]/UsageC")]),
        ([cuaddr.AddressUpdate("RES", HOME, start=_FUTURE)], [("CMN.ATO.CUADDR.DT02", "Address[1]/StartD")]),
        ([cuaddr.AddressUpdate("RES", HOME, start=date(1990, 1, 1))], [("CMN.ATO.CUADDR.DT01", "Address[1]/StartD")]),
        ([cuaddr.AddressUpdate("RES", Address("1 A St", None, "X", "NSW", "3000", "au")),
          cuaddr.AddressUpdate("PHN", phone="call me")],
         [("CMN.ATO.CUADDR.ADR01", "Address[1]/AddressDetails/PostcodeT"),
          ("CMN.ATO.CUADDR.ADR03", "Address[2]/TelephoneNumberT")]),
    ],
    ids=["postcode-of-another-state", "au-needs-state-and-postcode", "phone-not-digits", "email-without-at",
         "email-without-a-top-level-domain",
         "wrong-shape-for-usage", "usage-twice", "future-start", "before-current-start", "every-problem-at-once"],
)  # fmt: skip
@pytest.mark.parametrize("request_class", [cuaddr.ValidateRequest, cuaddr.SubmitRequest], ids=["validate", "submit"])
def test_each_rule_names_the_field_and_nothing_changes(ato: Ato, request_class, updates, expected):
    person = _client(ato, WITH_CURRENT, "RES", "RES")
    before = _addresses(ato, person["id"])
    reply = ato.result(request_class(client=ClientIdentifier.of(tfn=person["tfn"]), addresses=updates))
    assert [(e.code, e.parameters["Field"]) for e in reply.errors] == expected and reply.document is None
    assert _addresses(ato, person["id"]) == before


def test_an_unknown_account_or_an_unlinked_client_is_refused(ato: Ato):
    person = _client(ato)
    reply = ato.result(
        cuaddr.SubmitRequest(
            client=ClientIdentifier.of(tfn=person["tfn"]),
            accounts=[Account("AS", "009")],
            addresses=[cuaddr.AddressUpdate("PHN", phone="0298765432")],
        )
    )
    assert [(e.code, e.parameters["Field"], e.parameters["Account"]) for e in reply.errors] == [
        ("CMN.ATO.CUADDR.ACC02", "Account", "account AS 009")
    ]
    stranger = ato.query(STRANGER, AGENT_TAN)[0]
    before = _addresses(ato, stranger["id"])
    for accounts in ([], [Account("AS", "009")]):  # an unknown account tells a stranger nothing either
        reply = ato.result(
            cuaddr.SubmitRequest(
                client=ClientIdentifier.of(tfn=stranger["tfn"]),
                accounts=accounts,
                addresses=[cuaddr.AddressUpdate("PHN", phone="0298765432")],
            )
        )
        assert error_codes(reply) == ["CMN.ATO.AUTH.002"]
    assert _addresses(ato, stranger["id"]) == before


def test_a_malformed_submit_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CUADDRSubmitRequest xmlns="http://www.sbr.gov.au/ato/cuaddr"><ClientIdentifier>'
        "<TaxFileNumberId>123456782</TaxFileNumberId></ClientIdentifier></CUADDRSubmitRequest>"
    )
    reply = ato.reply(ato.send_raw(cuaddr.SubmitRequest.SERVICE_ACTION, document), cuaddr.SubmitResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and "Address" in reply.errors[0].text
