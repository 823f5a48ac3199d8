"""The stand-in ATO's front door: a plain WSGI application (no Django), run by gunicorn.

Endpoints and behaviour: docs/wire-contract.md. It verifies everything it receives with ``ato_gateway.wire`` (the
only project code it imports), answers like the ATO, applies each MessageId at most once, and can be told to fail
in every way the real one does (``/_control/faults``).
"""

from __future__ import annotations

import base64
import contextvars
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import struct
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ato_gateway import wire
from ato_gateway.wire import ebms, events, registry, wsse, xmlsafe
from ato_gateway.wire.documents import codec
from ato_gateway.wire.errors import (
    CertificateUntrusted,
    InvalidScope,
    MustUnderstandFault,
    ReplayDetected,
    WireError,
)

from . import errors, inspect, pki, register, services
from .faults import DEFAULT_TIMEOUT_SECONDS, Decision, Faults, FaultSettingsError
from .storage import Storage

log = logging.getLogger("ato_sandbox")

ISSUER = "https://sandbox.ato.invalid/sts"  # [ours]: the SAML Issuer of the stand-in token service
MESSAGE_ID_HOST = "sandbox.ato.invalid"
SOAP = "application/soap+xml; charset=UTF-8"
JSON = "application/json"
MAX_BODY_BYTES = 64 * 1024 * 1024
# The services the token service issues for and the receiver takes tokens for ([reported] AppliesTo values of the
# ATO's production and test environments, and the library's default): a token for anyone else is refused.
DEFAULT_AUDIENCES = frozenset(
    {registry.STS_APPLIES_TO_DEFAULT, "https://sbr.gov.au/services", "https://test.sbr.gov.au/services"}
)
# Each of the ATO's logical endpoints (registry.ENDPOINTS) at its name in lower case, and the two older paths:
# /ebms/async-push takes every pushed action, /ebms/async-pull every pull.
EBMS_ENDPOINTS = {
    "/ebms/single-sync": "single-sync",
    "/ebms/single-async": "single-async",
    "/ebms/bulkbatch-async-push": "bulkbatch-async-push",
    "/ebms/async-push": "async-push",
    "/ebms/bulkbatch-async-pull": "async-pull",
    "/ebms/collect-async": "async-pull",
    "/ebms/async-pull": "async-pull",
}
# What the ATO signs (SBR ebMS3 Web Services Implementation Guide v1.7): only one-way pull responses to bulk and
# batch pull requests; every other answer goes unsigned. ATO_SANDBOX_SIGN_ALL=1 signs every answer (tests of the
# signature checks); a bad_signature fault signs the answer it spoils.
SIGN_ALL_ENV = "ATO_SANDBOX_SIGN_ALL"
_signing: contextvars.ContextVar[bool] = contextvars.ContextVar("sandbox_signs_answers", default=True)
# An HTTP 500 from a SOAP service that failed on a message: a SOAP 1.2 Receiver fault (part 1, 5.4.6).
RECEIVER_FAULT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope">'
    b"<S12:Body><S12:Fault><S12:Code><S12:Value>S12:Receiver</S12:Value></S12:Code><S12:Reason>"
    b'<S12:Text xml:lang="en">Internal server error.</S12:Text></S12:Reason></S12:Fault></S12:Body></S12:Envelope>'
)
MALFORMED_REPLY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope">'
    b"<S12:Header><eb:Messaging><eb:UserMessage>"
)
_SIGNATURE_VALUE = re.compile(rb"(<ds:SignatureValue>)([^<]*)(</ds:SignatureValue>)")
_MESSAGE_ID = re.compile(rb"<(?:[A-Za-z0-9_.-]+:)?MessageId>([^<]{1,256})</")

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Limits:
    """What the front door accepts (wsgi.py reads each from an ATO_SANDBOX_* environment variable)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_inflated_bytes: int = wire.messages.DEFAULT_MAX_INFLATED_BYTES
    timestamp_window: timedelta = wire.server.DEFAULT_TIMESTAMP_WINDOW
    audiences: frozenset[str] = DEFAULT_AUDIENCES


class BodyRefused(Exception):
    """A request body refused before it is read in full: too large (413), or a Content-Length that is no length."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


class ApplyResult:
    """What applying a message produced: the answer, and whether it is the answer to remember for its MessageId."""

    def __init__(self, answer: Answer, *, applied: bool) -> None:
        self.answer = answer
        self.applied = applied


# The control and inspection pages change and show everything the stand-in holds (faults, the register, what was
# sent to it): only from this machine, or with the token set in ATO_SANDBOX_CONTROL_TOKEN (X-Sandbox-Token header).
CONTROL_TOKEN_ENV = "ATO_SANDBOX_CONTROL_TOKEN"  # noqa: S105 - the name of the variable, not a secret
OPERATOR_ONLY = b"the control and inspection pages answer only on this machine, or with X-Sandbox-Token\n"


def operator_allowed(environ: dict[str, Any], token: str) -> bool:
    given = environ.get("HTTP_X_SANDBOX_TOKEN", "")
    if token and given:
        return hmac.compare_digest(given.encode(), token.encode())
    try:
        return ipaddress.ip_address(environ.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:  # no address (a unix socket) or not one: not known to be this machine
        return False


class SandboxApp:
    def __init__(
        self, data_dir: Path, *, default_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, limits: Limits | None = None
    ) -> None:
        self.data_dir = data_dir
        self.limits = limits or Limits()
        self.pki = pki.ensure(data_dir)
        self.storage = Storage(data_dir / "sandbox.sqlite3")
        self.storage.initialise()
        with self.storage.write() as db:
            inspect.create_schema(db)
        self.faults = Faults(self.storage, default_timeout_seconds=default_timeout_seconds)
        self._trusted: dict[tuple[bytes, tuple[bytes, ...]], bool] = {}  # only positive decisions are kept
        self.sign_all = os.environ.get(SIGN_ALL_ENV, "").strip().lower() in ("1", "true", "yes")
        self.control_token = os.environ.get(CONTROL_TOKEN_ENV, "")

    # --- WSGI ---

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        try:
            if path == "/healthz":
                return self._send(start_response, self._json(200, {"status": "ok"}))
            if path.startswith(("/_inspect", "/_control/")) and not operator_allowed(environ, self.control_token):
                return self._send(start_response, Answer(403, "text/plain", OPERATOR_ONLY))
            if path.startswith("/_inspect") and method == "GET":
                html_page = inspect.page(
                    self.storage.connection(), path[len("/_inspect") :], environ.get("QUERY_STRING", "")
                )
                if html_page is None:
                    return self._send(start_response, Answer(404, "text/plain", b"not found\n"))
                return self._send(start_response, Answer(200, "text/html; charset=utf-8", html_page))
            if path.startswith("/_control/"):
                return self._send(start_response, self._control(method, path[len("/_control/") :], environ))
            if path == "/sts" or path in EBMS_ENDPOINTS:
                if method != "POST":
                    return self._send(start_response, Answer(405, "text/plain", b"POST only\n"))
                return self._exchange(environ, start_response, path)
            return self._send(start_response, Answer(404, "text/plain", b"not found\n"))
        except BodyRefused as refused:
            return self._send(start_response, Answer(refused.status, "text/plain", f"{refused}\n".encode()))
        except Exception:  # a bug must not take the worker down; it shows as a 500 and in the log
            log.exception("unhandled error on %s %s", method, path)
            return self._send(start_response, Answer(500, "text/plain", b"internal error in the stand-in ATO\n"))

    def _send(self, start_response: StartResponse, answer: Answer) -> list[bytes]:
        phrase = HTTPStatus(answer.status).phrase
        start_response(
            f"{answer.status} {phrase}",
            [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))],
        )
        return [answer.body]

    @staticmethod
    def _json(status: int, value: Any) -> Answer:
        return Answer(status, JSON, json.dumps(value, sort_keys=True).encode() + b"\n")

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        """The whole body, or BodyRefused: a declared length over the limit is refused before a byte is read, and
        a chunked body (no Content-Length) is read to one byte past the limit, which refuses it. Never cut short:
        a truncated message would be read as another one."""
        limit = self.limits.max_body_bytes
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:
                raise BodyRefused(400, f"Content-Length {length[:40]!r} is not a length") from None
            if size < 0:
                raise BodyRefused(400, f"Content-Length {size} is not a length")
            if size > limit:
                raise BodyRefused(413, f"the request body of {size} bytes exceeds the limit of {limit} bytes")
            return bytes(stream.read(size))
        body = bytes(stream.read(limit + 1))
        if len(body) > limit:
            raise BodyRefused(413, f"the request body exceeds the limit of {limit} bytes")
        return body

    # --- the ATO's interface, with faults around it ---

    def _exchange(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        try:
            body = self._read_body(environ)
        except BodyRefused as refused:
            # A 4xx, never a 5xx: the sender must not take it for an outage and send the same bytes again.
            self.storage.increment("received")
            return self._send(start_response, Answer(refused.status, "text/plain", f"{refused}\n".encode()))
        content_type = environ.get("CONTENT_TYPE", "")
        decision: Decision = self.faults.decide()
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000)
        if decision.outcome in ("outage", "http_503"):
            return self._send(start_response, Answer(503, "text/plain", b"The service is unavailable.\n"))
        if decision.outcome == "http_500":
            return self._send(start_response, Answer(500, SOAP, RECEIVER_FAULT))
        # Counters still to add: in the message's own transaction when there is one (see Faults.decide), after.
        counts = [] if decision.counted else ["received"]
        if decision.outcome in ("ok", "malformed", "bad_signature"):
            counts.append("answered")  # its answer goes back (a reset or a timeout keeps it)
        signing = _signing.set(self.sign_all or decision.outcome == "bad_signature")
        try:
            if path == "/sts":
                answer = self._sts(body)
            else:
                answer = self._ebms(EBMS_ENDPOINTS[path], body, content_type, counts)
        except BaseException:
            if not decision.counted:
                self.storage.increment("received")  # the message's transaction, if any, was rolled back
            raise
        finally:
            _signing.reset(signing)
        if counts:
            self.storage.increment_many(counts)
        # From here on the message has been applied (if it was valid); the faults below only spoil the way back.
        if decision.outcome == "reset":
            self._reset_connection(environ)
            return self._send(start_response, Answer(200, "text/plain", b""))
        if decision.outcome == "timeout":
            time.sleep(decision.timeout_seconds)
            return self._send(start_response, answer)
        if decision.outcome == "malformed":
            answer = Answer(200, SOAP, MALFORMED_REPLY)
        elif decision.outcome == "bad_signature":
            answer = Answer(answer.status, answer.content_type, _spoil_signature(answer.body))
        return self._send(start_response, answer)

    @staticmethod
    def _reset_connection(environ: dict[str, Any]) -> None:
        """Drop the client's TCP connection with a RST: SO_LINGER 0, then close. The socket's descriptor is
        replaced (dup2) by one end of a socketpair, so gunicorn's own writes and close go somewhere harmless
        (they fail with EPIPE, which gunicorn ignores) instead of hitting a closed or reused descriptor."""
        sock = environ.get("gunicorn.socket")
        if sock is None:
            raise ConnectionAbortedError("connection reset requested, but the server does not expose its socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        spare, other = socket.socketpair()
        try:
            os.dup2(spare.fileno(), sock.fileno())
        finally:
            spare.close()
            other.close()

    # --- the security token service ---

    def _sts(self, body: bytes) -> Answer:
        try:
            request = wire.sts_parse_issue_request(body, trust=self._trust, audiences=self.limits.audiences)
        except MustUnderstandFault as exc:
            return Answer(500, SOAP, ebms.must_understand_fault(exc.not_understood))  # the SOAP 1.2 HTTP binding's
        except WireError as exc:
            if isinstance(exc, InvalidScope):
                subcode = "InvalidScope"
            else:
                subcode = "FailedAuthentication" if exc.ebms_code == "EBMS:0101" else "InvalidRequest"
            # HTTP 400: a SOAP 1.2 Sender fault. It is the request that is wrong, and sending it again won't help.
            return Answer(400, SOAP, wire.sts_build_fault(str(exc), subcode=subcode))
        response = wire.sts_build_issue_response(
            request=request, issuer=ISSUER, key=self.pki.signing_key, certificate=self.pki.signing_certificate
        )
        return Answer(200, SOAP, response)

    def _trust(self, certificate: x509.Certificate) -> bool:
        """Machine credentials issued by our CA, or by (or equal to) a certificate POSTed to /_control/trust.
        Expired or not-yet-valid certificates are refused whoever issued them."""
        wsse.check_validity(certificate)
        der = certificate.public_bytes(Encoding.DER)
        pems = tuple(self.storage.trusted_pems())
        # The same few credentials sign every message: a decision is kept per certificate and set of trusted
        # certificates (a change to that set, from any worker process, starts afresh). Validity is checked above
        # on every message.
        key = (der, pems)
        if key not in self._trusted:
            self._trusted[key] = self._decide_trust(certificate, der, pems)
            if len(self._trusted) > 1024:
                self._trusted.clear()
        return True

    def _decide_trust(self, certificate: x509.Certificate, der: bytes, pems: tuple[bytes, ...]) -> bool:
        anchors = [self.pki.ca_certificate] + [c for pem in pems for c in x509.load_pem_x509_certificates(pem)]
        for anchor in anchors:
            if anchor.public_bytes(Encoding.DER) == der:
                return True
            if certificate.issuer == anchor.subject:
                try:
                    certificate.verify_directly_issued_by(anchor)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                return True
        raise CertificateUntrusted(
            f"the certificate {certificate.subject.rfc4514_string()} (issued by "
            f"{certificate.issuer.rfc4514_string()}) is not trusted by the stand-in ATO"
        )

    # --- ebMS ---

    def _ebms(self, endpoint: str, body: bytes, content_type: str, counts: list[str]) -> Answer:
        """Verify, then apply once and record, in one transaction that also adds ``counts`` (and empties it)."""
        try:
            request = wire.parse_request(
                body,
                content_type,
                trust=self._trust,
                token_issuer=self.pki.signing_certificate,
                audiences=self.limits.audiences,
                timestamp_window=self.limits.timestamp_window,
                max_inflated_bytes=self.limits.max_inflated_bytes,
            )
        except MustUnderstandFault as exc:
            # SOAP 1.2: a fault, not an ebMS error, and HTTP 500 as its HTTP binding maps env:MustUnderstand.
            return Answer(500, SOAP, ebms.must_understand_fault(exc.not_understood))
        except WireError as exc:
            return self._error(exc.ebms_code, str(exc), ref=_guess_message_id(body))
        # An answer that needs no storage (the ping) is built and signed before the write lock is taken, which the
        # other worker processes wait for; a repeated MessageId still gets the stored first answer instead.
        built = self._apply(endpoint, request, None) if self._needs_no_storage(endpoint, request) else None
        with self.storage.write() as db:
            self.storage.increment_many(counts, db)
            counts.clear()
            row = db.execute(
                "SELECT fingerprint, status, content_type, body FROM messages WHERE message_id = ?",
                (request.message_id,),
            ).fetchone()
            if row is not None:
                if row[0] == request.fingerprint:
                    return Answer(int(row[1]), str(row[2]), bytes(row[3]))  # the first answer, byte for byte
                replay = ReplayDetected(
                    f"replay refused: MessageId {request.message_id} was already used for different content"
                )
                return self._error(replay.ebms_code, str(replay), ref=request.message_id)
            result = built or self._apply(endpoint, request, db)
            if result.applied:
                now = time.time()
                db.execute(
                    "INSERT INTO messages (message_id, fingerprint, status, content_type, body, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        request.message_id,
                        request.fingerprint,
                        result.answer.status,
                        result.answer.content_type,
                        result.answer.body,
                        now,
                    ),
                )
                if request.kind == "user":  # a business action was applied (a pull applies none)
                    db.execute(
                        "INSERT INTO effects (message_id, action, applied_at) VALUES (?, ?, ?)",
                        (request.message_id, f"{request.service} {request.action}", now),
                    )
            return result.answer

    @staticmethod
    def _needs_no_storage(endpoint: str, request: wire.InboundRequest) -> bool:
        action = registry.by_uri(request.service or "", request.action or "")
        return endpoint == "single-sync" and request.kind == "user" and action == registry.PING

    def _apply(self, endpoint: str, request: wire.InboundRequest, db: Any) -> ApplyResult:
        """Apply a verified, new message inside the storage transaction that records it."""
        if endpoint == "async-pull":
            if request.kind != "pull":
                return ApplyResult(self._error("EBMS:0004", "async-pull takes PullRequest signals only"), applied=False)
            return self._pull(request, db)
        if request.kind != "user":
            return ApplyResult(
                self._error("EBMS:0004", f"{endpoint} takes UserMessages; this is a {request.kind} signal"),
                applied=False,
            )
        action = registry.by_uri(request.service or "", request.action or "")
        if action is None:
            detail = f"unknown service/action {request.service} {request.action}"
            return ApplyResult(self._error("EBMS:0004", detail, ref=request.message_id), applied=False)
        if not any(p.party_id == registry.ATO_ABN for p in request.to_parties):
            detail = f"the message is not addressed to the ATO ({registry.ATO_ABN})"
            return ApplyResult(self._error("EBMS:0009", detail, ref=request.message_id), applied=False)
        wanted = action.endpoint.lower()
        if endpoint != wanted and not (endpoint == "async-push" and action.pattern == "push-pull"):
            detail = f"{action.key} goes to the ATO's {action.endpoint} endpoint: send it to /ebms/{wanted}"
            return ApplyResult(self._error("EBMS:0004", detail, ref=request.message_id), applied=False)
        if action == registry.PING:
            return ApplyResult(self._ping(request), applied=True)
        if action.pattern == "push-pull":
            return ApplyResult(self._push(request, action, db), applied=True)
        registration = services.HANDLERS.get(action.key)
        if registration is None:
            detail = f"{action.key} is not implemented by the stand-in ATO"
            return ApplyResult(self._error("EBMS:0004", detail, ref=request.message_id), applied=False)
        return ApplyResult(self._business(request, action, registration, db), applied=True)

    def _business(
        self,
        request: wire.InboundRequest,
        action: registry.ServiceAction,
        registration: services.base.Registration,
        db: Any,
    ) -> Answer:
        """A single-sync business action, answered at once."""
        return self._response(request, self._business_payloads(request, action, registration, db))

    @staticmethod
    def _note(db: Any, request: wire.InboundRequest, action: registry.ServiceAction, items: list[Any]) -> None:
        """What arrived and what it answered, for the inspection pages."""
        inspect.record(
            db,
            message_id=request.message_id,
            action=action.key,
            agent_tan=request.agent_number,
            sender_abn=request.signer_abn,
            codes=[i.code for i in items],
        )

    def _today(self, db: Any) -> date:
        """The sandbox's business date: today, unless a test or demo has set one (/_control/today)."""
        fixed = self.storage.setting("today", None, db)
        return date.fromisoformat(fixed) if fixed else datetime.now(UTC).date()

    def _ping(self, request: wire.InboundRequest) -> Answer:
        try:
            document = xmlsafe.parse(request.payloads[registry.PING.request_document])
            if document.tag != f"{{{registry.PING_NAMESPACE}}}PingRequest":
                raise ValueError(f"the PingRequest part holds {document.tag}")
            text = document.findtext(f"{{{registry.PING_NAMESPACE}}}Text") or ""
        except (KeyError, ValueError, WireError) as exc:
            return self._error("EBMS:0004", f"no valid PingRequest part: {exc}", ref=request.message_id)
        applied_at = ebms.format_timestamp(datetime.now(UTC))
        payloads: list[tuple[str, bytes]] = []
        if request.from_abn != request.signer_abn:
            item = events.EventItem(
                code="CMN.ATO.AUTH.001",
                severity="Error",
                short_description="The agent or intermediary is not related to the credential's ABN.",
                detailed_description=(
                    f"The message is from ABN {request.from_abn}, but it is signed with the machine credential of "
                    f"ABN {request.signer_abn}."
                ),
            )
        else:
            response = (
                f'<PingResponse xmlns="{registry.PING_NAMESPACE}"><Text>{ebms.esc_text(text)}</Text>'
                f"<AppliedAt>{applied_at}</AppliedAt></PingResponse>"
            )
            payloads.append((registry.PING.response_document, response.encode("utf-8")))
            item = events.EventItem(code="GEN.OK", severity="Information", short_description="Ping applied.")
        payloads.append((registry.EVENT_DOCUMENT_NAME, events.build_event([item])))
        return self._response(request, payloads)

    def _push(self, request: wire.InboundRequest, action: registry.ServiceAction, db: Any) -> Answer:
        """Take a pushed message: a technical receipt now, the business response when the sender pulls. An action
        the stand-in ATO implements is applied here, in the transaction that records the MessageId (so once, however
        often it is resent), and its response is queued for the pull; any other gets a generic GEN.OK there."""
        sender = request.from_abn or request.signer_abn or ""
        registration = services.HANDLERS.get(action.key)
        refusal = _bulk_refusal(request, action)
        if refusal is not None:  # received, and answered with the refusal when the sender pulls: nothing applied
            payloads: list[tuple[str, bytes]] | None = self._event_payloads(db, request, action, [refusal])
        else:
            payloads = self._business_payloads(request, action, registration, db) if registration else None
        db.execute(
            "INSERT INTO queued_responses (mpc, ref_message_id, conversation_id, service, action, to_abn, "
            "document_names, payloads) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                registry.mpc_for(sender),
                request.message_id,
                request.conversation_id or "",
                action.service_uri,
                action.action,
                sender,
                json.dumps([part.document_name for part in request.parts]),
                None if payloads is None else json.dumps([(name, data.decode("utf-8")) for name, data in payloads]),
            ),
        )
        body, content_type = wire.build_signed_receipt(
            request=request,
            message_id=wire.new_message_id(MESSAGE_ID_HOST),
            key=self.pki.signing_key,
            certificate=self.pki.signing_certificate,
            sign=_signing.get(),
        )
        return Answer(200, content_type, body)

    def _business_payloads(
        self,
        request: wire.InboundRequest,
        action: registry.ServiceAction,
        registration: services.base.Registration,
        db: Any,
    ) -> list[tuple[str, bytes]]:
        """Apply a business action and give its answer's payloads (answered at once for single-sync, kept for the
        pull when pushed): who is acting, is the document valid, then the service's own rules. The service runs in
        a savepoint, so a failure leaves nothing changed; the answer is remembered either way."""
        agent = None
        refusal: list[events.EventItem] = []
        if registration.agent_required:
            tan = request.agent_number
            agent = register.agent_by_tan(db, tan) if tan else None
            if agent is None:
                refusal = [errors.item("CMN.ATO.AUTH.003", AgentNumber=tan or "(none)")]
            elif agent["abn"] != request.signer_abn:
                refusal = [errors.item("CMN.ATO.AUTH.001", CredentialABN=request.signer_abn or "")]
        if refusal:
            return self._event_payloads(db, request, action, refusal)
        cls = codec.document_class(action.key, action.request_document)
        data = request.payloads.get(action.request_document)
        if cls is None or data is None:
            missing = errors.item("CMN.ATO.GEN.XML03", Detail=f"the message has no {action.request_document} part")
            return self._event_payloads(db, request, action, [missing])
        try:
            document = codec.decode(cls, data)
        except codec.DocumentError as exc:
            detail = _withhold_numbers(str(exc))[:1000]
            return self._event_payloads(db, request, action, [errors.item("CMN.ATO.GEN.XML03", Detail=detail)])
        context = services.Context(db, request, agent, today=self._today(db))
        db.execute("SAVEPOINT business")
        try:
            response = registration.function(context, document)
        except services.Failure as failure:
            db.execute("ROLLBACK TO business")
            db.execute("RELEASE business")
            return self._event_payloads(db, request, action, failure.items)
        db.execute("RELEASE business")
        payloads = [(action.response_document, codec.encode(response))] if response is not None else []
        items = [errors.item("GEN.OK"), *context.items]
        return payloads + self._event_payloads(db, request, action, items, partial=context.partial)

    def _event_payloads(
        self,
        db: Any,
        request: wire.InboundRequest,
        action: registry.ServiceAction,
        items: list[events.EventItem],
        *,
        partial: bool = False,
    ) -> list[tuple[str, bytes]]:
        self._note(db, request, action, items)
        return [(registry.EVENT_DOCUMENT_NAME, events.build_event(items, partial=partial))]

    def _pull(self, request: wire.InboundRequest, db: Any) -> ApplyResult:
        """A PullRequest: selective, naming the pushed message whose response it wants (what the gateway sends), or
        for a whole channel (``mpc``). A selective pull gets that response every time it asks, byte for byte, for
        as long as the stand-in keeps it (until ``/_control/reset``): a reply lost or spoilt on the way back costs
        the sender nothing but another pull. A channel pull hands out each response once, oldest first."""
        own_channel = registry.mpc_for(request.signer_abn or "")
        if request.mpc and request.mpc != own_channel:
            detail = f"the credential of ABN {request.signer_abn} may not pull from {request.mpc}"
            return ApplyResult(self._error("EBMS:0101", detail, ref=request.message_id), applied=False)
        ref = request.ref_to_message_id
        if not ref and not request.mpc:
            detail = "a PullRequest names a channel (mpc) or the pushed message it asks for (RefToMessageId)"
            return ApplyResult(self._error("EBMS:0009", detail, ref=request.message_id), applied=False)
        # An empty answer is not remembered: repeating that pull's MessageId (a retry) pulls again.
        what = f"for {ref}" if ref else f"from {request.mpc}"
        empty = self._error("EBMS:0006", f"nothing to pull {what}", ref=request.message_id)
        if self.faults.take_empty_pull(db):
            return ApplyResult(empty, applied=False)
        columns = (
            "seq, ref_message_id, conversation_id, service, action, to_abn, document_names, payloads, "
            "response_content_type, response_body FROM queued_responses"
        )
        if ref:  # only from the sender's own channel: another party's MessageId finds nothing
            row = db.execute(
                f"SELECT {columns} WHERE ref_message_id = ? AND mpc = ? ORDER BY seq LIMIT 1",
                (ref, own_channel),
            ).fetchone()
        else:
            row = db.execute(
                f"SELECT {columns} WHERE mpc = ? AND delivered_by IS NULL ORDER BY seq LIMIT 1",
                (request.mpc,),
            ).fetchone()
        if row is None:
            return ApplyResult(empty, applied=False)
        seq, pushed, conversation_id, service, action, to_abn, names, stored, content_type, body = row
        if body is None:  # its first pull: build and sign the response once, and keep it
            if stored is not None:  # the response of the action applied at push time
                payloads = [(str(name), str(text).encode("utf-8")) for name, text in json.loads(stored)]
            else:
                payloads = [(registry.EVENT_DOCUMENT_NAME, events.build_event(_received(json.loads(names))))]
            body, content_type = wire.build_signed_response(
                message_id=wire.new_message_id(MESSAGE_ID_HOST),
                ref_to_message_id=pushed,
                conversation_id=conversation_id,
                service=service,
                action=action,
                to_abn=to_abn,
                payloads=payloads,
                key=self.pki.signing_key,
                certificate=self.pki.signing_certificate,
            )
            db.execute(
                "UPDATE queued_responses SET response_content_type = ?, response_body = ? WHERE seq = ?",
                (content_type, body, seq),
            )
        db.execute(
            "UPDATE queued_responses SET delivered_by = coalesce(delivered_by, ?) WHERE seq = ?",
            (request.message_id, seq),
        )
        return ApplyResult(Answer(200, str(content_type), bytes(body)), applied=True)

    def _response(self, request: wire.InboundRequest, payloads: list[tuple[str, bytes]]) -> Answer:
        body, content_type = wire.build_signed_response(
            message_id=wire.new_message_id(MESSAGE_ID_HOST),
            ref_to_message_id=request.message_id,
            conversation_id=request.conversation_id or "",
            service=request.service or "",
            action=request.action or "",
            to_abn=request.from_abn or request.signer_abn or "",
            payloads=payloads,
            key=self.pki.signing_key,
            certificate=self.pki.signing_certificate,
            sign=_signing.get(),
        )
        return Answer(200, content_type, body)

    def _error(self, code: str, detail: str, *, ref: str | None = None) -> Answer:
        """An ebMS Error signal on HTTP 500, as ebMS errors commonly come from the ATO (reported by another
        implementation); unsigned unless the stand-in signs everything (ATO_SANDBOX_SIGN_ALL)."""
        body, content_type = wire.build_signed_error(
            errors=[wire.standard_error(code, detail, ref_to_message_id=ref)],
            message_id=wire.new_message_id(MESSAGE_ID_HOST),
            ref_to_message_id=ref,
            key=self.pki.signing_key,
            certificate=self.pki.signing_certificate,
            sign=_signing.get(),
        )
        return Answer(500, content_type, body)

    # --- control interface (tests and demos) ---

    def _control(self, method: str, name: str, environ: dict[str, Any]) -> Answer:
        if name == "faults":
            if method == "GET":
                return self._json(200, self.faults.state())
            if method == "DELETE":
                return self._json(200, self.faults.clear())
            if method == "POST":
                try:
                    changes = json.loads(self._read_body(environ) or b"{}")
                    if not isinstance(changes, dict):
                        raise FaultSettingsError("the body must be a JSON object")
                    return self._json(200, self.faults.configure(changes))
                except (ValueError, TypeError) as exc:
                    return self._json(400, {"error": str(exc)})
        elif name == "stats" and method == "GET":
            db = self.storage.connection()
            effects = db.execute("SELECT message_id, count(*) FROM effects GROUP BY message_id")
            applied = {str(mid): int(n) for mid, n in effects}
            queued = db.execute("SELECT count(*) FROM queued_responses WHERE delivered_by IS NULL").fetchone()[0]
            return self._json(
                200,
                {
                    "applied": applied,
                    "received": self.storage.counter("received"),
                    "answered": self.storage.counter("answered"),
                    "queued": int(queued),
                },
            )
        elif name == "trust" and method == "POST":
            try:
                certificates = x509.load_pem_x509_certificates(self._read_body(environ))
            except ValueError as exc:
                return self._json(400, {"error": f"not PEM certificates: {exc}"})
            with self.storage.write() as db:
                for certificate in certificates:
                    db.execute(
                        "INSERT OR IGNORE INTO trusted (fingerprint, pem) VALUES (?, ?)",
                        (certificate.fingerprint(hashes.SHA256()).hex(), certificate.public_bytes(Encoding.PEM)),
                    )
            return self._json(200, {"trusted": [c.subject.rfc4514_string() for c in certificates]})
        elif name == "register" and method == "POST":
            return self._control_register(environ)
        elif name == "register" and method == "GET":
            return self._json(200, register.summary(self.storage.connection()))
        elif name == "query" and method == "POST":
            return self._control_query(environ)
        elif name == "today" and method == "POST":
            value = json.loads(self._read_body(environ) or b"{}").get("today")
            with self.storage.write() as db:
                self.storage.set_setting("today", value, db)
            return self._json(200, {"today": value})
        elif name == "fund" and method == "POST":
            return self._control_fund(environ)
        elif name == "end-link" and method == "POST":
            return self._control_end_link(environ)
        elif name == "forget" and method == "POST":
            return self._control_forget(environ)
        elif name == "reset" and method == "POST":
            with self.storage.write() as db:
                db.execute("DELETE FROM messages")
                db.execute("DELETE FROM effects")
                db.execute("DELETE FROM queued_responses")
                db.execute("DELETE FROM counters WHERE name IN ('received', 'answered')")
            return self._json(200, {"reset": True})
        return self._json(404, {"error": f"no control call {method} /_control/{name}"})

    def _control_forget(self, environ: dict[str, Any]) -> Answer:
        """Forget that a MessageId was answered, keeping the record of its effects: {"message_id"}. The next message
        with that MessageId is then applied again, as by an ATO whose de-duplication failed. Only for the test that
        proves an "applied exactly once" check can fail; nothing else calls it."""
        try:
            message_id = str(json.loads(self._read_body(environ) or b"{}")["message_id"])
        except (ValueError, TypeError, KeyError) as exc:
            return self._json(400, {"error": f"bad forget request: {exc}"})
        with self.storage.write() as db:
            forgotten = db.execute("DELETE FROM messages WHERE message_id = ?", (message_id,)).rowcount
        return self._json(200, {"forgotten": forgotten})

    def _control_register(self, environ: dict[str, Any]) -> Answer:
        """Regenerate the synthetic register: {"seed", "taxpayers", "today", "agents": [{"tan", "abn", "name",
        "kind", "clients", "letters_per_client"}]}, every key optional. Answers the row counts and the time taken;
        a bad body is refused before anything is written."""
        try:
            body = json.loads(self._read_body(environ) or b"{}")
            with self.storage.write() as db:
                result = register.generate_from_json(db, body, today=self._today(db))
        except (ValueError, TypeError) as exc:
            return self._json(400, {"error": f"bad register request: {exc}"})
        return self._json(200, result)

    def _control_fund(self, environ: dict[str, Any]) -> Answer:
        """Make an ABN a super fund of the register, so a practice whose credential is that ABN can report member
        accounts (MAAS): {"abn", "name", "usi" (default: the ABN and 001), "administrator_abn" (optional: a
        practice that administers the fund and reports for it with its own credential; absent, none)}. The
        generator's funds have ABNs of their own; this adds one with a known ABN. Answers the fund's row."""
        try:
            spec = json.loads(self._read_body(environ) or b"{}")
            abn = str(spec["abn"])
            usi = str(spec.get("usi") or f"{abn}001")
            name = str(spec.get("name") or f"Fund {abn}")
            administrator = str(spec["administrator_abn"]) if spec.get("administrator_abn") else None
        except (ValueError, TypeError, KeyError) as exc:
            return self._json(400, {"error": f"bad fund request: {exc}"})
        try:
            with self.storage.write() as db:
                db.execute(
                    "INSERT INTO reg_funds (abn, usi, name, taxpayer_id) "
                    "VALUES (?, ?, ?, (SELECT id FROM reg_taxpayers WHERE abn = ?)) "
                    "ON CONFLICT (abn) DO UPDATE SET usi = excluded.usi, name = excluded.name",
                    (abn, usi, name, abn),
                )
                row = db.execute("SELECT id, taxpayer_id FROM reg_funds WHERE abn = ?", (abn,)).fetchone()
                db.execute("DELETE FROM reg_fund_administrators WHERE fund_id = ?", (row[0],))
                if administrator is not None:
                    db.execute(
                        "INSERT INTO reg_fund_administrators (fund_id, abn) VALUES (?, ?)", (row[0], administrator)
                    )
        except sqlite3.IntegrityError as exc:  # the USI is another fund's
            return self._json(400, {"error": f"bad fund request: {exc}"})
        fund_id, taxpayer_id = row
        return self._json(
            200,
            {
                "id": fund_id,
                "abn": abn,
                "usi": usi,
                "name": name,
                "taxpayer_id": taxpayer_id,
                "administrator_abn": administrator,
            },
        )

    def _control_end_link(self, environ: dict[str, Any]) -> Answer:
        """End an agent's current links to a taxpayer as if the client had done it elsewhere (behind the practice's
        back), for reconciliation tests and demos: {"tan", "tfn", and optionally "level", "account" (ITX, AS, FBT),
        "branch", "role", "reason" (CLIENT, REMOVED, SUPERSEDED; default CLIENT), "end_date" (default today)}.
        Without "level" every current link of the agent to the taxpayer ends. Answers how many ended."""
        try:
            spec = json.loads(self._read_body(environ) or b"{}")
            tan, tfn = str(spec["tan"]), str(spec["tfn"])
            reason = str(spec.get("reason") or "CLIENT")
            if reason not in ("CLIENT", "REMOVED", "SUPERSEDED"):
                raise ValueError(f"unknown reason {reason}")
            sql = (
                "UPDATE reg_links SET end_date = ?, ended_reason = ? WHERE end_date IS NULL "
                "AND agent_id = (SELECT id FROM reg_agents WHERE tan = ?) "
                "AND taxpayer_id = (SELECT id FROM reg_taxpayers WHERE tfn = ?)"
            )
            params: list[Any] = [reason, tan, tfn]
            if spec.get("level"):
                sql += " AND level = ? AND role IS ?"
                params += [str(spec["level"]), spec.get("role") or None]
                if spec.get("account"):
                    sql += " AND account_id IN (SELECT id FROM reg_accounts WHERE kind = ? AND branch IS ?)"
                    params += [str(spec["account"]), spec.get("branch") or None]
                else:
                    sql += " AND account_id IS NULL"
            with self.storage.write() as db:
                end = str(spec.get("end_date") or self._today(db).isoformat())
                ended = db.execute(sql, [end, *params]).rowcount
        except (ValueError, TypeError, KeyError, sqlite3.Error) as exc:
            return self._json(400, {"error": f"bad end-link request: {exc}"})
        return self._json(200, {"ended": ended, "end_date": end})

    def _control_query(self, environ: dict[str, Any]) -> Answer:
        """A read-only look into the register for tests and demos: {"sql": "SELECT ...", "params": [...]}. The
        connection is opened read-only, so nothing sent here can change the register, and an authorizer allows
        reading only: a read-only connection still runs VACUUM INTO and ATTACH, which write files anywhere."""
        try:
            spec = json.loads(self._read_body(environ) or b"{}")
            uri = f"file:{self.storage.path}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=30)) as ro:
                ro.set_authorizer(_read_only)
                ro.row_factory = sqlite3.Row
                rows = ro.execute(str(spec["sql"]), list(spec.get("params", []))).fetchall()
        except (ValueError, TypeError, KeyError, sqlite3.Error) as exc:
            return self._json(400, {"error": f"bad query: {exc}"})
        return self._json(200, {"rows": [dict(r) for r in rows]})


_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


def _read_only(action: int, *_args: object) -> int:
    """The ``/_control/query`` authorizer: a SELECT (with functions and recursive CTEs) and nothing else."""
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


# A quoted value with five or more digits in a row (spaces between them aside): a TFN, a bank account number or a
# BSB, as the XSD's error message quotes what it refused. Dates (four digits at most) and names keep their values.
_QUOTED_NUMBER = re.compile(r"'[^']*[0-9](?: ?[0-9]){4,}[^']*'")


def _withhold_numbers(detail: str) -> str:
    """An XSD error's words without the value it quotes when that could be a TFN or an account number: error
    texts are shown and logged, and the house rule keeps those numbers out of them."""
    return _QUOTED_NUMBER.sub("'(withheld)'", detail)


def _bulk_refusal(request: wire.InboundRequest, action: registry.ServiceAction) -> events.EventItem | None:
    """A bulk or batch message carries one attachment, its records separated by record delimiters, and says its
    DocumentType (reported by another implementation): one part per document draws
    CMN.ATO.GEN.UNEXPECTEDNUMPAYLOADS, and a part without DocumentType CMN.ATO.EBMS.001."""
    if not action.bulk:
        return None
    if len(request.parts) != 1:
        return errors.item("CMN.ATO.GEN.UNEXPECTEDNUMPAYLOADS", Count=len(request.parts))
    if not request.parts[0].properties.get("DocumentType"):
        return errors.item("CMN.ATO.EBMS.001", Property="DocumentType")
    return None


def _received(names: list[str]) -> list[events.EventItem]:
    """The generic answer to a pushed action the stand-in ATO does not implement: each document received."""
    return [
        events.EventItem(
            code="GEN.OK",
            severity="Information",
            short_description=f"{name} received and processed.",
            parameters=(("DocumentName", name),),
        )
        for name in names
    ] or [events.EventItem(code="GEN.OK", severity="Information", short_description="Received.")]


def _spoil_signature(body: bytes) -> bytes:
    """The same answer with a signature value that cannot verify (random bytes of the right length)."""
    junk = base64.b64encode(secrets.token_bytes(256))
    return _SIGNATURE_VALUE.sub(lambda m: m.group(1) + junk + m.group(3), body, count=1)


def _guess_message_id(body: bytes) -> str | None:
    """The MessageId of a message that failed verification, only to say which message an error is about."""
    match = _MESSAGE_ID.search(body[:65536])
    if match is None:
        return None
    try:
        return match.group(1).decode("utf-8").strip() or None
    except UnicodeDecodeError:
        return None
