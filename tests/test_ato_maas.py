"""MAAS through the real gateway to the stand-in ATO: the fund pushes member account transactions, gets a receipt,
pulls the per-transaction results, and the register changes for the transactions that were processed."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from django.db import transaction

from ato_gateway import api, handlers, services, tokens
from ato_gateway.api import Question, Reply
from ato_gateway.models import MachineCredential, MessageStatus, OutboxMessage
from ato_gateway.wire.documents import maas
from ato_gateway.wire.documents.common import Address, PersonName
from tests.ato_fixtures import DEMO_ABN, Ato, error_codes
from tests.gateway_fixtures import pump

pytestmark = pytest.mark.django_db(transaction=True)

EVENT_DAY = date(2026, 11, 2)  # before the sandbox's business date (2026-11-30, set by the ato fixture)


@pytest.fixture
def usi(ato: Ato) -> str:
    """The test practice's credential ABN made a super fund of the register: it sends MAAS for that fund."""
    fund: dict[str, Any] = ato.sandbox.control("POST", "fund", json={"abn": DEMO_ABN, "name": "Harbour Members Super"})
    return str(fund["usi"])


def _people(ato: Ato, count: int, *, quoted: bool = True) -> list[dict[str, Any]]:
    """Living individuals whose family name and date of birth no one else shares, so that they match alone."""
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.quoted_tfn_for_super = ? AND NOT EXISTS "
        "(SELECT 1 FROM reg_taxpayers u WHERE u.id != t.id AND u.birth_date = t.birth_date "
        "AND u.family_name = t.family_name) ORDER BY t.id LIMIT ?",
        1 if quoted else 0,
        count,
    )


def _transaction(person: dict[str, Any], usi: str, member: str | None, **change: Any) -> maas.MemberTransaction:
    reported = maas.MemberTransaction(
        transaction_id=f"T-{member or 'none'}-{person['id']}",
        usi=usi,
        member_id=member,
        tfn=person["tfn"],
        name=PersonName(person["family_name"], person["given_name"]),
        birth_date=date.fromisoformat(person["birth_date"]),
        status="OPEN",
        event=maas.AccountEvent("OPENED", EVENT_DAY),
    )
    return replace(reported, **change)


def _settle(ato: Ato, message: OutboxMessage) -> OutboxMessage:
    """Push (retrying as the gateway does), then pull the practice's channel once the receipt is in."""

    def pushed() -> bool:
        current = OutboxMessage.objects.get(pk=message.pk)
        return current.status == MessageStatus.AWAITING or current.is_terminal

    pump(pushed, timeout=60)
    services.outbox_pull(ato.practice.pk, worker="test")
    message.refresh_from_db()
    return message


def _submit(
    ato: Ato, *transactions: maas.MemberTransaction, purpose: str = "tests.maas"
) -> tuple[OutboxMessage, Reply[maas.SubmitResponse]]:
    document = maas.SubmitRequest(transactions=list(transactions))
    with transaction.atomic():
        question = api.ask(document, practice=ato.practice, by=ato.user, purpose=purpose)
    message = _settle(ato, question.message)
    return message, ato.reply(message, maas.SubmitResponse)


def _results(reply: Reply[maas.SubmitResponse]) -> list[maas.TransactionResult]:
    assert reply.document is not None, reply.items
    return reply.document.results


def _codes(result: maas.TransactionResult) -> list[str]:
    return [i.code for i in result.items]


def _account(ato: Ato, member: str) -> dict[str, Any] | None:
    rows = ato.query(
        "SELECT m.* FROM reg_members m JOIN reg_funds f ON f.id = m.fund_id WHERE f.abn = ? AND m.member_number = ?",
        DEMO_ABN,
        member,
    )
    return rows[0] if rows else None


# --- the four TFN validation responses (seed 003) ---


def test_a_matched_tfn_opens_the_members_account(ato: Ato, usi: str):
    person = _people(ato, 1)[0]
    message, reply = _submit(ato, _transaction(person, usi, "M-1"))
    assert message.status == MessageStatus.DONE and [a.kind for a in message.attempt_log.all()] == ["send", "pull"]
    assert reply.ok and [i.code for i in reply.items] == ["GEN.OK"]
    [result] = _results(reply)
    assert (result.processed, result.tfn_validation, result.corrected_tfn) == (True, "MATCHED", None)
    assert _codes(result) == ["CMN.ATO.SPRMBRINFO.VALID"] and not result.items[0].parameters
    account = _account(ato, "M-1")
    assert account is not None and account["taxpayer_id"] == person["id"]
    assert (account["open_date"], account["closed_date"]) == (EVENT_DAY.isoformat(), None)


def test_a_wrong_tfn_with_matching_details_is_corrected(ato: Ato, usi: str):
    person, someone_else = _people(ato, 2)
    _, reply = _submit(ato, _transaction(person, usi, "M-2", tfn=someone_else["tfn"]))
    [result] = _results(reply)
    assert (result.processed, result.tfn_validation, result.corrected_tfn) == (True, "CORRECTED", person["tfn"])
    assert _codes(result) == ["CMN.ATO.SPRMBRINFO.VALID"]
    assert [(p.name, p.value) for p in result.items[0].parameters] == [("CORRECTEDTFN", person["tfn"])]
    account = _account(ato, "M-2")
    assert account is not None and account["taxpayer_id"] == person["id"]


@pytest.mark.parametrize(("quoted", "outcome"), [(True, "PROVIDED"), (False, "MATCHED")])
def test_no_tfn_given_returns_it_only_when_quoted_for_super(ato: Ato, usi: str, quoted: bool, outcome: str):
    person = _people(ato, 1, quoted=quoted)[0]
    _, reply = _submit(ato, _transaction(person, usi, "M-3", tfn=None))
    [result] = _results(reply)
    assert (result.processed, result.tfn_validation) == (True, outcome)
    assert result.corrected_tfn == (person["tfn"] if quoted else None)
    assert [(p.name, p.value) for p in result.items[0].parameters] == (
        [("CORRECTEDTFN", person["tfn"])] if quoted else []
    )
    account = _account(ato, "M-3")
    assert account is not None and account["taxpayer_id"] == person["id"]


@pytest.mark.parametrize("with_tfn", [True, False])
def test_unmatched_details_are_accepted_but_recorded_against_no_one(ato: Ato, usi: str, with_tfn: bool):
    person = _people(ato, 1)[0]
    stranger = PersonName("Nobody-Matches", "Pat")
    reported = _transaction(person, usi, "M-4", name=stranger, tfn=person["tfn"] if with_tfn else None)
    _, reply = _submit(ato, reported)
    [result] = _results(reply)
    assert (result.processed, result.tfn_validation, result.corrected_tfn) == (True, "UNMATCHED", None)
    assert [(i.code, i.severity) for i in result.items] == [("CMN.ATO.SPRMBRINFO.NOT VALID", "Warning")]
    assert reply.ok and _account(ato, "M-4") is None


# --- the account holder (096604) ---


def test_an_open_account_of_another_holder_is_not_processed_until_closed(ato: Ato, usi: str):
    holder, newcomer = _people(ato, 2)
    _submit(ato, _transaction(holder, usi, "M-5"))
    _, reply = _submit(ato, _transaction(newcomer, usi, "M-5"))
    [result] = _results(reply)
    assert (result.processed, result.tfn_validation) == (False, None)
    assert _codes(result) == ["CMN.ATO.SPRMBRINFO.096604"]
    assert [(i.code, i.parameters) for i in reply.warnings] == [
        ("CMN.ATO.SPRMBRINFO.PART01", {"Failed": "1", "Total": "1"})
    ]
    account = _account(ato, "M-5")
    assert account is not None and (account["taxpayer_id"], account["closed_date"]) == (holder["id"], None)
    # The remediation the seed describes: close it under its holder, then report it again.
    closing = _transaction(holder, usi, "M-5", status="CLOSED", event=maas.AccountEvent("CLOSED", date(2026, 11, 20)))
    _, closed = _submit(ato, closing)
    assert _results(closed)[0].processed and (_account(ato, "M-5") or {}).get("closed_date") == "2026-11-20"
    _, again = _submit(ato, _transaction(newcomer, usi, "M-5", event=maas.AccountEvent("OPENED", date(2026, 11, 21))))
    assert _results(again)[0].processed
    account = _account(ato, "M-5")
    assert account is not None and (account["taxpayer_id"], account["open_date"], account["closed_date"]) == (
        newcomer["id"],
        "2026-11-21",
        None,
    )


# --- validation, transaction by transaction ---


def test_a_batch_of_ten_with_four_invalid_processes_the_six(ato: Ato, usi: str):
    people = _people(ato, 10)
    bad_tfn = people[7]["tfn"][:-1] + str((int(people[7]["tfn"][-1]) + 1) % 10)
    batch = [_transaction(p, usi, f"B-{n}") for n, p in enumerate(people)]
    batch[6] = replace(batch[6], usi=f"{DEMO_ABN}999")
    batch[7] = replace(batch[7], tfn=bad_tfn)
    batch[8] = replace(batch[8], member_id=None)
    batch[9] = replace(batch[9], birth_date=date(2027, 1, 1))
    _, reply = _submit(ato, *batch)
    results = _results(reply)
    assert [r.transaction_id for r in results] == [t.transaction_id for t in batch]
    assert [r.processed for r in results] == [True] * 6 + [False] * 4
    assert [_codes(r) for r in results[6:]] == [
        ["CMN.ATO.SPRMBRINFO.USI01"],
        ["CMN.ATO.SPRMBRINFO.TFN01"],
        ["CMN.ATO.SPRMBRINFO.MBR01"],
        ["CMN.ATO.SPRMBRINFO.DOB01"],
    ]
    assert all(r.tfn_validation is None for r in results[6:])
    assert reply.ok and [(i.code, i.parameters) for i in reply.warnings] == [
        ("CMN.ATO.SPRMBRINFO.PART01", {"Failed": "4", "Total": "10"})
    ]
    assert [_account(ato, f"B-{n}") is not None for n in range(10)] == [True] * 6 + [False] * 4


def test_repeated_ids_future_events_and_a_status_against_its_event_fail_their_transactions(ato: Ato, usi: str):
    first, second, third = _people(ato, 3)
    batch = [
        _transaction(first, usi, "C-1", transaction_id="same"),
        _transaction(second, usi, "C-2", transaction_id="same"),
        _transaction(third, usi, "C-3", event=maas.AccountEvent("OPENED", date(2027, 2, 1))),
        _transaction(third, usi, "C-4", transaction_id="closed-opened", status="CLOSED"),
    ]
    _, reply = _submit(ato, *batch)
    assert [(r.processed, _codes(r)) for r in _results(reply)] == [
        (True, ["CMN.ATO.SPRMBRINFO.VALID"]),
        (False, ["CMN.ATO.SPRMBRINFO.DUP01"]),
        (False, ["CMN.ATO.SPRMBRINFO.EVT01"]),
        (False, ["CMN.ATO.SPRMBRINFO.EVT02"]),
    ]
    assert [_account(ato, f"C-{n}") is not None for n in range(1, 5)] == [True, False, False, False]


# --- the whole message ---


def test_a_sender_that_is_not_a_fund_is_refused(ato: Ato):
    person = _people(ato, 1)[0]
    _, reply = _submit(ato, _transaction(person, f"{DEMO_ABN}001", "F-1"))
    assert error_codes(reply) == ["CMN.ATO.SPRMBRINFO.FUND01"] and reply.document is None
    assert reply.errors[0].parameters == {"ABN": DEMO_ABN}


def test_a_malformed_document_is_refused_with_the_xsd_error_on_the_pull(ato: Ato, usi: str):
    document = (
        '<SPRMBRINFO xmlns="http://www.sbr.gov.au/ato/sprmbrinfo"><Transaction><TransactionId>X</TransactionId>'
        f"<UniqueSuperannuationIdentifierId>{usi}</UniqueSuperannuationIdentifierId>"
        "<TaxFileNumberId>12345</TaxFileNumberId></Transaction></SPRMBRINFO>"
    )
    with transaction.atomic():
        message = services.outbox_enqueue(
            practice=ato.practice, service="MAAS", action="Submit.001.00", documents=[("SPRMBRINFO", document)]
        )
    reply = ato.reply(_settle(ato, message), maas.SubmitResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and reply.document is None
    assert "TaxFileNumberId" in reply.errors[0].text


def test_a_resent_push_is_applied_once(ato: Ato, usi: str):
    """The receipt is lost on the way back, so the gateway sends the same MessageId again: the stand-in ATO
    answers with its first receipt and queues one response, and the register changes once."""
    tokens.saml_token(MachineCredential.objects.get(practice=ato.practice))  # so the fault hits the push itself
    ato.sandbox.faults(next=["reset"])
    person = _people(ato, 1)[0]
    message, reply = _submit(ato, _transaction(person, usi, "R-1"))
    assert [a.kind for a in message.attempt_log.order_by("pk")] == ["send", "send", "pull"]
    assert _results(reply)[0].tfn_validation == "MATCHED"
    queued = ato.query("SELECT count(*) AS n FROM queued_responses WHERE ref_message_id = ?", message.message_id)
    assert queued == [{"n": 1}] and ato.sandbox.stats()["applied"][message.message_id] == 1
    assert len(ato.query("SELECT id FROM reg_members WHERE member_number = 'R-1'")) == 1


def test_the_pulled_results_reach_the_handler_registered_for_the_purpose(ato: Ato, usi: str):
    got: list[Reply[maas.SubmitResponse]] = []

    def record(_question: Question, reply: Reply[maas.SubmitResponse]) -> None:
        got.append(reply)

    person = _people(ato, 1)[0]
    handlers.register("tests.maas_results", record)
    try:
        _submit(ato, _transaction(person, usi, "H-1"), purpose="tests.maas_results")
    finally:
        handlers.unregister("tests.maas_results")
    assert len(got) == 1 and got[0].document is not None
    assert [r.transaction_id for r in got[0].document.results] == [f"T-H-1-{person['id']}"]


# --- the account as the ATO holds it: attributes, Get, the order of events, reopening ---

ATTRIBUTES = maas.AccountAttributes(
    phase="ACCUMULATION",
    contributions_accepted=True,
    inward_rollovers_accepted=True,
    outward_rollovers_accepted=False,
    government_rollovers_accepted=True,
    lost_status="NOT_LOST",
    defined_benefit=False,
    insurance=True,
    grandfathered=False,
    innovative_income_stream=False,
)
RETIRED = replace(
    ATTRIBUTES, phase="RETIREMENT", contributions_accepted=False, lost_status="UNCONTACTABLE", grandfathered=True
)


def _get(ato: Ato, usi: str, member: str) -> Reply[maas.GetResponse]:
    return ato.result(maas.GetRequest(usi, member))


def _held(ato: Ato, usi: str, member: str) -> maas.GetResponse:
    reply = _get(ato, usi, member)
    assert reply.ok and reply.document is not None, reply.items
    return reply.document


def test_the_attributes_reported_are_held_and_come_back_through_get(ato: Ato, usi: str):
    person = _people(ato, 1)[0]
    home = Address("1 Harbour Street", locality="Sydney", state="NSW", postcode="2000")
    _, reply = _submit(ato, _transaction(person, usi, "A-1", address=home, attributes=ATTRIBUTES))
    assert _results(reply)[0].processed
    held = _held(ato, usi, "A-1")
    assert (held.usi, held.member_id, held.status, held.opened, held.closed) == (usi, "A-1", "OPEN", EVENT_DAY, None)
    assert (held.last_event, held.tfn_validation) == (maas.AccountEvent("OPENED", EVENT_DAY), "MATCHED")
    assert held.attributes == ATTRIBUTES
    # A change without attributes leaves them as they were; one with attributes replaces them.
    later = date(2026, 11, 10)
    _submit(ato, _transaction(person, usi, "A-1", transaction_id="A-1b", event=maas.AccountEvent("CHANGED", later)))
    held = _held(ato, usi, "A-1")
    assert (held.attributes, held.last_event, held.opened) == (
        ATTRIBUTES,
        maas.AccountEvent("CHANGED", later),
        EVENT_DAY,
    )
    changed = _transaction(
        person, usi, "A-1", transaction_id="A-1c", event=maas.AccountEvent("CHANGED", later), attributes=RETIRED
    )
    _submit(ato, changed)
    assert _held(ato, usi, "A-1").attributes == RETIRED


def test_an_unmatched_account_is_held_with_its_outcome_and_an_unknown_one_is_refused(ato: Ato, usi: str):
    person = _people(ato, 1)[0]
    _submit(ato, _transaction(person, usi, "A-2", name=PersonName("Nobody-Matches", "Pat"), attributes=ATTRIBUTES))
    held = _held(ato, usi, "A-2")
    assert (held.status, held.tfn_validation, held.attributes) == ("OPEN", "UNMATCHED", ATTRIBUTES)
    assert _account(ato, "A-2") is None  # no member of the register holds it
    # An account never reported is one the ATO does not hold.
    reply = _get(ato, usi, "NEVER-REPORTED")
    assert error_codes(reply) == ["CMN.ATO.SPRMBRINFO.GET01"] and reply.document is None
    assert reply.errors[0].parameters == {"MemberId": "NEVER-REPORTED", "USI": usi}


def test_an_unknown_attribute_code_fails_its_transaction_only(ato: Ato, usi: str):
    first, second = _people(ato, 2)
    odd = replace(ATTRIBUTES, phase="PENSION", lost_status="MISSING")
    _, reply = _submit(ato, _transaction(first, usi, "A-3", attributes=odd), _transaction(second, usi, "A-4"))
    bad, good = _results(reply)
    assert (bad.processed, good.processed) == (False, True)
    assert [(i.code, i.parameters) for i in bad.items] == [
        ("CMN.ATO.SPRMBRINFO.ATT01", [maas.Parameter("Field", "AccountPhaseC"), maas.Parameter("Value", "PENSION")]),
        ("CMN.ATO.SPRMBRINFO.ATT01", [maas.Parameter("Field", "LostStatusC"), maas.Parameter("Value", "MISSING")]),
    ]
    assert error_codes(_get(ato, usi, "A-3")) == ["CMN.ATO.SPRMBRINFO.GET01"]


def test_an_event_older_than_one_processed_is_099264_and_not_processed(ato: Ato, usi: str):
    person = _people(ato, 1)[0]
    newer, older = date(2026, 11, 20), date(2026, 11, 12)
    _submit(ato, _transaction(person, usi, "O-1", event=maas.AccountEvent("OPENED", newer), attributes=ATTRIBUTES))
    stale = _transaction(
        person, usi, "O-1", transaction_id="O-1-stale", event=maas.AccountEvent("CHANGED", older), attributes=RETIRED
    )
    # The same day as the last one processed is not older: it is processed after it.
    same_day = _transaction(person, usi, "O-1", transaction_id="O-1-same", event=maas.AccountEvent("CHANGED", newer))
    _, reply = _submit(ato, stale, same_day)
    refused, processed = _results(reply)
    assert (refused.processed, refused.tfn_validation, processed.processed) == (False, None, True)
    assert [(i.code, i.severity) for i in refused.items] == [("CMN.ATO.SPRMBRINFO.099264", "Error")]
    assert {p.name: p.value for p in refused.items[0].parameters} == {
        "EventDate": older.isoformat(),
        "LastEventDate": newer.isoformat(),
    }
    held = _held(ato, usi, "O-1")
    assert (held.attributes, held.last_event) == (ATTRIBUTES, maas.AccountEvent("CHANGED", newer))
    # Within one batch too: the older of two transactions for an account, sent second, is refused.
    _, reply = _submit(
        ato,
        _transaction(person, usi, "O-2", transaction_id="O-2-new", event=maas.AccountEvent("OPENED", newer)),
        _transaction(person, usi, "O-2", transaction_id="O-2-old", event=maas.AccountEvent("CHANGED", older)),
    )
    assert [(r.processed, _codes(r)) for r in _results(reply)] == [
        (True, ["CMN.ATO.SPRMBRINFO.VALID"]),
        (False, ["CMN.ATO.SPRMBRINFO.099264"]),
    ]


def test_a_closed_account_is_reopened_keeping_its_opening_date(ato: Ato, usi: str):
    person = _people(ato, 1)[0]
    closed_on, reopened_on = date(2026, 11, 10), date(2026, 11, 20)
    _submit(ato, _transaction(person, usi, "RO-1"))
    # An account still open cannot be reopened; REOPENED goes with status OPEN.
    _, reply = _submit(
        ato,
        _transaction(person, usi, "RO-1", transaction_id="RO-1-early", event=maas.AccountEvent("REOPENED", closed_on)),
    )
    assert [(r.processed, _codes(r)) for r in _results(reply)] == [(False, ["CMN.ATO.SPRMBRINFO.EVT03"])]
    closing = _transaction(
        person, usi, "RO-1", transaction_id="RO-1-close", status="CLOSED", event=maas.AccountEvent("CLOSED", closed_on)
    )
    _submit(ato, closing)
    assert (_held(ato, usi, "RO-1").status, (_account(ato, "RO-1") or {}).get("closed_date")) == (
        "CLOSED",
        closed_on.isoformat(),
    )
    reopening = _transaction(
        person, usi, "RO-1", transaction_id="RO-1-re", event=maas.AccountEvent("REOPENED", reopened_on)
    )
    wrong_status = replace(reopening, transaction_id="RO-1-closed", status="CLOSED")
    _, reply = _submit(ato, wrong_status, reopening)
    assert [(r.processed, _codes(r)) for r in _results(reply)] == [
        (False, ["CMN.ATO.SPRMBRINFO.EVT02"]),
        (True, ["CMN.ATO.SPRMBRINFO.VALID"]),
    ]
    held = _held(ato, usi, "RO-1")
    assert (held.status, held.opened, held.closed) == ("OPEN", EVENT_DAY, None)
    assert held.last_event == maas.AccountEvent("REOPENED", reopened_on)
    account = _account(ato, "RO-1")
    assert account is not None and (account["taxpayer_id"], account["open_date"], account["closed_date"]) == (
        person["id"],
        EVENT_DAY.isoformat(),
        None,
    )


# --- a practice administering funds ---

FUND_A_ABN, FUND_B_ABN, FUND_C_ABN = "11000000001", "11000000002", "11000000003"


def test_an_administrators_credential_reports_for_each_of_its_funds_and_no_other(ato: Ato):
    def fund(abn: str, administrator: str | None) -> str:
        spec = {"abn": abn, "name": f"Fund {abn}", "administrator_abn": administrator}
        row: dict[str, Any] = ato.sandbox.control("POST", "fund", json=spec)
        assert row["administrator_abn"] == administrator
        return str(row["usi"])

    usi_a, usi_b = fund(FUND_A_ABN, DEMO_ABN), fund(FUND_B_ABN, DEMO_ABN)
    usi_c = fund(FUND_C_ABN, None)  # a fund the practice does not administer
    first, second, third = _people(ato, 3)
    _, reply = _submit(
        ato, _transaction(first, usi_a, "AD-1"), _transaction(second, usi_b, "AD-2"), _transaction(third, usi_c, "AD-3")
    )
    assert [(r.processed, _codes(r)) for r in _results(reply)] == [
        (True, ["CMN.ATO.SPRMBRINFO.VALID"]),
        (True, ["CMN.ATO.SPRMBRINFO.VALID"]),
        (False, ["CMN.ATO.SPRMBRINFO.USI01"]),
    ]
    rows = ato.query(
        "SELECT f.usi, m.member_number, m.taxpayer_id FROM reg_members m JOIN reg_funds f ON f.id = m.fund_id "
        "WHERE m.member_number LIKE 'AD-%' ORDER BY m.member_number"
    )
    assert rows == [
        {"usi": usi_a, "member_number": "AD-1", "taxpayer_id": first["id"]},
        {"usi": usi_b, "member_number": "AD-2", "taxpayer_id": second["id"]},
    ]
    assert _held(ato, usi_b, "AD-2").tfn_validation == "MATCHED"
    assert error_codes(_get(ato, usi_b, "AD-1")) == ["CMN.ATO.SPRMBRINFO.GET01"]  # the account is fund A's
    refused = _get(ato, usi_c, "AD-3")
    assert error_codes(refused) == ["CMN.ATO.SPRMBRINFO.USI01"] and refused.errors[0].parameters == {"USI": usi_c}
    # Once no longer the administrator, the practice reports for neither: the sender is no fund at all.
    fund(FUND_A_ABN, None)
    fund(FUND_B_ABN, None)
    _, reply = _submit(ato, _transaction(first, usi_a, "AD-1", transaction_id="AD-1-again"))
    assert error_codes(reply) == ["CMN.ATO.SPRMBRINFO.FUND01"] and reply.document is None
