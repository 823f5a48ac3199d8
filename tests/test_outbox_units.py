"""The outbox's decisions asked directly, with no stand-in ATO process: the claim (_claim), what a reply comes to
(_read_reply, _decide, _failure), the record of an outcome (_record) and the console's resend (outbox_resend).
The rows are set up by hand; the replies are built, signed and damaged with the wire's own server half, as the ATO
would send them. These are make mutate's tests of the outbox (issue 18): each assertion pins one decision."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import django_rq
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from ato_gateway import tokens, transport, wire
from ato_gateway.handlers import Outcome, register, unregister
from ato_gateway.models import AttemptOutcome, MessageAttempt, MessageStatus, OutboxMessage, Question, QuestionState
from ato_gateway.services import operations, sending
from ato_gateway.wire import errors as wire_errors
from ato_gateway.wire import events, keystore, registry, sts
from portal.models import AuditEvent, Practice

pytestmark = pytest.mark.django_db
WORKER = "worker-1"
PURPOSE = "tests.outbox-units"
SEARCH = registry.get("CUREL.Search.004.00")
TFN = "123456782"  # passes the check digit: redacted wherever it is written down


@dataclass(frozen=True)
class AtoKeys:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


@pytest.fixture(scope="session")
def ato_keys() -> AtoKeys:
    """The ATO's signing key, issued once per session (key generation is the slow part)."""
    ca_key = keystore.new_rsa_key()
    ca = keystore.make_ca(ca_key, "Outbox tests CA")
    key = keystore.new_rsa_key()
    certificate = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=key.public_key(), common_name="ATO", abn=registry.ATO_ABN
    )
    return AtoKeys(key, certificate)


@pytest.fixture
def ato(ato_keys: AtoKeys, settings: Any, tmp_path: Path) -> AtoKeys:
    """The portal trusts that key as the ATO's (settings.ATO_SIGNING_CERT_FILE), as it would the ATO's own."""
    pem = tmp_path / "ato-signing.pem"
    pem.write_bytes(ato_keys.certificate.public_bytes(serialization.Encoding.PEM))
    settings.ATO_SIGNING_CERT_FILE = str(pem)
    settings.GATEWAY_MAX_ATTEMPTS = 8
    settings.GATEWAY_BACKOFF_BASE_SECONDS = 10
    settings.GATEWAY_BACKOFF_CAP_SECONDS = 600
    return ato_keys


@pytest.fixture
def handled() -> Iterator[list[tuple[Question, Any]]]:
    """A domain app's handler for the purpose PURPOSE: every call it gets, with the question's state then."""
    calls: list[tuple[Question, Any]] = []
    register(PURPOSE, lambda question, reply: calls.append((question, reply)))
    yield calls
    unregister(PURPOSE)


def enqueue(
    practice: Practice, *, subject: str = "Client 7", service_action: registry.ServiceAction = SEARCH
) -> OutboxMessage:
    (message,) = sending.outbox_enqueue_many(
        practice=practice,
        service=service_action.service,
        action=service_action.key.removeprefix(f"{service_action.service}."),
        batch=[([(service_action.request_document, "<Request/>")], sending.Subject("client", "7", subject))],
    )
    return message


def ask(practice: Practice, subject: str = "Client 7") -> tuple[OutboxMessage, Question]:
    """A question as ato_gateway.api asks one: its message and the question its answer settles."""
    message = enqueue(practice, subject=subject)
    question = Question.objects.create(
        practice=practice, purpose=PURPOSE, service_action=SEARCH.key, message=message, subject_repr=subject
    )
    return message, question


def claimed(message: OutboxMessage, worker: str = WORKER) -> OutboxMessage:
    (held,) = sending._claim([message.pk], worker)
    return held


def as_reply(built: tuple[bytes, str], status: int = 200) -> transport.Reply:
    body, content_type = built
    return transport.Reply(status=status, content_type=content_type, body=body, elapsed_ms=3)


def request_of(ato: AtoKeys, message: OutboxMessage) -> tuple[bytes, wire.InboundRequest]:
    """The signed request for the message, as the receiving side reads it (what a Receipt repeats)."""
    body, content_type = wire.build_signed_request(
        service_action=registry.get(f"{message.service}.{message.action}"),
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        from_abn="53004085616",
        payloads=[(name, text.encode()) for name, text in message.payloads()],
        key=ato.key,
        certificate=ato.certificate,
        saml_assertion=None,
        properties={"ProductID": "T", "BMS Vendor": "T", "BMS Name": "T", "BMS Version": "1"},
    )
    return body, wire.parse_request(body, content_type, trust=ato.certificate)


def receipt(ato: AtoKeys, message: OutboxMessage, *, sign: bool = True, receipt_id: str = "") -> transport.Reply:
    _, request = request_of(ato, message)
    return as_reply(
        wire.build_signed_receipt(
            request=request,
            message_id=receipt_id or wire.new_message_id(),
            key=ato.key,
            certificate=ato.certificate,
            sign=sign,
        )
    )


def response(
    ato: AtoKeys,
    message: OutboxMessage,
    payloads: list[tuple[str, bytes]] | None = None,
    *,
    ref: str | None = None,
    response_id: str = "",
    compress: bool = False,
    sign: bool = True,
) -> transport.Reply:
    return as_reply(
        wire.build_signed_response(
            message_id=response_id or wire.new_message_id(),
            ref_to_message_id=ref or message.message_id,
            conversation_id=message.conversation_id,
            service=SEARCH.service_uri,
            action=SEARCH.action,
            to_abn="53004085616",
            payloads=payloads if payloads is not None else [("Note", b"<Note/>")],
            key=ato.key,
            certificate=ato.certificate,
            compress=compress,
            sign=sign,
        )
    )


def error_reply(ato: AtoKeys, message: OutboxMessage, *errors: wire.EbmsError, sign: bool = True) -> transport.Reply:
    return as_reply(
        wire.build_signed_error(
            errors=list(errors),
            message_id=wire.new_message_id(),
            ref_to_message_id=message.message_id,
            key=ato.key,
            certificate=ato.certificate,
            sign=sign,
        ),
        status=500,
    )


def decide(message: OutboxMessage, reply: transport.Reply, started: datetime | None = None) -> sending.Decision:
    """What the reply comes to; whatever that is, the decision carries the message, exchange and time it was about."""
    started = started or timezone.now()
    d = sending._decide(message, started, b"<request/>", reply, sending._read_reply(reply))
    assert (d.message, d.started, d.request_bytes, d.reply) == (message, started, b"<request/>", reply)
    return d


def within(moment: Any, before: datetime, after: datetime) -> bool:
    return before <= moment <= after


# --- the claim -------------------------------------------------------------------------------------------------


def test_a_claim_takes_only_its_batchs_due_rows_in_order(practice, django_assert_num_queries):
    now = timezone.now()
    first, second, retrying, later, pulling, done, elsewhere, pull_retry = (enqueue(practice) for _ in range(8))
    OutboxMessage.objects.filter(pk=retrying.pk).update(status=MessageStatus.RETRY, attempts=3)
    OutboxMessage.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(minutes=5))
    OutboxMessage.objects.filter(pk=pulling.pk).update(status=MessageStatus.AWAITING, phase="pull")
    OutboxMessage.objects.filter(pk=done.pk).update(status=MessageStatus.DONE)
    OutboxMessage.objects.filter(pk=pull_retry.pk).update(status=MessageStatus.RETRY, phase="pull")
    batch = [pull_retry.pk, done.pk, pulling.pk, later.pk, retrying.pk, second.pk, first.pk]  # not elsewhere
    before = timezone.now()
    claimed_rows = sending._claim(batch, WORKER)
    after = timezone.now()
    assert [m.pk for m in claimed_rows] == [first.pk, second.pk, retrying.pk]
    with django_assert_num_queries(0):  # each with its practice, which signing reads
        assert {m.practice.name for m in claimed_rows} == {practice.name}
    rows = {m.pk: m for m in OutboxMessage.objects.filter(pk__in=[*batch, elsewhere.pk])}
    for m in claimed_rows:
        assert (m.status, m.claimed_by) == (MessageStatus.SENDING, WORKER)
        assert within(rows[m.pk].claimed_at, before, after)
    assert [rows[pk].attempts for pk in (first.pk, second.pk, retrying.pk)] == [1, 1, 4]
    untouched = [later, pulling, done, elsewhere, pull_retry]
    assert [(rows[m.pk].claimed_by, rows[m.pk].attempts, rows[m.pk].claimed_at) for m in untouched] == [
        ("", 0, None)
    ] * 5
    assert [rows[m.pk].status for m in untouched] == [
        MessageStatus.PENDING,
        MessageStatus.AWAITING,
        MessageStatus.DONE,
        MessageStatus.PENDING,
        MessageStatus.RETRY,
    ]


def test_a_message_one_worker_holds_is_not_claimed_by_another(practice):
    message = enqueue(practice)
    claimed(message, "worker-1")
    assert sending._claim([message.pk], "worker-2") == []
    message.refresh_from_db()
    assert (message.status, message.claimed_by, message.attempts) == (MessageStatus.SENDING, "worker-1", 1)


def test_an_expired_lease_is_taken_over_by_the_next_worker(practice, settings):
    message = enqueue(practice)
    claimed(message, "worker-1")
    stalled_since = timezone.now() - timedelta(seconds=settings.GATEWAY_CLAIM_LEASE_SECONDS + 60)
    OutboxMessage.objects.filter(pk=message.pk).update(claimed_at=stalled_since)
    operations.outbox_sweep()
    taken = claimed(message, "worker-2")
    assert (taken.claimed_by, taken.attempts, taken.status) == ("worker-2", 2, MessageStatus.SENDING)
    assert taken.claimed_at > stalled_since


def test_a_worker_that_lost_its_claim_records_nothing(practice, handled, caplog, settings):
    message, question = ask(practice)
    held_by_first = claimed(message, "worker-1")
    OutboxMessage.objects.filter(pk=message.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.GATEWAY_CLAIM_LEASE_SECONDS + 60)
    )
    operations.outbox_sweep()
    claimed(message, "worker-2")
    still_held = claimed(enqueue(practice), "worker-1")  # the same batch's other message, which worker 1 still has
    audits = AuditEvent.objects.count()
    late = sending.Decision(
        held_by_first,
        MessageStatus.DONE,
        AttemptOutcome.OK,
        timezone.now(),
        handler_outcome=Outcome(ok=True, kind="user"),
        response={"documents": {}, "events": []},
    )
    with caplog.at_level(logging.WARNING, logger="ato_gateway.services.sending"):
        sending._record(
            [late, sending._failure(still_held, timezone.now(), b"", None, "X", "x", permanent=True)], "worker-1"
        )
    assert handled == []
    message.refresh_from_db()
    question.refresh_from_db()
    assert (message.status, message.claimed_by, message.response()) == (MessageStatus.SENDING, "worker-2", {})
    assert question.state == QuestionState.WAITING
    assert not MessageAttempt.objects.filter(message=message).exists()
    assert AuditEvent.objects.count() == audits + 1  # the other message's, recorded all the same
    assert OutboxMessage.objects.get(pk=still_held.pk).status == MessageStatus.FAILED
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {message.message_id}: claim lost before the outcome was recorded"
    ]


def test_a_claim_skips_rows_another_worker_has_locked_rather_than_waiting(practice):
    """A row another worker is claiming or recording is locked: the claim passes it by (SKIP LOCKED) instead of
    queueing behind that worker's whole batch of exchanges."""
    message = enqueue(practice)
    with CaptureQueriesContext(connection) as queries:
        sending._claim([message.pk], WORKER)
    (locking,) = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locking.endswith("FOR UPDATE SKIP LOCKED")


# --- what a failure comes to ------------------------------------------------------------------------------------


def test_a_permanent_failure_fails_at_the_first_attempt(practice, ato):
    message = claimed(enqueue(practice))
    started, reply = timezone.now(), as_reply((b"<x/>", "application/soap+xml"), status=400)
    d = sending._failure(message, started, b"<sent/>", reply, "EBMS:0004", "Other: bad", permanent=True)
    assert (d.message, d.status, d.outcome, d.started) == (
        message,
        MessageStatus.FAILED,
        AttemptOutcome.PERMANENT,
        started,
    )
    assert (d.request_bytes, d.reply, d.code, d.text, d.next_at) == (b"<sent/>", reply, "EBMS:0004", "Other: bad", None)
    assert d.handler_outcome == Outcome(ok=False, kind="failed", error_code="EBMS:0004", error_text="Other: bad")


@pytest.mark.parametrize("attempts", [8, 9])
def test_a_transient_failure_on_the_last_attempt_is_a_dead_letter(practice, ato, attempts):
    message = enqueue(practice)
    message.attempts = attempts
    started = timezone.now()
    d = sending._failure(message, started, b"<sent/>", None, "HTTP:503", "unavailable", permanent=False)
    assert (d.status, d.outcome, d.code, d.text, d.next_at, d.reply) == (
        MessageStatus.DEAD,
        AttemptOutcome.TRANSIENT,
        "HTTP:503",
        "unavailable",
        None,
        None,
    )
    assert d.request_bytes == b"<sent/>" and d.started == started
    assert d.handler_outcome == Outcome(ok=False, kind="dead", error_code="HTTP:503", error_text="unavailable")


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 10), (3, 40), (7, 600)])
def test_a_transient_failure_before_the_last_attempt_retries_after_a_backoff(practice, ato, attempts, ceiling):
    message = enqueue(practice)
    message.attempts = attempts
    reply = as_reply((b"<x/>", "application/soap+xml"), status=503)
    before = timezone.now()
    d = sending._failure(message, before, b"<sent/>", reply, "HTTP:503", "unavailable", permanent=False)
    after = timezone.now()
    assert (d.status, d.outcome, d.code, d.text, d.handler_outcome) == (
        MessageStatus.RETRY,
        AttemptOutcome.TRANSIENT,
        "HTTP:503",
        "unavailable",
        None,
    )
    assert (d.request_bytes, d.reply, d.started) == (b"<sent/>", reply, before)
    # Full jitter over the upper half of base * 2^(attempts - 1), capped.
    assert before + timedelta(seconds=ceiling / 2) <= d.next_at <= after + timedelta(seconds=ceiling)


# --- what a reply comes to --------------------------------------------------------------------------------------


def warning(code: str) -> wire.EbmsError:
    return wire.standard_error(code, "")


@pytest.mark.parametrize(
    ("errors", "status", "code", "text"),
    [
        ([wire.standard_error("EBMS:0004", "not a ping")], MessageStatus.FAILED, "EBMS:0004", "Other: not a ping"),
        ([wire.standard_error("EBMS:0009", "")], MessageStatus.FAILED, "EBMS:0009", "InvalidHeader"),
        ([wire.standard_error("EBMS:0005", "down")], MessageStatus.RETRY, "EBMS:0005", "ConnectionFailure: down"),
        (
            [warning("EBMS:0006"), wire.standard_error("EBMS:0004", "bad")],  # a warning is not the failure
            MessageStatus.FAILED,
            "EBMS:0004",
            "Other: bad",
        ),
        ([warning("EBMS:0006")], MessageStatus.RETRY, "EBMS:0006", "EmptyMessagePartitionChannel"),  # warnings only
        (
            [wire.standard_error("EBMS:0005", "down"), wire.standard_error("EBMS:0004", "bad")],
            MessageStatus.FAILED,
            "EBMS:0005",
            "ConnectionFailure: down",
        ),
    ],
)
def test_an_ebms_error_is_decided_by_its_codes(practice, ato, errors, status, code, text):
    message = claimed(enqueue(practice))
    reply = error_reply(ato, message, *errors)
    d = decide(message, reply)
    assert (d.status, d.code, d.text, d.reply, d.request_bytes) == (status, code, text, reply, b"<request/>")
    permanent = status == MessageStatus.FAILED
    assert d.outcome == (AttemptOutcome.PERMANENT if permanent else AttemptOutcome.TRANSIENT)
    assert (d.handler_outcome is not None) is permanent


def test_an_error_signal_naming_no_error_is_permanent(practice, ato):
    message = claimed(enqueue(practice))
    reply = error_reply(ato, message, wire.standard_error("EBMS:0005", "down"))
    inbound = sending._read_reply(reply)
    inbound.errors = []  # the wire never reads such a signal as an error; the decision holds all the same
    d = sending._decide(message, timezone.now(), b"", reply, inbound)
    assert (d.status, d.code, d.text) == (MessageStatus.FAILED, "EBMS:0004", "ebMS error")


def test_a_refused_token_is_forgotten_and_only_then(practice, ato):
    message = claimed(enqueue(practice))
    generation = tokens._generation()
    decide(message, error_reply(ato, message, wire.standard_error("EBMS:0004", "bad")))
    assert tokens._generation() == generation
    d = decide(message, error_reply(ato, message, warning("EBMS:0006"), wire.standard_error("EBMS:0101", "token")))
    assert tokens._generation() == generation + 1
    assert (d.status, d.code) == (MessageStatus.FAILED, "EBMS:0101")


def test_a_reply_to_another_message_fails_for_good(practice, ato):
    message = claimed(enqueue(practice))
    reply = response(ato, message, ref="someone-else@ato")
    d = decide(message, reply)
    assert (d.status, d.outcome, d.code, d.text) == (
        MessageStatus.FAILED,
        AttemptOutcome.PERMANENT,
        "REPLY:MISMATCH",
        "The ATO's reply refers to another message.",
    )
    assert (d.reply, d.request_bytes, d.handler_outcome.kind) == (reply, b"<request/>", "failed")


def test_a_receipt_answers_the_connection_test(practice, ato):
    message = claimed(enqueue(practice, service_action=registry.PING))
    reply = receipt(ato, message, receipt_id="receipt-1@ato")
    started = timezone.now()
    d = decide(message, reply, started)
    assert (d.status, d.outcome, d.started, d.reply, d.request_bytes) == (
        MessageStatus.DONE,
        AttemptOutcome.OK,
        started,
        reply,
        b"<request/>",
    )
    assert d.handler_outcome == Outcome(ok=True, kind="receipt")
    assert (d.response_message_id, d.response) == ("receipt-1@ato", {"documents": {}, "events": []})
    assert (d.phase, d.reset_attempts, d.next_at, d.code) == (None, False, None, "")


def test_a_receipt_for_a_pushed_message_waits_for_the_pull(practice, ato):
    message = claimed(enqueue(practice, service_action=registry.MAAS_SUBMIT))
    reply = receipt(ato, message)
    before = timezone.now()
    d = decide(message, reply, before)
    after = timezone.now()
    assert (d.status, d.outcome, d.phase, d.reset_attempts, d.reply) == (
        MessageStatus.AWAITING,
        AttemptOutcome.OK,
        "pull",
        True,
        reply,
    )
    assert d.text == "Receipt received; the response will be pulled."
    assert within(d.next_at, before, after)
    assert (d.handler_outcome, d.response, d.response_message_id, d.request_bytes) == (None, None, None, b"<request/>")


def test_an_answer_is_handed_on_whole(practice, ato):
    message = claimed(enqueue(practice))
    event = events.build_event(
        [events.EventItem("CMN.ATO.GEN.OK", "Information", "Fine", "All fine", (("Client", "7"), ("Role", "GST")))]
    )
    payloads = [(SEARCH.response_document, b"<Answer>caf\xff</Answer>"), ("Event", event)]
    reply = response(ato, message, payloads, response_id="answer-1@ato")
    d = decide(message, reply)
    documents = {SEARCH.response_document: "<Answer>caf\ufffd</Answer>", "Event": event.decode()}
    items = [
        {
            "code": "CMN.ATO.GEN.OK",
            "severity": "Information",
            "short_description": "Fine",
            "detailed_description": "All fine",
            "parameters": [["Client", "7"], ["Role", "GST"]],
        }
    ]
    assert (d.status, d.outcome, d.code, d.text, d.reply) == (MessageStatus.DONE, AttemptOutcome.OK, "", "", reply)
    assert d.handler_outcome == Outcome(ok=True, kind="user", documents=documents, events=items)
    assert d.response == {"documents": documents, "events": items, "maximum_severity": "Information"}
    assert (d.response_message_id, d.request_bytes, d.phase, d.next_at) == ("answer-1@ato", b"<request/>", None, None)


def test_an_answer_accepted_in_part_says_what_was_refused(practice, ato):
    message = claimed(enqueue(practice))
    refused = [events.EventItem(f"CMN.ATO.E{n}", "Error", f"refused {n}") for n in range(1, 6)]
    items = [events.EventItem("CMN.ATO.I", "Information", "applied"), events.EventItem("CMN.ATO.E0", "Error"), *refused]
    d = decide(message, response(ato, message, [("Event", events.build_event(items, partial=True))]))
    assert (d.status, d.code) == (MessageStatus.DONE, "EVENT:PARTIAL")
    assert d.text == (
        "The ATO accepted part of the message and refused 6 item(s): CMN.ATO.E0; CMN.ATO.E1 refused 1; "
        "CMN.ATO.E2 refused 2; CMN.ATO.E3 refused 3; CMN.ATO.E4 refused 4"
    )
    assert d.response is not None and d.response["maximum_severity"] == "Partial"
    assert d.handler_outcome is not None and len(d.handler_outcome.events) == 7


# --- reading a reply --------------------------------------------------------------------------------------------


def test_a_reply_is_read_signed_or_not_but_a_pulled_answer_must_be_signed(practice, ato):
    message = enqueue(practice)
    signed = sending._read_reply(response(ato, message, response_id="signed@ato"))
    assert (signed.kind, signed.message_id, signed.signed) == ("user", "signed@ato", True)
    assert sending._read_reply(response(ato, message), pulled=True).signed
    unsigned_answer = response(ato, message, sign=False, response_id="unsigned@ato")
    assert sending._read_reply(unsigned_answer).message_id == "unsigned@ato"
    assert sending._read_reply(receipt(ato, message, sign=False)).kind == "receipt"
    assert sending._read_reply(error_reply(ato, message, warning("EBMS:0006"), sign=False), pulled=True).kind == "error"
    with pytest.raises(wire_errors.SignatureInvalid, match=r"^The pulled response is not signed"):
        sending._read_reply(unsigned_answer, pulled=True)


def test_a_reply_whose_signature_fails_is_refused_for_good(practice, ato):
    message = enqueue(practice)
    reply = response(ato, message, [(SEARCH.response_document, b"<Answer>yes</Answer>")])
    forged = transport.Reply(
        reply.status, reply.content_type, reply.body.replace(b"<Answer>yes", b"<Answer>no!"), reply.elapsed_ms
    )
    assert forged.body != reply.body
    with pytest.raises(wire_errors.SignatureInvalid) as refused:
        sending._read_reply(forged)
    assert refused.value.permanent and sending._code(refused.value) == "SignatureInvalid"


def damaged_gzip(reply: transport.Reply) -> transport.Reply:
    start = reply.body.index(b"\x1f\x8b")
    body = reply.body[: start + 10] + b"\x00" * 12 + reply.body[start + 22 :]
    return transport.Reply(reply.status, reply.content_type, body, reply.elapsed_ms)


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        (lambda r: transport.Reply(200, r.content_type, r.body[: len(r.body) // 2], 1), wire_errors.MalformedMessage),
        (lambda r: transport.Reply(200, "application/soap+xml", b"<!DOCTYPE x []><x/>", 1), wire_errors.UnsafeXML),
        (damaged_gzip, wire_errors.DecompressionFailure),
    ],
    ids=["truncated", "doctype", "bad gzip"],
)
def test_a_mangled_reply_is_worth_asking_for_again(practice, ato, damage, cause):
    message = enqueue(practice)
    reply = damage(response(ato, message, [(SEARCH.response_document, b"<Answer>" * 50)], compress=True, sign=False))
    with pytest.raises(wire_errors.WireError) as unreadable:
        sending._read_reply(reply)
    assert type(unreadable.value) is wire_errors.WireError and isinstance(unreadable.value.__cause__, cause)
    assert (unreadable.value.permanent, sending._code(unreadable.value)) == (False, "REPLY:MALFORMED")
    assert str(unreadable.value) == f"The ATO's reply was unreadable ({unreadable.value.__cause__}); asking again."


SENDER_FAULT = sts.build_fault("Nope.", subcode="Other")


@pytest.mark.parametrize(
    ("fault", "permanent", "code"),
    [
        (SENDER_FAULT, True, "REPLY:FAULT:Sender"),
        (SENDER_FAULT.replace(b"S12:Sender", b"S12:Receiver"), False, "REPLY:FAULT:Receiver"),
        (
            b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body><S12:Fault><S12:Reason>'
            b'<S12:Text xml:lang="en">Broken.</S12:Text></S12:Reason></S12:Fault></S12:Body></S12:Envelope>',
            True,
            "REPLY:FAULT:unknown",
        ),
    ],
    ids=["sender", "receiver", "no code"],
)
def test_a_soap_fault_is_decided_by_its_code(ato, fault, permanent, code):
    with pytest.raises(wire_errors.WireError) as faulted:
        sending._read_reply(transport.Reply(400, "application/soap+xml", fault, 1))
    assert (faulted.value.permanent, sending._code(faulted.value)) == (permanent, code)
    assert str(faulted.value).startswith("The ATO answered HTTP 400 with a SOAP fault (SOAP Fault instead of")
    assert isinstance(faulted.value.__cause__, wire_errors.SoapFault)


def test_a_reply_inflating_past_the_limit_is_refused(practice, ato, settings):
    message = enqueue(practice)
    reply = response(
        ato, message, [(SEARCH.response_document, b"<Answer>" + b" " * 4000 + b"</Answer>")], compress=True
    )
    assert sending._read_reply(reply).payloads[SEARCH.response_document].startswith(b"<Answer>")
    settings.GATEWAY_MAX_INFLATED_BYTES = 1000
    with pytest.raises(wire_errors.InflationLimitExceeded):
        sending._read_reply(reply)


# --- recording an outcome ---------------------------------------------------------------------------------------


def audits_of(message: OutboxMessage) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_type="ato_gateway.OutboxMessage", object_id=str(message.pk)).order_by("seq")
    )


def test_an_answer_is_recorded_once_and_its_handler_called_once(practice, ato, handled, caplog):
    message, question = ask(practice)
    message = claimed(message)
    reply = response(ato, message, response_id="answer-1@ato")
    started = timezone.now() - timedelta(minutes=10)  # long enough ago that a wrong unit shows
    d = decide(message, reply, started)
    before = timezone.now()
    sending._record([d], WORKER)
    after = timezone.now()
    message.refresh_from_db()
    assert (message.status, message.claimed_by, message.attempts, message.phase) == (MessageStatus.DONE, "", 1, "send")
    assert (message.error_code, message.error_text, message.response_message_id) == ("", "", "answer-1@ato")
    assert message.response() == d.response and within(message.completed_at, before, after)
    (attempt,) = MessageAttempt.objects.filter(message=message)
    assert (attempt.number, attempt.kind, attempt.started_at, attempt.http_status, attempt.outcome) == (
        1,
        "send",
        started,
        200,
        AttemptOutcome.OK,
    )
    assert (attempt.worker, attempt.error_code, attempt.error_text) == (WORKER, "", "")
    assert (
        (before - started).total_seconds() * 1000 - 1 <= attempt.duration_ms <= (after - started).total_seconds() * 1000
    )
    assert attempt.request_excerpt == "<request/>"
    assert attempt.response_excerpt == sending._excerpt(reply.body) and "answer-1@ato" in attempt.response_excerpt
    ((seen, answer),) = handled
    assert (seen.pk, seen.state, answer.ok) == (question.pk, QuestionState.REFUSED, True)
    (audit,) = audits_of(message)
    assert (audit.action, audit.details, audit.practice_id, audit.actor_id) == (
        "ato.message_done",
        {"message_id": message.message_id, "error": ""},
        practice.pk,
        None,
    )
    assert audit.object_repr == "CUREL Search.004.00 Client 7"

    with caplog.at_level(logging.WARNING, logger="ato_gateway.services.sending"):
        sending._record([d], WORKER)  # the same outcome again (the batch's job run twice): nothing more
    assert len(handled) == 1 and len(audits_of(message)) == 1
    assert MessageAttempt.objects.filter(message=message).count() == 1
    assert "claim lost" in caplog.text


def test_a_failure_is_recorded_masked_and_its_handler_told(practice, ato, handled):
    message = claimed(ask(practice)[0])
    text = f"The ATO refused TFN {TFN}: " + "x" * 3000
    started = timezone.now()
    d = sending._failure(message, started, b"", None, "EBMS:0004", text, permanent=True)
    sending._record([d], WORKER)
    message.refresh_from_db()
    masked = "The ATO refused TFN [TFN REDACTED]: " + "x" * 3000
    assert (message.status, message.error_code, message.error_text) == (
        MessageStatus.FAILED,
        "EBMS:0004",
        masked[:2000],
    )
    assert message.completed_at is not None and message.claimed_by == ""
    (attempt,) = MessageAttempt.objects.filter(message=message)
    assert (attempt.http_status, attempt.response_excerpt, attempt.request_excerpt) == (None, "", "")
    assert (attempt.outcome, attempt.error_code, attempt.error_text) == (
        AttemptOutcome.PERMANENT,
        "EBMS:0004",
        masked[:2000],
    )
    ((seen, answer),) = handled
    assert (seen.state, answer.ok, answer.failure_code) == (QuestionState.FAILED, False, "EBMS:0004")
    assert [(a.action, a.details) for a in audits_of(message)] == [
        ("ato.message_failed", {"message_id": message.message_id, "error": "EBMS:0004"})
    ]


def test_a_dead_letter_is_recorded_as_given_up(practice, ato, handled):
    message = claimed(ask(practice, subject="")[0])
    message.attempts = 8
    sending._record([sending._failure(message, timezone.now(), b"", None, "HTTP:503", "down", permanent=False)], WORKER)
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD and message.completed_at is not None
    assert [(a.action, a.object_repr) for a in audits_of(message)] == [("ato.message_dead", "CUREL Search.004.00")]
    ((_, answer),) = handled
    assert answer.gave_up


def test_a_retry_is_recorded_and_sent_again_when_due(practice, ato, handled):
    message = claimed(ask(practice)[0])
    reply = as_reply((b"<busy/>", "application/soap+xml"), status=503)
    d = sending._failure(message, timezone.now(), b"<request/>", reply, "HTTP:503", "busy", permanent=False)
    d.next_at = timezone.now() + timedelta(seconds=30)
    sending._record([d], WORKER)
    message.refresh_from_db()
    assert (message.status, message.next_attempt_at, message.completed_at) == (MessageStatus.RETRY, d.next_at, None)
    assert (message.claimed_by, message.attempts, message.error_code, message.error_text) == ("", 1, "HTTP:503", "busy")
    (attempt,) = MessageAttempt.objects.filter(message=message)
    assert (attempt.outcome, attempt.http_status, attempt.response_excerpt) == (
        AttemptOutcome.TRANSIENT,
        503,
        "<busy/>",
    )
    assert handled == [] and audits_of(message) == []
    queue = django_rq.get_queue("high")
    scheduled = ScheduledJobRegistry(queue=queue)
    (job_id,) = scheduled.get_job_ids()
    job = queue.fetch_job(job_id)
    assert job is not None and (job.func_name, job.args) == (sending.SEND_JOB, ([message.pk],))
    due = scheduled.get_scheduled_time(job_id)
    assert math.ceil(d.next_at.timestamp()) <= due.replace(tzinfo=UTC).timestamp() <= d.next_at.timestamp() + 2


def test_a_receipt_is_recorded_and_its_pull_scheduled(practice, ato):
    message = claimed(enqueue(practice, service_action=registry.MAAS_SUBMIT))
    before = timezone.now()
    d = decide(message, receipt(ato, message))
    sending._record([d], WORKER)
    message.refresh_from_db()
    assert (message.status, message.phase, message.attempts, message.completed_at) == (
        MessageStatus.AWAITING,
        "pull",
        0,
        None,
    )
    assert within(message.next_attempt_at, before, timezone.now())
    assert MessageAttempt.objects.get(message=message).kind == "send"  # the attempt that was, not the next
    assert audits_of(message) == []
    queue = django_rq.get_queue("high")
    scheduled = ScheduledJobRegistry(queue=queue)
    (job_id,) = scheduled.get_job_ids()
    job = queue.fetch_job(job_id)
    assert job is not None and (job.func_name, job.args) == (sending.PULL_JOB, (practice.pk,))
    due = scheduled.get_scheduled_time(job_id).replace(tzinfo=UTC).timestamp()
    assert before.timestamp() <= due <= timezone.now().timestamp() + 1


def test_a_reply_repeating_another_messages_reply_id_is_a_replay(practice, ato, handled):
    earlier = enqueue(practice)
    OutboxMessage.objects.filter(pk=earlier.pk).update(status=MessageStatus.DONE, response_message_id="answer-1@ato")
    message = claimed(ask(practice)[0])
    sending._record([decide(message, response(ato, message, response_id="answer-1@ato"))], WORKER)
    message.refresh_from_db()
    assert (message.status, message.error_code, message.response_message_id) == (
        MessageStatus.FAILED,
        "REPLY:REPLAYED",
        None,
    )
    assert message.error_text == "The ATO's reply repeats the MessageId of an earlier reply: refused as a replay."
    attempt = MessageAttempt.objects.get(message=message)
    assert (attempt.outcome, attempt.http_status) == (AttemptOutcome.PERMANENT, 200)
    assert "answer-1@ato" in attempt.response_excerpt  # what came, kept for the console
    ((_, answer),) = handled
    assert not answer.ok and [a.action for a in audits_of(message)] == ["ato.message_failed"]


def test_a_resent_message_may_get_its_own_first_answer_again(practice, ato, handled):
    message = ask(practice)[0]
    OutboxMessage.objects.filter(pk=message.pk).update(response_message_id="answer-1@ato")
    message = claimed(message)
    sending._record([decide(message, response(ato, message, response_id="answer-1@ato"))], WORKER)
    message.refresh_from_db()
    assert (message.status, message.response_message_id) == (MessageStatus.DONE, "answer-1@ato")
    assert len(handled) == 1


def test_a_pulls_attempt_is_recorded_as_a_pull(practice, ato):
    message = enqueue(practice, service_action=registry.MAAS_SUBMIT)
    OutboxMessage.objects.filter(pk=message.pk).update(
        phase="pull", status=MessageStatus.SENDING, claimed_by=WORKER, attempts=2
    )
    message.refresh_from_db()
    sending._record([decide(message, response(ato, message))], WORKER)
    attempt = MessageAttempt.objects.get(message=message)
    assert (attempt.kind, attempt.number, attempt.outcome) == ("pull", 2, AttemptOutcome.OK)
    assert OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.DONE


def test_a_row_no_longer_sending_is_not_recorded_even_by_its_worker(practice, ato):
    message = claimed(enqueue(practice))
    OutboxMessage.objects.filter(pk=message.pk).update(status=MessageStatus.RETRY)
    sending._record([decide(message, response(ato, message))], WORKER)
    message.refresh_from_db()
    assert (message.status, message.response_message_id) == (MessageStatus.RETRY, None)
    assert not MessageAttempt.objects.filter(message=message).exists()


def test_recording_nothing_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        sending._record([], WORKER)


# --- the console's resend ---------------------------------------------------------------------------------------


def given_up(practice: Practice, status: str, **fields: Any) -> OutboxMessage:
    message = enqueue(practice)
    values = {"phase": "pull", "attempts": 8, "completed_at": timezone.now(), "error_code": "GATEWAY:NO_RESPONSE"}
    OutboxMessage.objects.filter(pk=message.pk).update(status=status, **{**values, **fields})
    message.refresh_from_db()
    return message


@pytest.mark.parametrize("status", [MessageStatus.DEAD, MessageStatus.FAILED])
def test_a_resend_sends_again_under_the_same_message_id(practice, admin, status, django_capture_on_commit_callbacks):
    message = given_up(practice, status)
    other = given_up(practice, status)  # newer: the first a query without the message's own key would find
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert operations.outbox_resend(user=admin, message=message) is True
    after = timezone.now()
    row = OutboxMessage.objects.get(pk=message.pk)
    assert (row.status, row.phase, row.attempts, row.completed_at) == (MessageStatus.RETRY, "send", 0, None)
    assert row.message_id == message.message_id and within(row.next_attempt_at, before, after)
    (audit,) = AuditEvent.objects.filter(action="ato.message_resent")
    assert (audit.actor_id, audit.practice_id, audit.object_id) == (admin.pk, practice.pk, str(message.pk))
    assert audit.details == {"message_id": message.message_id}
    assert callbacks
    assert OutboxMessage.objects.get(pk=other.pk).status == status
    (job,) = django_rq.get_queue("high").get_jobs()
    assert (job.func_name, job.args) == (sending.SEND_JOB, ([message.pk],))


@pytest.mark.parametrize(
    "status",
    [MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.RETRY, MessageStatus.AWAITING, MessageStatus.DONE],
)
def test_only_a_failed_or_dead_message_is_resent(practice, admin, status, django_capture_on_commit_callbacks):
    message = given_up(practice, status)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert operations.outbox_resend(user=admin, message=message) is False
    row = OutboxMessage.objects.get(pk=message.pk)
    assert (row.status, row.phase, row.attempts) == (status, "pull", 8)
    assert callbacks == [] and not AuditEvent.objects.filter(action="ato.message_resent").exists()


def test_a_resend_after_a_failed_handler_delivers_the_stored_answer(
    practice, admin, handled, django_capture_on_commit_callbacks
):
    message, question = ask(practice)
    message.set_response({"documents": {}, "events": []})
    message.save(update_fields=["response_encrypted"])
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, error_code="HANDLER", error_text="recording failed", phase="send", attempts=1
    )
    Question.objects.filter(pk=question.pk).update(state=QuestionState.FAILED, failure_code="HANDLER")
    message.refresh_from_db()
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert operations.outbox_resend(user=admin, message=message) is True
    row = OutboxMessage.objects.get(pk=message.pk)
    assert (row.status, row.error_code, row.error_text, row.attempts) == (MessageStatus.DONE, "", "", 1)
    assert within(row.completed_at, before, timezone.now())
    ((seen, answer),) = handled
    assert (seen.pk, seen.state, answer.ok) == (question.pk, QuestionState.REFUSED, True)
    assert callbacks == [] and django_rq.get_queue("high").get_jobs() == []  # the ATO is not asked again
    assert AuditEvent.objects.filter(action="ato.message_resent").count() == 1


def test_a_handler_failure_without_a_stored_answer_is_sent_again(practice, admin, django_capture_on_commit_callbacks):
    message = given_up(practice, MessageStatus.FAILED, error_code="HANDLER")
    with django_capture_on_commit_callbacks(execute=True):
        assert operations.outbox_resend(user=admin, message=message) is True
    assert OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.RETRY


def test_a_resend_survives_a_failed_push_of_its_job(practice, admin, django_capture_on_commit_callbacks):
    """Its job is pushed once the resend commits, and robustly: with Redis down the resend still stands, and the
    sweeper sends the message, which is due."""
    message = given_up(practice, MessageStatus.DEAD)
    with django_capture_on_commit_callbacks(execute=True):
        start = len(connection.run_on_commit)
        assert operations.outbox_resend(user=admin, message=message) is True
        ((_, push, robust),) = connection.run_on_commit[start:]
        assert robust is True and "outbox_resend" in push.__qualname__  # (mutmut renames the function)
    assert OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.RETRY
