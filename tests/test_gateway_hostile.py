"""Hostile replies through the real gateway (issue 15): the outbox sends on a real RQ worker over HTTP to a server
that stands where the ATO is, passes everything on to the stand-in ATO process, and spoils the answers on the way
back: an unknown mandatory header block, gzip parts that inflate past the gateway's limit, a captured signed
reply with a comment hiding its RefToMessageId. The portal takes none of them as the message's answer."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import django_rq
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.db import transaction

from ato_gateway import services, tokens
from ato_gateway.models import MessageStatus, OutboxMessage
from ato_gateway.wire import ebms, events, mime, registry, xmlsafe
from ato_gateway.wire import server as wire_api
from portal.models import Practice
from tests.gateway_fixtures import Sandbox, pump, settled

pytestmark = pytest.mark.django_db(transaction=True)
DEMO_PASSWORD = "demo-keystore-password"
# (request body, request Content-Type, reply body, reply Content-Type) -> the reply sent back instead
Spoil = Callable[[bytes, str, bytes, str], tuple[bytes, str]]


@dataclass
class Hostile:
    """Where the portal thinks the ATO is. ``spoil`` rewrites each ebMS reply (body, Content-Type)."""

    url: str
    sandbox: Sandbox
    spoil: Spoil | None = None
    chunked: bool = False  # send the reply chunked, with no Content-Length
    spoiled: list[str] = field(default_factory=list)

    def signed_answer(self, request: bytes, content_type: str, **changes: Any) -> tuple[bytes, str]:
        """An answer to the ping in ``request`` as the ATO's key signs them, with ``changes``."""
        root, _ = mime.parse_package(request, content_type)
        user = ebms.parse_messaging(ebms.find_messaging(xmlsafe.parse(root.body))).user_messages[0]
        key = load_pem_private_key((self.sandbox.data_dir / "ato-signing-key.pem").read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        ok = events.EventItem(code="GEN.OK", severity="Information", short_description="Ping applied.")
        pong = f'<PingResponse xmlns="{registry.PING_NAMESPACE}"><Text>hostile reply</Text></PingResponse>'
        fields: dict[str, Any] = {
            "message_id": ebms.new_message_id("sandbox.ato.invalid"),
            "ref_to_message_id": user.message_id,
            "conversation_id": user.conversation_id,
            "service": user.service,
            "action": user.action,
            "to_abn": next(p.party_id for p in user.from_parties if p.type == registry.PARTY_TYPE_ABN),
            "payloads": [("PingResponse", pong.encode()), (registry.EVENT_DOCUMENT_NAME, events.build_event([ok]))],
            "key": key,
            "certificate": x509.load_pem_x509_certificate(self.sandbox.signing_cert.read_bytes()),
        }
        fields.update(changes)
        return wire_api.build_signed_response(**fields)


def _server(hostile: Hostile) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            upstream = requests.post(
                f"{hostile.sandbox.url}{self.path}",
                data=body,
                headers={"Content-Type": self.headers.get("Content-Type", "")},
                timeout=30,
            )
            content, content_type = upstream.content, upstream.headers.get("Content-Type", "")
            if self.path.startswith("/ebms/") and hostile.spoil is not None:
                request_type = self.headers.get("Content-Type", "")
                content, content_type = hostile.spoil(body, request_type, content, content_type)
                hostile.spoiled.append(self.path)
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", content_type)
            if not hostile.chunked:
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(content), 16 * 1024):
                piece = content[start : start + 16 * 1024]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def hostile(settings: Any, sandbox: Sandbox, practice: Practice, admin: Any) -> Iterator[Hostile]:
    box = Hostile("", sandbox)
    server = _server(box)
    box.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ATO_STS_URL = f"{box.url}/sts"
    settings.ATO_EBMS_URL = f"{box.url}/ebms"
    settings.ATO_SIGNING_CERT_FILE = str(sandbox.signing_cert)
    settings.GATEWAY_BACKOFF_BASE_SECONDS = 0.05
    settings.GATEWAY_BACKOFF_CAP_SECONDS = 0.2
    settings.ATO_READ_TIMEOUT_SECONDS = 10
    tokens.forget_tokens()
    sandbox.clear_faults()
    services.credential_import(
        practice=practice,
        data=sandbox.demo_keystore.read_bytes(),
        filename="demo-keystore.xml",
        password=DEMO_PASSWORD,
        actor=admin,
    )
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def _ping(practice: Practice) -> OutboxMessage:
    document = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>hostile reply</Text></PingRequest>'
    with transaction.atomic():
        message = services.outbox_enqueue(
            practice=practice, service="PING", action="Ping.001.00", documents=[("PingRequest", document)]
        )
    pump(settled(message), timeout=60)
    message.refresh_from_db()
    return message


def _refused(message: OutboxMessage, code: str) -> None:
    """Failed for good at the first attempt (asking again brings the same reply), with no answer kept."""
    assert message.status == MessageStatus.FAILED, (message.status, message.error_code, message.error_text)
    assert message.attempts == 1 and message.error_code == code, (message.error_code, message.error_text)
    assert not message.response()


def test_a_reply_with_an_unknown_mandatory_header_is_refused(hostile: Hostile, practice: Practice) -> None:
    block = b'<x:Surprise xmlns:x="urn:example:hostile" S12:mustUnderstand="true">1</x:Surprise>'

    def spoil(_request: bytes, _type: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        assert body.count(b"<S12:Header>") == 1
        return body.replace(b"<S12:Header>", b"<S12:Header>" + block), content_type

    hostile.spoil = spoil
    _refused(_ping(practice), "MustUnderstandFault")
    assert hostile.spoiled


def test_a_reply_that_inflates_past_the_gateways_limit_is_refused(
    hostile: Hostile, practice: Practice, settings: Any
) -> None:
    """Signed by the ATO's key and small on the wire; three parts of 400 KB each once inflated, against a limit
    of 1 MiB for all of a reply's parts together (each is far below the 50 MiB a single part may hold)."""
    settings.GATEWAY_MAX_INFLATED_BYTES = 1024 * 1024
    padding = b"<Padding>" + b" " * (400 * 1024) + b"</Padding>"

    ok = events.EventItem(code="GEN.OK", severity="Information", short_description="Ping applied.")
    pong = f'<PingResponse xmlns="{registry.PING_NAMESPACE}"><Text>hostile reply</Text></PingResponse>'.encode()
    payloads = [("PingResponse", pong), (registry.EVENT_DOCUMENT_NAME, events.build_event([ok]))]
    payloads += [(f"Padding{n}", padding) for n in range(3)]

    def spoil(request: bytes, request_type: str, _body: bytes, _type: str) -> tuple[bytes, str]:
        body, content_type = hostile.signed_answer(request, request_type, payloads=payloads, compress=True)
        assert len(body) < 64 * 1024
        return body, content_type

    hostile.spoil = spoil
    _refused(_ping(practice), "InflationLimitExceeded")


def test_a_captured_signed_reply_with_a_comment_hiding_its_reference_is_refused(
    hostile: Hostile, practice: Practice
) -> None:
    """A signed answer to another message, its RefToMessageId behind a comment: C14N drops the comment, so the
    signature holds, and read up to the comment the reference was empty and the answer taken for this message."""
    other = ebms.new_message_id()

    def spoil(request: bytes, request_type: str, _body: bytes, _type: str) -> tuple[bytes, str]:
        signed, signed_type = hostile.signed_answer(request, request_type, ref_to_message_id=other)
        reference = f"<eb:RefToMessageId>{other}</eb:RefToMessageId>".encode()
        assert signed.count(reference) == 1
        return signed.replace(reference, reference.replace(b">", b"><!---->", 1)), signed_type

    hostile.spoil = spoil
    _refused(_ping(practice), "REPLY:MISMATCH")


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_reply_over_the_size_limit_is_refused_as_it_arrives(
    hostile: Hostile, practice: Practice, settings: Any, chunked: bool
) -> None:
    settings.GATEWAY_MAX_REPLY_BYTES = 256 * 1024
    hostile.chunked = chunked
    hostile.spoil = lambda _request, _type, body, content_type: (body + b" " * (300 * 1024), content_type)
    _refused(_ping(practice), "HTTP:TOO_LARGE")


def test_a_message_whose_turn_comes_late_is_signed_again(
    hostile: Hostile, practice: Practice, settings: Any, sandbox: Sandbox
) -> None:
    """A batch is signed, then sent on the send threads; with the ATO slow, the last of it used to go out with the
    eb:Timestamp of the batch, minutes old, and a receiver's freshness window refused it. One send thread and a
    stand-in that takes 1.5 s to answer: the second message is signed again when its turn comes."""
    settings.GATEWAY_SEND_THREADS = 1
    settings.GATEWAY_RESIGN_AFTER_SECONDS = 0.5
    document = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>late</Text></PingRequest>'
    tokens_warm = _ping(practice)  # the token is fetched before the slow part
    assert tokens_warm.status == MessageStatus.DONE
    sandbox.faults(latency_ms=1500)
    try:
        with transaction.atomic():
            messages = [
                services.outbox_enqueue(
                    practice=practice, service="PING", action="Ping.001.00", documents=[("PingRequest", document)]
                )
                for _ in range(2)
            ]
        # Each was given a job of its own when it committed; one job for both instead, as a busy outbox batches.
        django_rq.get_queue("high").empty()
        services.outbox_dispatch([m.pk for m in messages])
        pump(settled(*messages), timeout=60)
    finally:
        sandbox.clear_faults()
    stamps = []
    for message in messages:
        message.refresh_from_db()
        assert message.status == MessageStatus.DONE, message.error_text
        attempt = message.attempt_log.get()
        found = re.search(r"<eb:Timestamp>([^<]+)</eb:Timestamp>", attempt.request_excerpt)
        assert found is not None
        stamps.append(ebms.parse_timestamp(found.group(1)))
    first, second = sorted(s for s in stamps if s is not None)
    assert (second - first).total_seconds() >= 1.2  # signed when it went out, not with the batch
