"""CUFI through the real gateway to the stand-in ATO: list a client's bank accounts (paged, with history, at client
or account level), validate and submit a replacement of the account refunds are paid into."""

from __future__ import annotations

from typing import Any

import pytest

from ato_gateway.wire.documents import cufi
from ato_gateway.wire.documents.common import Account, ClientIdentifier
from tests.ato_fixtures import AGENT_TAN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = "2026-11-30"  # the sandbox's business date the fixture sets
YESTERDAY = "2026-11-29"
_LINK = (
    "(SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? "
    "AND l.level = 'CLIENT' AND l.end_date IS NULL)"
)


def _client(ato: Ato, where: str = "1", linked: bool = True) -> dict[str, Any]:
    exists = "EXISTS" if linked else "NOT EXISTS"
    sql = f"SELECT t.* FROM reg_taxpayers t WHERE {where} AND {exists} {_LINK} ORDER BY t.id LIMIT 1"  # noqa: S608
    rows = ato.query(sql, AGENT_TAN)
    assert rows, "the register has no such client"
    return rows[0]


def _banked(ato: Ato, history: bool = False) -> dict[str, Any]:
    """A linked client with a client-level bank account (and with an ended one before it, if ``history``)."""
    ended = " AND b.end_date IS NOT NULL" if history else ""
    return _client(
        ato,
        f"EXISTS (SELECT 1 FROM reg_bank_accounts b WHERE b.taxpayer_id = t.id AND b.account_id IS NULL{ended})",  # noqa: S608
    )


def _rows(ato: Ato, taxpayer_id: int, account_id: int | None = None) -> list[dict[str, Any]]:
    return ato.query(
        "SELECT bsb, number, account_name, start_date, end_date FROM reg_bank_accounts "
        "WHERE taxpayer_id = ? AND account_id IS ? ORDER BY id",
        taxpayer_id,
        account_id,
    )


def _as_rows(records: list[cufi.FinancialInstitutionAccountRecord]) -> list[dict[str, Any]]:
    return [
        {
            "bsb": r.bsb,
            "number": r.number,
            "account_name": r.name,
            "start_date": r.period.start.isoformat(),
            "end_date": r.period.end.isoformat() if r.period.end else None,
        }
        for r in records
    ]


def _name(client: dict[str, Any]) -> str:
    return (client["organisation_name"] or f"{client['given_name']} {client['family_name']}")[:32]


def _replacement(
    cls: type[cufi.ValidateRequest] | type[cufi.SubmitRequest],
    client: ClientIdentifier,
    *,
    bsb: str,
    number: str,
    account_name: str,
    account: Account | None = None,
) -> cufi.ValidateRequest | cufi.SubmitRequest:
    """The document for a bank account given as an agent types it: the BSB's usual NNN-NNN form goes on the wire as
    six digits."""
    bank_account = cufi.FinancialInstitutionAccount(bsb=bsb.replace("-", ""), number=number, name=account_name)
    return cls(client=client, account=account, bank_account=bank_account)


# --- List ---


def test_list_gives_the_client_level_accounts_in_use(ato: Ato):
    client = _banked(ato, history=True)
    reply = ato.result(cufi.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert reply.ok and reply.document is not None and reply.document.continuation is None
    current = [r for r in _rows(ato, client["id"]) if r["end_date"] is None or r["end_date"] >= TODAY]
    assert _as_rows(reply.document.accounts) == current and len(current) < len(_rows(ato, client["id"]))


def test_list_with_history_pages_through_every_account_once(ato: Ato):
    client = _banked(ato, history=True)
    seen: list[cufi.FinancialInstitutionAccountRecord] = []
    continuation = None
    pages = 0
    while True:
        document = cufi.ListRequest(
            client=ClientIdentifier.of(tfn=client["tfn"]), include_history=True, page_size=1, continuation=continuation
        )
        items = ato.stream(ato.ask(document).message, cufi.ListResponse, "accounts").stream
        assert items is not None
        seen.extend(items)
        pages += 1
        assert items.document is not None
        continuation = items.document.continuation
        if continuation is None:
            break
    assert _as_rows(seen) == _rows(ato, client["id"]) and pages == len(seen) >= 2


def test_a_continuation_from_another_list_is_refused(ato: Ato):
    client = _banked(ato, history=True)
    first = ato.result(
        cufi.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"]), include_history=True, page_size=1)
    )
    assert first.document is not None and first.document.continuation
    # The same token for the list without history is another list's position.
    reply = ato.result(
        cufi.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"]), continuation=first.document.continuation)
    )
    assert error_codes(reply) == ["CMN.ATO.CUFI.LST01"]
    garbage = ato.result(cufi.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"]), continuation="not-a-token!"))
    assert error_codes(garbage) == ["CMN.ATO.CUFI.LST01"]


def test_list_needs_a_current_link_and_an_account_the_client_has(ato: Ato):
    stranger = _client(ato, linked=False)
    assert error_codes(ato.result(cufi.ListRequest(client=ClientIdentifier.of(tfn=stranger["tfn"])))) == [
        "CMN.ATO.AUTH.002"
    ]
    client = _client(ato, "t.abn IS NOT NULL")
    reply = ato.result(cufi.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"]), account=Account("AS", "999")))
    assert error_codes(reply) == ["CMN.ATO.CUFI.ACC01"] and reply.errors[0].parameters == {"Account": "AS 999"}
    # Asking a stranger's missing account says nothing about its accounts.
    reply = ato.result(cufi.ListRequest(client=ClientIdentifier.of(tfn=stranger["tfn"]), account=Account("AS", "999")))
    assert error_codes(reply) == ["CMN.ATO.AUTH.002"]


def test_a_malformed_list_request_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CUFIListRequest xmlns="http://www.sbr.gov.au/ato/cufi"><ClientIdentifier><TaxFileNumberId>123456782'
        "</TaxFileNumberId></ClientIdentifier><PageSizeN>0</PageSizeN></CUFIListRequest>"
    )
    reply = ato.reply(ato.send_raw(cufi.ListRequest.SERVICE_ACTION, document), cufi.ListResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and "PageSizeN" in reply.errors[0].text


# --- Validate and Submit ---


def test_validate_answers_the_replacement_and_changes_nothing(ato: Ato):
    client = _banked(ato)
    before = _rows(ato, client["id"])
    reply = ato.result(
        _replacement(
            cufi.ValidateRequest,
            ClientIdentifier.of(tfn=client["tfn"]),
            bsb="062-000",
            number="12345678",
            account_name="Z Q X",
        )
    )
    assert reply.ok and reply.document is not None
    assert [w.code for w in reply.warnings] == ["CMN.ATO.CUFI.FI05"]
    assert reply.document.bank_account.period.start.isoformat() == TODAY
    assert reply.document.previous_end_date is not None and reply.document.previous_end_date.isoformat() == YESTERDAY
    assert _rows(ato, client["id"]) == before


def test_submit_replaces_the_client_level_account_from_today(ato: Ato):
    client = _banked(ato)
    before = _rows(ato, client["id"])
    reply = ato.result(
        _replacement(
            cufi.SubmitRequest,
            ClientIdentifier.of(tfn=client["tfn"]),
            bsb="062000",
            number="12345678",
            account_name=_name(client),
        )
    )
    assert reply.ok and not reply.warnings
    after = _rows(ato, client["id"])
    assert after[: len(before)] == [
        {**row, "end_date": YESTERDAY} if row["end_date"] is None else row for row in before
    ]
    assert after[len(before) :] == [
        {"bsb": "062000", "number": "12345678", "account_name": _name(client), "start_date": TODAY, "end_date": None}
    ]
    listed = ato.result(cufi.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert listed.document is not None and [a.number for a in listed.document.accounts] == ["12345678"]


def test_a_second_replacement_on_the_same_day_supersedes_the_first(ato: Ato):
    client = _banked(ato)
    before = _rows(ato, client["id"])
    for number in ("12345678", "87654321"):
        reply = ato.result(
            _replacement(
                cufi.SubmitRequest,
                ClientIdentifier.of(tfn=client["tfn"]),
                bsb="062000",
                number=number,
                account_name=_name(client),
            )
        )
        assert reply.ok
    # One new period from today: the first replacement was never in force for a whole day, so it is gone.
    after = _rows(ato, client["id"])
    assert len(after) == len(before) + 1
    assert [r["number"] for r in after if r["end_date"] is None] == ["87654321"]
    assert all(r["end_date"] is None or r["end_date"] >= r["start_date"] for r in after)
    again = ato.result(
        _replacement(
            cufi.SubmitRequest,
            ClientIdentifier.of(tfn=client["tfn"]),
            bsb="062000",
            number="87654321",
            account_name=_name(client),
        )
    )
    assert error_codes(again) == ["CMN.ATO.CUFI.FI04"]


def test_submit_at_account_level_touches_only_that_account(ato: Ato):
    client = _client(ato, "EXISTS (SELECT 1 FROM reg_accounts x WHERE x.taxpayer_id = t.id AND x.kind = 'AS')")
    account = ato.query(
        "SELECT id, branch FROM reg_accounts WHERE taxpayer_id = ? AND kind = 'AS' ORDER BY id", client["id"]
    )[0]
    client_level = _rows(ato, client["id"])
    reply = ato.result(
        _replacement(
            cufi.SubmitRequest,
            ClientIdentifier.of(abn=client["abn"]),
            account=Account("AS", account["branch"]),
            bsb="083004",
            number="55501234",
            account_name=_name(client),
        )
    )
    assert reply.ok
    assert _rows(ato, client["id"]) == client_level
    listed = ato.result(
        cufi.ListRequest(client=ClientIdentifier.of(abn=client["abn"]), account=Account("AS", account["branch"]))
    )
    assert listed.document is not None and [(a.bsb, a.number) for a in listed.document.accounts] == [
        ("083004", "55501234")
    ]
    assert _rows(ato, client["id"], account["id"])[-1]["start_date"] == TODAY


@pytest.mark.parametrize(
    ("details", "codes", "fields"),
    [
        ({"bsb": "999000"}, ["CMN.ATO.CUFI.FI01"], ["FinancialInstitutionAccountBankStateBranchN"]),
        ({"number": "1234"}, ["CMN.ATO.CUFI.FI02"], ["FinancialInstitutionAccountFinancialInstitutionAccountN"]),
        ({"number": "12345678901"}, ["CMN.ATO.CUFI.FI02"], ["FinancialInstitutionAccountFinancialInstitutionAccountN"]),
        ({"account_name": "   "}, ["CMN.ATO.CUFI.FI03"], ["FinancialInstitutionAccountNameT"]),
        ({"account_name": "J" * 33}, ["CMN.ATO.CUFI.FI03"], ["FinancialInstitutionAccountNameT"]),
        (
            {"bsb": "001000", "number": "98765-4321", "account_name": "Jo <Citizen>"},
            ["CMN.ATO.CUFI.FI01", "CMN.ATO.CUFI.FI02", "CMN.ATO.CUFI.FI03"],
            [
                "FinancialInstitutionAccountBankStateBranchN",
                "FinancialInstitutionAccountFinancialInstitutionAccountN",
                "FinancialInstitutionAccountNameT",
            ],
        ),
    ],
)
def test_bad_bank_details_are_refused_naming_the_field(ato: Ato, details: dict, codes: list, fields: list):
    client = _banked(ato)
    before = _rows(ato, client["id"])
    asked = {"bsb": "062000", "number": "12345678", "account_name": _name(client), **details}
    for request_class in (cufi.ValidateRequest, cufi.SubmitRequest):
        reply = ato.result(_replacement(request_class, ClientIdentifier.of(tfn=client["tfn"]), **asked))
        assert error_codes(reply) == codes and reply.document is None
        assert [e.parameters["Field"] for e in reply.errors] == fields
        # The ATO never echoes an account number back.
        assert not any(asked["number"] in e.text or asked["number"] in str(e.parameters) for e in reply.errors)
    assert _rows(ato, client["id"]) == before


def test_a_replacement_needs_a_current_link(ato: Ato):
    stranger = _client(ato, linked=False)
    before = _rows(ato, stranger["id"])
    reply = ato.result(
        _replacement(
            cufi.SubmitRequest,
            ClientIdentifier.of(tfn=stranger["tfn"]),
            bsb="062000",
            number="12345678",
            account_name="Jo",
        )
    )
    assert error_codes(reply) == ["CMN.ATO.AUTH.002"]
    assert _rows(ato, stranger["id"]) == before


def test_a_malformed_replacement_is_refused_with_the_xsd_error(ato: Ato):
    client = _banked(ato)
    document = (
        '<CUFISubmitRequest xmlns="http://www.sbr.gov.au/ato/cufi"><ClientIdentifier>'
        f"<TaxFileNumberId>{client['tfn']}</TaxFileNumberId></ClientIdentifier><FinancialInstitutionAccount>"
        "<FinancialInstitutionAccountBankStateBranchN>062-000</FinancialInstitutionAccountBankStateBranchN>"
        "<FinancialInstitutionAccountFinancialInstitutionAccountN>12345678"
        "</FinancialInstitutionAccountFinancialInstitutionAccountN>"
        "<FinancialInstitutionAccountNameT>Jo Citizen</FinancialInstitutionAccountNameT>"
        "</FinancialInstitutionAccount></CUFISubmitRequest>"
    )
    before = _rows(ato, client["id"])
    reply = ato.reply(ato.send_raw(cufi.SubmitRequest.SERVICE_ACTION, document), cufi.SubmitResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"]
    assert "FinancialInstitutionAccountBankStateBranchN" in reply.errors[0].text
    assert _rows(ato, client["id"]) == before
