"""CUASSOC through the real gateway to the stand-in ATO: a client's associates a page at a time, with the
identifiers the agent may see, and the refusals."""

from __future__ import annotations

import pytest

from ato_gateway.wire.documents import cuassoc
from ato_gateway.wire.documents.common import ClientIdentifier
from tests.ato_fixtures import AGENT_TAN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

ASSOCIATES = (
    "SELECT s.*, t.tfn AS a_tfn, t.abn AS a_abn, t.wpn AS a_wpn FROM reg_associates s "
    "LEFT JOIN reg_taxpayers t ON t.id = s.associate_id WHERE s.taxpayer_id = ? ORDER BY s.id"
)


def _linked(ato: Ato) -> set[int]:
    rows = ato.query(
        "SELECT l.taxpayer_id FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? "
        "AND l.end_date IS NULL AND l.level = 'CLIENT'",
        AGENT_TAN,
    )
    return {r["taxpayer_id"] for r in rows}


def _tfn(ato: Ato, taxpayer_id: int) -> str:
    return ato.query("SELECT tfn FROM reg_taxpayers WHERE id = ?", taxpayer_id)[0]["tfn"]


def _pages(
    ato: Ato, tfn: str, include_history: bool = False, page_size: int | None = None
) -> tuple[list[cuassoc.Associate], int]:
    items: list[cuassoc.Associate] = []
    continuation, pages = None, 0
    while True:
        document = cuassoc.ListRequest(
            client=ClientIdentifier.of(tfn=tfn),
            include_history=include_history,
            continuation=continuation,
            page_size=page_size,
        )
        reply = ato.result(document)
        assert reply.ok and reply.document is not None, reply.items
        items += reply.document.associates
        pages += 1
        continuation = reply.document.continuation
        if continuation is None:
            return items, pages


def _list(tfn: str) -> cuassoc.ListRequest:
    return cuassoc.ListRequest(client=ClientIdentifier.of(tfn=tfn))


def _expected(row: dict, linked: set[int]) -> ClientIdentifier | None:
    """The rule: an ABN, else a WPN, else the TFN only of an associate the agent also acts for."""
    if row["associate_id"] is None:
        return None
    if row["a_abn"]:
        return ClientIdentifier(abn=row["a_abn"])
    if row["a_wpn"]:
        return ClientIdentifier(wpn=row["a_wpn"])
    return ClientIdentifier(tfn=row["a_tfn"]) if row["associate_id"] in linked else None


def test_list_pages_through_the_associates_with_their_periods(ato: Ato):
    linked = _linked(ato)
    counts = ato.query("SELECT taxpayer_id FROM reg_associates GROUP BY taxpayer_id ORDER BY count(*) DESC, 1")
    busiest = next(r["taxpayer_id"] for r in counts if r["taxpayer_id"] in linked)
    rows = ato.query(ASSOCIATES, busiest)
    everything, pages = _pages(ato, tfn=_tfn(ato, busiest), include_history=True, page_size=2)
    assert len(rows) > 2 and pages == -(-len(rows) // 2)
    assert [(a.relationship, a.name, a.period.start.isoformat()) for a in everything] == [
        (r["relationship"], r["name"], r["start_date"]) for r in rows
    ]
    assert [a.period.end.isoformat() if a.period.end else None for a in everything] == [r["end_date"] for r in rows]
    current, _ = _pages(ato, tfn=_tfn(ato, busiest))
    assert [a.name for a in current] == [r["name"] for r in rows if r["end_date"] is None]


def test_an_associate_in_the_register_carries_an_identifier_the_agent_may_see(ato: Ato):
    linked = _linked(ato)
    clients = ato.query(
        "SELECT DISTINCT taxpayer_id FROM reg_associates WHERE associate_id IS NOT NULL ORDER BY taxpayer_id"
    )
    seen: set[str] = set()
    for client in (c["taxpayer_id"] for c in clients if c["taxpayer_id"] in linked):
        rows = ato.query(ASSOCIATES, client)
        listed, _ = _pages(ato, tfn=_tfn(ato, client), include_history=True)
        assert [a.identifier for a in listed] == [_expected(r, linked) for r in rows]
        assert [a.entity_type is not None for a in listed] == [r["associate_id"] is not None for r in rows]
        seen |= {"abn" if a.identifier.abn else "tfn" for a in listed if a.identifier}
    assert seen == {"abn", "tfn"}  # both kinds really occur in the register this test runs on


def test_list_needs_a_client_level_link(ato: Ato):
    stranger = ato.query(
        "SELECT t.tfn FROM reg_taxpayers t WHERE NOT EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a "
        "ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.end_date IS NULL) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]
    assert error_codes(ato.result(_list(stranger["tfn"]))) == ["CMN.ATO.AUTH.002"]
    account_only = ato.query(
        "SELECT t.tfn FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id JOIN reg_taxpayers t "
        "ON t.id = l.taxpayer_id WHERE g.tan = ? AND l.level = 'ACCOUNT' AND l.end_date IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM reg_links c WHERE c.agent_id = l.agent_id AND c.taxpayer_id = l.taxpayer_id "
        "AND c.level = 'CLIENT' AND c.end_date IS NULL) ORDER BY l.id LIMIT 1",
        AGENT_TAN,
    )[0]
    assert error_codes(ato.result(_list(account_only["tfn"]))) == ["CMN.ATO.AUTH.002"]


def test_list_refuses_an_unknown_client_and_a_foreign_continuation(ato: Ato):
    reply = ato.result(_list("123456782"))
    assert error_codes(reply) == ["CMN.ATO.GEN.ID01"]
    client = min(_linked(ato))
    reply = ato.result(
        cuassoc.ListRequest(client=ClientIdentifier.of(tfn=_tfn(ato, client)), continuation="Y3VhZGRyOjE6OjQ")
    )
    assert error_codes(reply) == ["CMN.ATO.CUASSOC.LST01"]


def test_a_malformed_list_request_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CUASSOCListRequest xmlns="http://www.sbr.gov.au/ato/cuassoc"><ClientIdentifier>'
        "<TaxFileNumberId>123456782</TaxFileNumberId></ClientIdentifier><IncludeHistoryI>true</IncludeHistoryI>"
        "<PageSizeN>0</PageSizeN></CUASSOCListRequest>"
    )
    reply = ato.reply(ato.send_raw(cuassoc.ListRequest.SERVICE_ACTION, document), cuassoc.ListResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and "PageSizeN" in reply.errors[0].text
