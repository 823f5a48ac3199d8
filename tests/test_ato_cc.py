"""CC through the real gateway to the stand-in ATO: list the letters of the practice's clients over a date range
(one client, several, or all of them, a page at a time) and get one with its PDF."""

from __future__ import annotations

import re
import zlib
from datetime import date
from typing import Any

import pytest

from ato_gateway.wire.documents import cc
from ato_gateway.wire.documents.common import ClientIdentifier
from tests.ato_fixtures import AGENT_TAN, DEMO_ABN, OTHER_AGENT_TAN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

FROM, TO = date(2021, 12, 1), date(2026, 11, 30)  # five years to the stand-in ATO's business date


def _covered(ato: Ato, issued_from: date = FROM, issued_to: date = TO) -> list[dict[str, Any]]:
    """The register's letters in the range that the practice's current links cover, worked out here from the
    links: a client-level link covers all of a client's letters, an account-level one its account's."""
    links = ato.query(
        "SELECT l.taxpayer_id, l.level, l.account_id FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id "
        "WHERE a.tan = ? AND l.end_date IS NULL",
        AGENT_TAN,
    )
    clients = {link["taxpayer_id"] for link in links if link["level"] == "CLIENT"}
    accounts = {(link["taxpayer_id"], link["account_id"]) for link in links if link["level"] == "ACCOUNT"}
    letters = ato.query(
        "SELECT c.id, c.taxpayer_id, c.account_id, c.issued_date FROM reg_communications c "
        "WHERE c.issued_date BETWEEN ? AND ? AND c.taxpayer_id IN (SELECT l.taxpayer_id FROM reg_links l "
        "JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? AND l.end_date IS NULL)",
        issued_from.isoformat(),
        issued_to.isoformat(),
        AGENT_TAN,
    )
    return [
        letter
        for letter in letters
        if letter["taxpayer_id"] in clients or (letter["taxpayer_id"], letter["account_id"]) in accounts
    ]


def _client_with_letters(ato: Ato, minimum: int = 2, skip: int = 0) -> dict[str, Any]:
    """A client of the practice linked at client level, with at least ``minimum`` letters in the range."""
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a "
        "ON a.id = l.agent_id WHERE a.tan = ? AND l.end_date IS NULL AND l.level = 'CLIENT' AND (SELECT count(*) "
        "FROM reg_communications c WHERE c.taxpayer_id = t.id AND c.issued_date BETWEEN ? AND ?) >= ? "
        "ORDER BY t.id LIMIT 1 OFFSET ?",
        AGENT_TAN,
        FROM.isoformat(),
        TO.isoformat(),
        minimum,
        skip,
    )[0]


def _of_another_agent(ato: Ato) -> dict[str, Any]:
    """A letter of a client of the other agent that this practice has no current link with."""
    return ato.query(
        "SELECT c.id, t.tfn FROM reg_communications c JOIN reg_taxpayers t ON t.id = c.taxpayer_id "
        "WHERE EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? "
        "AND l.taxpayer_id = t.id AND l.end_date IS NULL) AND NOT EXISTS (SELECT 1 FROM reg_links l "
        "JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? AND l.taxpayer_id = t.id AND l.end_date IS NULL) "
        "ORDER BY c.id LIMIT 1",
        OTHER_AGENT_TAN,
        AGENT_TAN,
    )[0]


def _every_page(ato: Ato, **kwargs: Any) -> tuple[list[cc.Communication], int]:
    """Ask page after page, reading each with a streaming parse, until a response has no continuation."""
    items: list[cc.Communication] = []
    continuation = None
    pages = 0
    while True:
        message = ato.ask(cc.ListRequest(continuation=continuation, **kwargs)).message
        reply = ato.stream(message, cc.ListResponse, "communications")
        stream = reply.stream
        assert reply.ok and stream is not None, reply.errors
        items.extend(stream)
        pages += 1
        assert stream.document is not None
        continuation = stream.document.continuation
        if continuation is None:
            return items, pages


def test_list_of_all_clients_is_every_covered_letter_oldest_first(ato: Ato):
    reply = ato.result(cc.ListRequest(issued_from=FROM, issued_to=TO))
    assert reply.ok and reply.document is not None and reply.document.continuation is None
    listed = reply.document.communications
    expected = _covered(ato)
    assert sorted(int(c.id) for c in listed) == sorted(letter["id"] for letter in expected)
    assert [(c.issued, int(c.id)) for c in listed] == sorted((c.issued, int(c.id)) for c in listed)


def test_list_of_one_client_names_it_and_its_letters(ato: Ato):
    client = _client_with_letters(ato)
    reply = ato.result(cc.ListRequest(issued_from=FROM, issued_to=TO, clients=[ClientIdentifier.of(tfn=client["tfn"])]))
    assert reply.ok and reply.document is not None
    letters = ato.query(
        "SELECT id, kind, title, issued_date FROM reg_communications WHERE taxpayer_id = ? AND issued_date "
        "BETWEEN ? AND ? ORDER BY issued_date, id",
        client["id"],
        FROM.isoformat(),
        TO.isoformat(),
    )
    listed = reply.document.communications
    assert [(c.id, c.kind, c.title, c.issued.isoformat()) for c in listed] == [
        (str(r["id"]), r["kind"], r["title"], r["issued_date"]) for r in letters
    ]
    for item in listed:
        assert item.client.tfn == client["tfn"]
        if client["entity"] == "IND":
            assert item.person_name and item.person_name.family_name == client["family_name"]
        else:
            assert item.organisation_name in (client["organisation_name"], client["legal_name"])


def test_list_of_several_clients_by_any_identifier(ato: Ato):
    first, second = _client_with_letters(ato), _client_with_letters(ato, skip=1)
    by_abn = second["abn"] is not None
    clients = [
        ClientIdentifier.of(tfn=first["tfn"]),
        ClientIdentifier.of(abn=second["abn"]) if by_abn else ClientIdentifier.of(tfn=second["tfn"]),
        ClientIdentifier.of(tfn=first["tfn"]),  # a repeat is listed once
    ]
    reply = ato.result(cc.ListRequest(issued_from=FROM, issued_to=TO, clients=clients))
    assert reply.ok and reply.document is not None
    listed = reply.document.communications
    assert {c.client.tfn for c in listed} == {first["tfn"], second["tfn"]}
    assert len({c.id for c in listed}) == len(listed)


def test_a_narrow_range_lists_only_its_letters(ato: Ato):
    client = _client_with_letters(ato, minimum=2)
    dates = [
        r["issued_date"]
        for r in ato.query(
            "SELECT issued_date FROM reg_communications WHERE taxpayer_id = ? ORDER BY issued_date", client["id"]
        )
    ]
    day = date.fromisoformat(dates[-1])
    reply = ato.result(cc.ListRequest(issued_from=day, issued_to=day, clients=[ClientIdentifier.of(tfn=client["tfn"])]))
    assert reply.document is not None
    assert [c.issued for c in reply.document.communications] == [day] * dates.count(day.isoformat())


@pytest.mark.parametrize(
    ("range_", "code"),
    [
        ((date(2026, 1, 2), date(2026, 1, 1)), "CMN.ATO.CC.LST01"),
        ((date(2020, 11, 29), date(2025, 11, 30)), "CMN.ATO.CC.LST02"),
    ],
)
def test_a_bad_date_range_is_refused(ato: Ato, range_: tuple[date, date], code: str):
    reply = ato.result(cc.ListRequest(issued_from=range_[0], issued_to=range_[1]))
    assert error_codes(reply) == [code] and reply.document is None


def test_five_years_to_the_day_is_allowed(ato: Ato):
    reply = ato.result(cc.ListRequest(issued_from=date(2020, 2, 29), issued_to=date(2025, 2, 28)))
    assert reply.ok


def test_more_clients_than_one_request_takes_is_refused(ato: Ato):
    tfns = [r["tfn"] for r in ato.query("SELECT tfn FROM reg_taxpayers ORDER BY id LIMIT ?", cc.MAX_CLIENTS + 1)]
    clients = [ClientIdentifier.of(tfn=tfn) for tfn in tfns]
    reply = ato.result(cc.ListRequest(issued_from=FROM, issued_to=TO, clients=clients))
    assert error_codes(reply) == ["CMN.ATO.CC.LST03"]
    assert reply.errors[0].parameters == {"Count": "101", "Maximum": "100"}


def test_a_continuation_the_service_did_not_issue_is_refused(ato: Ato):
    reply = ato.result(cc.ListRequest(issued_from=FROM, issued_to=TO, continuation="page-2"))
    assert error_codes(reply) == ["CMN.ATO.CC.LST04"]


def test_named_clients_must_be_known_and_linked(ato: Ato):
    linked = _client_with_letters(ato)
    stranger = _of_another_agent(ato)
    clients = [
        ClientIdentifier.of(tfn=linked["tfn"]),
        ClientIdentifier.of(tfn=stranger["tfn"]),
        ClientIdentifier.of(tfn="123456782"),  # valid, but in nobody's register
    ]
    reply = ato.result(cc.ListRequest(issued_from=FROM, issued_to=TO, clients=clients))
    assert error_codes(reply) == ["CMN.ATO.AUTH.002", "CMN.ATO.GEN.ID01"] and reply.document is None
    assert [e.parameters["Position"] for e in reply.errors] == ["2", "3"]


def test_a_malformed_list_document_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CCListRequest xmlns="http://www.sbr.gov.au/ato/cc"><IssuedFromD>2026-01-01</IssuedFromD></CCListRequest>'
    )
    reply = ato.reply(ato.send_raw(cc.ListRequest.SERVICE_ACTION, document), cc.ListResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and "IssuedToD" in reply.errors[0].text


def _pdf_text(pdf: bytes) -> str:
    """Check the PDF's structure (header, trailer, every cross-reference offset pointing at its object) and
    return the text of its content streams."""
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    assert pdf[startxref:].startswith(b"xref")
    table = re.match(rb"xref\s+0 (\d+)\s+((?:\d{10} \d{5} [fn]\s*)+)", pdf[startxref:])
    assert table is not None
    entries = re.findall(rb"(\d{10}) \d{5} ([fn])", table.group(2))
    assert len(entries) == int(table.group(1))
    for number, (offset, kind) in enumerate(entries):
        if kind == b"n":
            assert pdf[int(offset) :].startswith(f"{number} 0 obj".encode()), f"object {number}"
    streams = re.findall(rb"/FlateDecode.*?stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    return "".join(zlib.decompress(s).decode("latin-1") for s in streams)


def test_get_gives_the_letter_and_its_pdf(ato: Ato):
    client = _client_with_letters(ato)
    row = ato.query(
        "SELECT c.*, a.kind AS account_kind, a.branch FROM reg_communications c LEFT JOIN reg_accounts a "
        "ON a.id = c.account_id WHERE c.taxpayer_id = ? ORDER BY c.id LIMIT 1",
        client["id"],
    )[0]
    reply = ato.result(cc.GetRequest(id=str(row["id"])))
    assert reply.ok and reply.document is not None
    letter, attachment = reply.document.communication, reply.document.attachment
    assert (letter.id, letter.kind, letter.title) == (str(row["id"]), row["kind"], row["title"])
    assert letter.client.tfn == client["tfn"] and letter.issued.isoformat() == row["issued_date"]
    assert (letter.account.kind if letter.account else None) == row["account_kind"]
    assert attachment.media_type == "application/pdf" and attachment.file_name == f"{row['kind']}-{row['id']}.pdf"
    text = _pdf_text(attachment.content)
    assert row["title"] in text and "Australian Taxation Office" in text
    name = client["family_name"] if client["entity"] == "IND" else client["organisation_name"] or client["legal_name"]
    assert name in text
    issued = date.fromisoformat(row["issued_date"])
    assert f"{issued.day} {issued:%B %Y}" in text

    again = ato.result(cc.GetRequest(id=str(row["id"])))
    assert again.document is not None and again.document.attachment.content == attachment.content


@pytest.mark.parametrize(("which", "code"), [("unknown", "CMN.ATO.CC.GET01"), ("other", "CMN.ATO.AUTH.002")])
def test_get_refuses_an_unknown_or_unlinked_letter(ato: Ato, which: str, code: str):
    wanted = "999999999" if which == "unknown" else str(_of_another_agent(ato)["id"])
    reply = ato.result(cc.GetRequest(id=wanted))
    assert error_codes(reply) == [code] and reply.document is None


def test_an_account_level_link_covers_only_its_accounts_letters(ato: Ato):
    """Letters of a client the practice acts for on one account only: that account's are listed and can be got,
    the others (a notice of assessment, say) are neither."""
    rows = ato.query(
        "SELECT c.id, c.account_id, l.account_id AS linked, t.tfn FROM reg_communications c "
        "JOIN reg_taxpayers t ON t.id = c.taxpayer_id JOIN reg_links l ON l.taxpayer_id = t.id "
        "JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? AND l.end_date IS NULL AND l.level = 'ACCOUNT' "
        "AND NOT EXISTS (SELECT 1 FROM reg_links o WHERE o.agent_id = a.id AND o.taxpayer_id = t.id "
        "AND o.end_date IS NULL AND o.level = 'CLIENT') AND c.issued_date BETWEEN ? AND ? ORDER BY c.id",
        AGENT_TAN,
        FROM.isoformat(),
        TO.isoformat(),
    )
    hidden = next(r for r in rows if r["account_id"] != r["linked"])
    reply = ato.result(cc.ListRequest(issued_from=FROM, issued_to=TO, clients=[ClientIdentifier.of(tfn=hidden["tfn"])]))
    assert reply.ok and reply.document is not None
    linked_accounts = {r["linked"] for r in rows if r["tfn"] == hidden["tfn"]}
    expected = {str(r["id"]) for r in rows if r["tfn"] == hidden["tfn"] and r["account_id"] in linked_accounts}
    assert {c.id for c in reply.document.communications} == expected
    refused = ato.result(cc.GetRequest(id=str(hidden["id"])))
    assert error_codes(refused) == ["CMN.ATO.AUTH.002"]


def test_paging_through_thousands_of_letters_gives_each_once(ato: Ato):
    ato.regenerate(
        seed=11,
        taxpayers=400,
        agents=[
            {
                "tan": AGENT_TAN,
                "abn": DEMO_ABN,
                "name": ato.practice.name,
                "kind": "TAX",
                "clients": 60,
                "letters_per_client": 60,
            },
        ],
    )
    expected = _covered(ato)
    assert len(expected) > 2000
    items, pages = _every_page(ato, issued_from=FROM, issued_to=TO, page_size=500)
    ids = [int(c.id) for c in items]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {letter["id"] for letter in expected}
    assert pages == -(-len(expected) // 500)
    assert [(c.issued, int(c.id)) for c in items] == sorted((c.issued, int(c.id)) for c in items)
