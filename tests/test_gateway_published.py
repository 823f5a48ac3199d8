"""The gateway speaking the ATO's protocol as published, through a real worker, Redis and HTTP to the stand-in ATO
in its ATO-like mode (it signs only pulled responses and sends ebMS errors on HTTP 500): unsigned answers, errors
on 500 decided by their own code, a refused token dropped, the connection test on the ebMS3 test service, the
software's registration required, the logical endpoints, bulk MAAS as one attachment, and ``Partial``."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction

from ato_gateway import services, tokens, transport, wire
from ato_gateway.models import MachineCredential, MessageAttempt, MessageStatus, OutboxMessage
from ato_gateway.services import sending
from ato_gateway.wire import errors as wire_errors
from ato_gateway.wire import registry, sts
from ato_gateway.wire.documents import codec, maas
from ato_gateway.wire.documents.common import PersonName
from ato_gateway.wire.ebms import EbmsError, standard_error
from portal.models import Practice
from tests.gateway_fixtures import Sandbox, pump, settled

pytestmark = pytest.mark.django_db(transaction=True)
DEMO_PASSWORD = "demo-keystore-password"
TEST_SERVICE = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service"


@pytest.fixture
def gateway(settings: Any, sandbox: Sandbox) -> Iterator[Sandbox]:
    for name, value in sandbox.env().items():
        setattr(settings, name, value)
    settings.GATEWAY_BACKOFF_BASE_SECONDS = 0.05
    settings.GATEWAY_BACKOFF_CAP_SECONDS = 0.2
    settings.GATEWAY_MAX_ATTEMPTS = 6
    settings.ATO_READ_TIMEOUT_SECONDS = 5
    tokens.forget_tokens()
    sandbox.clear_faults()
    sandbox.control("POST", "reset")
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture
def credentialed(practice: Practice, admin: Any, gateway: Sandbox) -> Practice:
    services.credential_import(
        practice=practice,
        data=gateway.demo_keystore.read_bytes(),
        filename="demo-keystore.xml",
        password=DEMO_PASSWORD,
        actor=admin,
    )
    assert MachineCredential.objects.get(practice=practice).is_selected
    return practice


def _ping(practice: Practice, text: str = "published") -> OutboxMessage:
    document = f'<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>{text}</Text></PingRequest>'
    with transaction.atomic():
        return services.outbox_enqueue(
            practice=practice, service="PING", action="Ping.001.00", documents=[("PingRequest", document)]
        )


def _attempts(message: OutboxMessage) -> list[MessageAttempt]:
    return list(MessageAttempt.objects.filter(message=message).order_by("number"))


def test_an_unsigned_answer_works_through_the_gateway_on_the_ebms3_test_service(credentialed: Practice) -> None:
    message = _ping(credentialed, "unsigned please")
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    assert "unsigned please" in message.response()["documents"]["PingResponse"]
    [attempt] = _attempts(message)
    # The answer came without wsse:Security (the console's excerpt cuts a security header out as "[omitted]").
    assert attempt.http_status == 200 and "[omitted]" not in attempt.response_excerpt
    assert "Messaging" in attempt.response_excerpt
    # The connection test is OASIS's test service and action, not a service of our own.
    assert f"<eb:Service>{TEST_SERVICE}</eb:Service>" in attempt.request_excerpt
    assert f"<eb:Action>{registry.TEST_ACTION}</eb:Action>" in attempt.request_excerpt


def test_a_bad_signature_on_an_answer_is_still_refused(credentialed: Practice, gateway: Sandbox) -> None:
    gateway.faults(next=["ok", "bad_signature"])  # the token, then the message's answer, signed and spoiled
    message = _ping(credentialed)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.error_code == "SignatureInvalid"


def _forged_token(practice: Practice) -> bytes:
    """An assertion the token service never issued: signed with the practice's own key."""
    credential = MachineCredential.objects.get(practice=practice)
    now = datetime.now(UTC)
    return sts.create_assertion(
        issuer="https://forged.invalid/sts",
        subject_abn=credential.abn,
        audience=registry.STS_APPLIES_TO_DEFAULT,
        attributes={registry.SAML_ATTRIBUTE_ABN: credential.abn},
        key=credential.private_key(),
        certificate=credential.certificate(),
        not_before=now,
        not_on_or_after=now + timedelta(minutes=30),
    )


def test_an_ebms_error_on_http_500_is_decided_by_its_code_and_the_refused_token_is_dropped(
    credentialed: Practice, gateway: Sandbox
) -> None:
    credential = MachineCredential.objects.get(practice=credentialed)
    tokens._cache[credential.fingerprint_sha256] = (_forged_token(credentialed), datetime.now(UTC) + timedelta(hours=1))
    message = _ping(credentialed, "with a refused token")
    pump(settled(message))
    message.refresh_from_db()
    # Permanent at once (not eight transient "HTTP 500"s), with the ATO's own code and words.
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "EBMS:0101"), message.error_text
    [attempt] = _attempts(message)
    assert attempt.http_status == 500 and attempt.outcome == "permanent"
    assert "[omitted]" not in attempt.response_excerpt  # the error came unsigned, as the ATO sends it
    assert "FailedAuthentication" in message.error_text
    assert credential.fingerprint_sha256 not in tokens._cache  # the refused token is not used again
    assert gateway.stats()["applied"] == {}
    again = _ping(credentialed, "with a fresh token")
    pump(settled(again))
    again.refresh_from_db()
    assert again.status == MessageStatus.DONE, again.error_text


def test_a_soap_fault_on_http_500_is_retried_and_the_message_goes_through(
    credentialed: Practice, gateway: Sandbox
) -> None:
    gateway.faults(next=["ok", "http_500"])  # the token, then a Receiver fault for the message's first try
    message = _ping(credentialed)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    first, second = _attempts(message)
    assert (first.http_status, first.outcome, first.error_code) == (500, "transient", "REPLY:FAULT:Receiver")
    assert second.outcome == "ok"


def test_nothing_is_sent_without_the_softwares_registration(
    credentialed: Practice, gateway: Sandbox, settings: Any
) -> None:
    settings.SBR_BMS_VENDOR = ""
    message = _ping(credentialed)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and "SBR_BMS_VENDOR" in message.error_text
    assert gateway.stats()["applied"] == {}


def test_each_action_goes_to_its_logical_endpoint_in_the_configured_environment(
    credentialed: Practice, gateway: Sandbox, settings: Any
) -> None:
    assert services.endpoint_url("BulkBatch-async-push") == f"{gateway.url}/ebms/bulkbatch-async-push"
    settings.ATO_ENVIRONMENT = "test"
    settings.ATO_ENDPOINTS = {"test": {"Single-sync": f"{gateway.url}/ebms/single-sync"}, "production": {}}
    message = _ping(credentialed, "to the test environment")
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    settings.ATO_ENVIRONMENT = "production"
    unrouted = _ping(credentialed, "to production, not configured")
    pump(settled(unrouted))
    unrouted.refresh_from_db()
    assert unrouted.status == MessageStatus.FAILED and unrouted.error_code == "GATEWAY:ENDPOINT"
    assert "ATO_PRODUCTION_SINGLE_SYNC_URL" in unrouted.error_text
    assert list(gateway.stats()["applied"]) == [message.message_id]


def _member(transaction_id: str, usi: str, member_id: str | None) -> maas.MemberTransaction:
    return maas.MemberTransaction(
        transaction_id=transaction_id,
        usi=usi,
        member_id=member_id,
        tfn=None,
        name=PersonName("Nobody-Known", "Ada"),
        birth_date=date(1970, 1, 1),
        status="OPEN",
        event=maas.AccountEvent("OPENED", date(2026, 1, 5)),
    )


def test_a_partly_accepted_bulk_message_is_applied_and_its_refused_part_shown(
    credentialed: Practice, gateway: Sandbox
) -> None:
    credential = MachineCredential.objects.get(practice=credentialed)
    usi = str(gateway.control("POST", "fund", json={"abn": credential.abn, "name": "Published Super"})["usi"])
    # One transaction the fund may report (an unknown member: processed, UNMATCHED) and one without a member number.
    document = maas.SubmitRequest(transactions=[_member("T-1", usi, "M-1"), _member("T-2", usi, None)])
    with transaction.atomic():
        message = services.outbox_enqueue(
            practice=credentialed,
            service="MAAS",
            action="Submit.001.00",
            documents=[("SPRMBRINFO", codec.encode(document).decode())],
        )

    def receipted() -> bool:
        current = OutboxMessage.objects.get(pk=message.pk)
        return current.status == MessageStatus.AWAITING or current.is_terminal

    pump(receipted)
    [pushed] = _attempts(message)
    assert "[omitted]" not in pushed.response_excerpt  # the receipt came unsigned
    assert pushed.request_excerpt.count("<eb:PartInfo ") == 1 and ">BULK</eb:Property>" in pushed.request_excerpt
    assert "<RecordDelimiter><DocumentId>2</DocumentId>" in pushed.request_excerpt  # two records, one attachment
    services.outbox_pull(credentialed.pk, worker="test")
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE and message.error_code == "EVENT:PARTIAL", message.error_text
    assert "accepted part of the message" in message.error_text
    response = message.response()
    assert response["maximum_severity"] == "Partial"
    results = codec.decode(maas.SubmitResponse, response["documents"]["SPRMBRINFOResponse"].encode()).results
    assert [(r.transaction_id, r.processed) for r in results] == [("T-1", True), ("T-2", False)]


def test_a_pushed_messages_response_is_pulled_from_its_endpoint(
    credentialed: Practice, gateway: Sandbox, settings: Any
) -> None:
    credential = MachineCredential.objects.get(practice=credentialed)
    usi = str(gateway.control("POST", "fund", json={"abn": credential.abn, "name": "Published Super"})["usi"])
    settings.ATO_ENVIRONMENT = "test"
    settings.ATO_ENDPOINTS = {"test": {"BulkBatch-async-push": f"{gateway.url}/ebms/bulkbatch-async-push"}}
    document = codec.encode(maas.SubmitRequest(transactions=[_member("T-1", usi, "M-1")])).decode()
    with transaction.atomic():
        message = services.outbox_enqueue(
            practice=credentialed, service="MAAS", action="Submit.001.00", documents=[("SPRMBRINFO", document)]
        )
    pump(lambda: OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.AWAITING)
    services.outbox_pull(credentialed.pk, worker="test")  # no BulkBatch-async-pull address: nothing is asked
    message.refresh_from_db()
    assert message.status == MessageStatus.AWAITING
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=datetime.now(UTC))
    settings.ATO_ENDPOINTS["test"]["BulkBatch-async-pull"] = f"{gateway.url}/ebms/not-an-endpoint"
    services.outbox_pull(credentialed.pk, worker="test")  # asked there, and refused (HTTP 404): still waiting
    message.refresh_from_db()
    assert message.status == MessageStatus.AWAITING
    settings.ATO_ENDPOINTS["test"]["BulkBatch-async-pull"] = f"{gateway.url}/ebms/bulkbatch-async-pull"
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=datetime.now(UTC))
    services.outbox_pull(credentialed.pk, worker="test")
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    assert registry.MAAS_SUBMIT.pull_endpoint == "BulkBatch-async-pull"


# --- the transport: what is worth sending again ---


class _Answering(http.server.BaseHTTPRequestHandler):
    status = 200
    content_type = "text/plain"
    body = b"no"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[tuple[type[_Answering], str]]:
    handler = type("Handler", (_Answering,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/ebms/single-sync"
    server.shutdown()
    server.server_close()


def test_only_502_503_and_504_are_worth_sending_again(answering: tuple[type[_Answering], str]) -> None:
    handler, url = answering
    for status in (502, 503, 504):
        handler.status = status
        with pytest.raises(transport.TransportError) as failed:
            transport.post(url, b"<x/>", "application/soap+xml")
        assert (failed.value.code, failed.value.permanent) == (f"HTTP:{status}", False)
    for status in (500, 501, 400):
        handler.status = status
        with pytest.raises(transport.TransportError) as failed:
            transport.post(url, b"<x/>", "application/soap+xml")
        assert (failed.value.code, failed.value.permanent) == (f"HTTP:{status}", True)


def test_a_soap_answer_is_handed_back_whatever_its_status(answering: tuple[type[_Answering], str]) -> None:
    handler, url = answering
    handler.body = b"<S12:Envelope/>"
    for status, media in ((500, "application/soap+xml; charset=UTF-8"), (400, 'multipart/related; type="x"')):
        handler.status, handler.content_type = status, media
        reply = transport.post(url, b"<x/>", "application/soap+xml")
        assert (reply.status, reply.content_type, reply.body) == (status, media, b"<S12:Envelope/>")


def test_a_pulled_response_must_be_signed(credentialed: Practice, gateway: Sandbox) -> None:
    credential = MachineCredential.objects.get(practice=credentialed)
    # The stand-in's own signing key, from the directory the sandbox fixture made for it.
    key = serialization.load_pem_private_key((gateway.data_dir / "ato-signing-key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    certificate = x509.load_pem_x509_certificate(gateway.signing_cert.read_bytes())
    for sign in (True, False):
        body, content_type = wire.build_signed_response(
            message_id=f"pulled-{sign}@ato",
            ref_to_message_id="pushed@practice",
            conversation_id="c",
            service=registry.MAAS_SUBMIT.service_uri,
            action=registry.MAAS_SUBMIT.action,
            to_abn=credential.abn,
            payloads=[("SPRMBRINFOResponse", b"<r/>")],
            key=key,
            certificate=certificate,
            sign=sign,
        )
        reply = transport.Reply(200, content_type, body, 0)
        assert sending._read_reply(reply).signed is sign  # a synchronous answer may be either
        if sign:
            assert sending._read_reply(reply, pulled=True).kind == "user"
        else:
            with pytest.raises(wire_errors.SignatureInvalid, match="not signed"):
                sending._read_reply(reply, pulled=True)


def _inbound(kind: str, errors: list[EbmsError] | None = None) -> wire.InboundMessage:
    return wire.InboundMessage(
        kind=kind,  # type: ignore[arg-type]
        message_id="answer@ato",
        ref_to_message_id=None,
        timestamp=None,
        service=None,
        action=None,
        conversation_id=None,
        errors=errors or [],
        payloads={},
        event_items=[],
        maximum_severity=None,
        receipt_references=[],
        signer_certificate=None,
        raw=b"",
    )


def test_ebms_errors_are_decided_by_their_own_codes_and_severities(settings: Any) -> None:
    settings.GATEWAY_MAX_ATTEMPTS = 8
    message = OutboxMessage(service="PING", action="Ping.001.00", message_id="m@practice", attempts=1)
    reply = transport.Reply(500, "application/soap+xml", b"", 0)

    def decide(*errors: EbmsError) -> services.Decision:
        return sending._decide(message, datetime.now(UTC), b"", reply, _inbound("error", list(errors)))

    empty = standard_error("EBMS:0006", "nothing yet")  # a warning
    refused = standard_error("EBMS:0004", "refused")  # a failure
    notice = EbmsError("EBMS:0002", "warning", "FeatureNotSupported", "Content", "ignored", None)
    assert (decide(empty).status, decide(empty).code) == (MessageStatus.RETRY, "EBMS:0006")
    # The failure decides, whatever warning comes with it, and whichever comes first.
    assert (decide(empty, refused).status, decide(empty, refused).code) == (MessageStatus.FAILED, "EBMS:0004")
    assert decide(notice).status == MessageStatus.FAILED  # a warning alone, of a code not worth retrying


def test_a_receipt_for_the_connection_test_is_the_connection_working(settings: Any) -> None:
    """The ebMS3 test service is answered by the receiving MSH: a Receipt is all it may give."""
    message = OutboxMessage(service="PING", action="Ping.001.00", message_id="m@practice", attempts=1)
    reply = transport.Reply(200, "application/soap+xml", b"", 0)
    decision = sending._decide(message, datetime.now(UTC), b"", reply, _inbound("receipt"))
    assert decision.status == MessageStatus.DONE and decision.phase is None
    pushed = OutboxMessage(service="MAAS", action="Submit.001.00", message_id="p@practice", attempts=1)
    assert sending._decide(pushed, datetime.now(UTC), b"", reply, _inbound("receipt")).status == MessageStatus.AWAITING
