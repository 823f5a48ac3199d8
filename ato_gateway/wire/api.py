"""The high-level functions: whole signed messages in, whole verified messages out.

The client (the gateway's outbox) uses ``build_signed_request``, ``build_signed_pull`` and ``parse_response``;
the stand-in ATO uses ``parse_request`` and the ``build_signed_response`` / ``_receipt`` / ``_error`` trio.
Signatures and types are documented in the package docstring (``ato_gateway/wire/__init__.py``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import itertools
import json
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from . import ebms, events, mime, ns, registry, sts, wsse, xmlsafe
from .ebms import EbmsError, PartInfo, Party
from .errors import (
    DecompressionFailure,
    EbmsFault,
    InflationLimitExceeded,
    InvalidHeader,
    MalformedMessage,
    SignatureInvalid,
    SoapFault,
    TokenRejected,
)
from .events import EventItem
from .keystore import certificate_abn
from .registry import ServiceAction
from .sts import SamlAssertion
from .wsse import ReferenceSpec, SignedReference, Trust

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
_EXC = (ns.EXC_C14N,)
_ENVELOPE_OPEN = ebms.ENVELOPE_OPEN.encode("utf-8")
_MAX_PAYLOAD_BYTES = 50 * 1024 * 1024
# Defaults of the limits a receiver passes in (the gateway and the stand-in ATO take theirs from settings): what all
# the parts of one message may inflate to together, and how far its eb:Timestamp may be from the receiver's clock.
DEFAULT_MAX_INFLATED_BYTES = 64 * 1024 * 1024
DEFAULT_TIMESTAMP_WINDOW = timedelta(minutes=5)
# The header blocks this library processes; any other marked mustUnderstand is a SOAP 1.2 MustUnderstand fault.
_UNDERSTOOD = frozenset({ns.q(ns.EB, "Messaging"), ns.q(ns.WSSE, "Security")})

Payloads = list[tuple[str, bytes]]


@dataclass
class InboundMessage:
    """A verified reply from the ATO (or the stand-in)."""

    kind: Literal["user", "receipt", "error"]
    message_id: str
    ref_to_message_id: str | None
    timestamp: datetime | None
    service: str | None
    action: str | None
    conversation_id: str | None
    errors: list[EbmsError]
    payloads: dict[str, bytes]  # by DocumentName, gunzipped
    event_items: list[EventItem]
    maximum_severity: str | None  # of the event part, when there is one
    receipt_references: list[SignedReference]
    signer_certificate: x509.Certificate | None  # None for an unsigned reply
    raw: bytes

    @property
    def signed(self) -> bool:
        return self.signer_certificate is not None

    def raise_for_errors(self) -> None:
        """EbmsFault when the reply is an ebMS Error; ``permanent`` unless every code is transient."""
        if self.kind == "error":
            codes = [e.code for e in self.errors]
            details = "; ".join(f"{e.code} {e.short_description}: {e.detail}" for e in self.errors)
            raise EbmsFault(details or "ebMS error", codes=codes, permanent=any(e.permanent for e in self.errors))


@dataclass
class InboundPart:
    document_name: str
    content_id: str
    content: bytes  # gunzipped
    transmitted: bytes  # as signed and sent
    properties: dict[str, str]


@dataclass
class InboundRequest:
    """A verified message as the receiving side (the stand-in ATO) sees it."""

    kind: Literal["user", "pull", "receipt", "error"]
    message_id: str
    ref_to_message_id: str | None
    timestamp: datetime | None
    service: str | None
    action: str | None
    conversation_id: str | None
    from_parties: list[Party]
    from_role: str | None
    to_parties: list[Party]
    properties: dict[str, str]
    parts: list[InboundPart]
    mpc: str | None
    signer_certificate: x509.Certificate
    signer_abn: str | None
    references: list[SignedReference]
    saml_assertion: bytes | None
    saml: SamlAssertion | None
    fingerprint: str  # what a repeated MessageId must match to count as the same message (see _fingerprint)
    errors: list[EbmsError] = field(default_factory=list)
    raw: bytes = b""

    @property
    def payloads(self) -> dict[str, bytes]:
        return {part.document_name: part.content for part in self.parts}

    @property
    def from_abn(self) -> str | None:
        return next((p.party_id for p in self.from_parties if p.type == registry.PARTY_TYPE_ABN), None)

    @property
    def agent_number(self) -> str | None:
        return next((p.party_id for p in self.from_parties if p.type == registry.PARTY_TYPE_TAN), None)


# --- caches: per certificate and per token, not per message ---


@functools.lru_cache(maxsize=256)
def _certificate_b64(certificate: x509.Certificate) -> str:
    return wsse.certificate_b64(certificate)


@dataclass(frozen=True)
class _Token:
    assertion_id: str
    digest: str
    octets: bytes  # the assertion without XML declaration, UTF-8


@functools.lru_cache(maxsize=256)  # one live token per machine credential in use
def _token(assertion: bytes) -> _Token:
    element = xmlsafe.parse(assertion)
    if element.tag != ns.q(ns.SAML2, "Assertion") or not element.get("ID"):
        raise TokenRejected("the SAML token is not a SAML 2.0 assertion with an ID")
    octets = assertion.removeprefix(b"\xef\xbb\xbf").lstrip()
    if octets.startswith(b"<?xml"):
        declaration = octets[: octets.index(b"?>") + 2]
        if b"encoding" in declaration and not any(e in declaration.lower() for e in (b"utf-8", b"utf8")):
            octets = etree.tostring(element)  # not UTF-8: the envelope is, so the token must be re-encoded
        else:
            octets = octets[len(declaration) :].lstrip()
    # Exclusive C14N of the assertion does not depend on where it sits, so its digest is the same in every message.
    return _Token(element.get("ID", ""), wsse.digest_b64(wsse.exc_c14n(element)), octets)


# --- building (both sides) ---


# The ids need only be unique within one message; a process-wide counter is cheaper than randomness.
_id_counter = itertools.count(1)


def _ids() -> tuple[str, str, str]:
    n = next(_id_counter)
    return f"id-messaging-{n}", f"id-body-{n}", f"id-x509-{n}"


def _finish(
    messaging_xml: str,
    *,
    ids: tuple[str, str, str],
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    saml_assertion: bytes | None,
    attachments: list[mime.MimePart],
    sign: bool = True,
) -> tuple[bytes, str]:
    """Validate, sign, serialise and package a header from one of the ``ebms.*_xml`` builders.

    The header and Body are already canonical text (see ebms.py), so each digest is over the bytes as sent; the
    SAML assertion goes in as the token service issued it, with its digest computed once per token. With
    ``sign=False`` there is no wsse:Security header at all: the ATO answers most messages unsigned (SBR ebMS3 Web
    Services Implementation Guide v1.7: only one-way pull responses to bulk and batch pull requests are signed)."""
    messaging_id, body_id, bst_id = ids
    messaging = messaging_xml.encode("utf-8")
    ebms.validate_messaging(messaging)
    body = ebms.body_xml(body_id).encode("utf-8")
    if not sign:
        unsigned = b"".join((_ENVELOPE_OPEN, messaging, b"</S12:Header>", body, b"</S12:Envelope>"))
        if not attachments:
            return unsigned, SOAP_CONTENT_TYPE
        return mime.build_multipart(unsigned, attachments, root_content_id=mime.new_content_id("soap"))
    references = [ReferenceSpec(f"#{messaging_id}", _EXC, wsse.digest_b64(messaging))]
    token = _token(saml_assertion) if saml_assertion else None
    if token is not None:
        references.append(ReferenceSpec(f"#{token.assertion_id}", _EXC, token.digest))
    references.append(ReferenceSpec(f"#{body_id}", _EXC, wsse.digest_b64(body)))
    references += [wsse.attachment_reference(a.body, mime.cid_url(a.content_id)) for a in attachments]
    signature = wsse.signature_xml(
        key=key, references=references, key_info_xml=wsse.token_reference_key_info_xml(bst_id)
    )
    xml = b"".join(
        (
            _ENVELOPE_OPEN,
            messaging,
            b'<wsse:Security S12:mustUnderstand="true">',
            wsse.bst_xml(_certificate_b64(certificate), bst_id).encode("ascii"),
            token.octets if token is not None else b"",
            signature.encode("utf-8"),
            b"</wsse:Security></S12:Header>",
            body,
            b"</S12:Envelope>",
        )
    )
    if not attachments:
        return xml, SOAP_CONTENT_TYPE
    return mime.build_multipart(xml, attachments, root_content_id=mime.new_content_id("soap"))


def _user_message(
    *,
    message_id: str,
    conversation_id: str,
    service: str,
    action: str,
    from_parties: list[Party],
    from_role: str,
    to_parties: list[Party],
    to_role: str,
    payloads: Payloads,
    document_type: str,
    compress: bool,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    saml_assertion: bytes | None,
    properties: dict[str, str],
    ref_to_message_id: str | None,
    now: datetime | None,
    sign: bool = True,
) -> tuple[bytes, str]:
    ids = _ids()
    parts: list[PartInfo] = []
    attachments: list[mime.MimePart] = []
    for index, (document_name, content) in enumerate(payloads, start=1):
        if not document_name:
            raise ValueError("every payload needs a document name")
        content_id = mime.new_content_id(document_name)
        # mtime=0: a retry of the same message produces the same compressed octets.
        octets = gzip.compress(content, compresslevel=6, mtime=0) if compress else content
        part_properties = {
            "DocumentName": document_name,
            "PartID": str(index),
            "DocumentType": document_type,
            "MimeType": registry.PAYLOAD_MIME_TYPE,
            "filename": f"{document_name}.xml",
        }
        if not document_type:  # only to show a receiver's refusal (CMN.ATO.EBMS.001); the registry names one
            del part_properties["DocumentType"]
        if compress:
            part_properties["CompressionType"] = registry.GZIP_MIME_TYPE
        parts.append(PartInfo(mime.cid_url(content_id), part_properties))
        media = registry.GZIP_MIME_TYPE if compress else registry.PAYLOAD_MIME_TYPE
        attachments.append(mime.MimePart(content_id, media, octets))
    messaging = ebms.user_message_xml(
        messaging_id=ids[0],
        message_id=message_id,
        timestamp=now or datetime.now(UTC),
        from_parties=from_parties,
        from_role=from_role,
        to_parties=to_parties,
        to_role=to_role,
        service=service,
        action=action,
        conversation_id=conversation_id,
        properties=properties,
        parts=parts,
        ref_to_message_id=ref_to_message_id,
    )
    return _finish(
        messaging,
        ids=ids,
        key=key,
        certificate=certificate,
        saml_assertion=saml_assertion,
        attachments=attachments,
        sign=sign,
    )


def build_signed_request(
    *,
    service_action: ServiceAction | str,
    message_id: str,
    conversation_id: str,
    from_abn: str,
    from_party_type: str = registry.PARTY_TYPE_ABN,
    agent_number: str | None = None,
    payloads: Payloads,
    compress: bool = False,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    saml_assertion: bytes | None,
    properties: dict[str, str],
    document_type: str | None = None,
    now: datetime | None = None,
) -> tuple[bytes, str]:
    """A signed ebMS3 UserMessage to the ATO. Returns (HTTP body, Content-Type header). ``from_abn`` is the
    sender's identifier, an ABN or (``from_party_type=registry.PARTY_TYPE_WPN``) a withholding payer number;
    ``document_type`` replaces the registry's DocumentType (an empty one leaves the part property out)."""
    action = registry.resolve(service_action)
    missing = [name for name in registry.MESSAGE_PROPERTY_NAMES if not properties.get(name)]
    if missing:
        raise ValueError(f"message properties missing: {', '.join(missing)} (they come from settings)")
    if from_party_type not in registry.SENDER_PARTY_TYPES:
        raise ValueError(f"unknown party type {from_party_type!r}; known: {', '.join(registry.SENDER_PARTY_TYPES)}")
    from_parties = [Party(from_abn, from_party_type)]
    if agent_number:
        from_parties.append(Party(agent_number, registry.PARTY_TYPE_TAN))
    return _user_message(
        message_id=message_id,
        conversation_id=conversation_id,
        service=action.service_uri,
        action=action.action,
        from_parties=from_parties,
        # One From has one Role: an agent acting for a client speaks as a Registered Agent.
        from_role=registry.ROLE_REGISTERED_AGENT if agent_number else registry.ROLE_BUSINESS,
        to_parties=[Party(registry.ATO_ABN, registry.PARTY_TYPE_ABN)],
        to_role=registry.ROLE_AGENCY,
        payloads=payloads,
        document_type=action.document_type if document_type is None else document_type,
        compress=compress,
        key=key,
        certificate=certificate,
        saml_assertion=saml_assertion,
        properties=properties,
        ref_to_message_id=None,
        now=now,
    )


def build_signed_pull(
    *,
    message_id: str,
    mpc: str | None = None,
    ref_to_message_id: str | None = None,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    saml_assertion: bytes | None,
    properties: dict[str, str] | None = None,
    now: datetime | None = None,
) -> tuple[bytes, str]:
    """A signed PullRequest signal: selective, for the response to the pushed message ``ref_to_message_id`` (what
    the gateway sends), or for a channel ``mpc`` (``registry.mpc_for(abn)``), or both. An ebMS3 SignalMessage has
    no MessageProperties, so ``properties`` is accepted for symmetry with build_signed_request and not sent."""
    del properties
    if not mpc and not ref_to_message_id:
        raise ValueError("a PullRequest names a channel (mpc), a pushed message (ref_to_message_id), or both")
    ids = _ids()
    messaging = ebms.pull_request_xml(
        messaging_id=ids[0],
        message_id=message_id,
        timestamp=now or datetime.now(UTC),
        mpc=mpc,
        ref_to_message_id=ref_to_message_id,
    )
    return _finish(messaging, ids=ids, key=key, certificate=certificate, saml_assertion=saml_assertion, attachments=[])


def build_signed_response(
    *,
    message_id: str,
    ref_to_message_id: str,
    conversation_id: str,
    service: str,
    action: str,
    to_abn: str,
    payloads: Payloads,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    from_abn: str = registry.ATO_ABN,
    properties: dict[str, str] | None = None,
    compress: bool = False,
    now: datetime | None = None,
    sign: bool = True,
) -> tuple[bytes, str]:
    """A UserMessage from the ATO answering ``ref_to_message_id`` (a single-sync answer or a pulled response to
    a pushed message), signed unless ``sign=False``."""
    return _user_message(
        message_id=message_id,
        conversation_id=conversation_id,
        service=service,
        action=action,
        from_parties=[Party(from_abn, registry.PARTY_TYPE_ABN)],
        from_role=registry.ROLE_AGENCY,
        to_parties=[Party(to_abn, registry.PARTY_TYPE_ABN)],
        to_role=registry.ROLE_BUSINESS,
        payloads=payloads,
        document_type="BASE",
        compress=compress,
        key=key,
        certificate=certificate,
        saml_assertion=None,
        properties=properties or {},
        ref_to_message_id=ref_to_message_id,
        now=now,
        sign=sign,
    )


def build_signed_receipt(
    *,
    request: InboundRequest,
    message_id: str,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    now: datetime | None = None,
    sign: bool = True,
) -> tuple[bytes, str]:
    """A Receipt for ``request``, repeating the digests it was signed with (non-repudiation); signed unless
    ``sign=False``."""
    ids = _ids()
    messaging = ebms.receipt_xml(
        messaging_id=ids[0],
        message_id=message_id,
        timestamp=now or datetime.now(UTC),
        ref_to_message_id=request.message_id,
        references=request.references,
    )
    return _finish(messaging, ids=ids, key=key, certificate=certificate, saml_assertion=None, attachments=[], sign=sign)


def build_signed_error(
    *,
    errors: list[EbmsError],
    message_id: str,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    ref_to_message_id: str | None = None,
    now: datetime | None = None,
    sign: bool = True,
) -> tuple[bytes, str]:
    """An ebMS Error signal (``ebms.standard_error`` makes the EbmsError values), signed unless ``sign=False``."""
    ids = _ids()
    messaging = ebms.errors_xml(
        messaging_id=ids[0],
        message_id=message_id,
        timestamp=now or datetime.now(UTC),
        ref_to_message_id=ref_to_message_id,
        errors=errors,
    )
    return _finish(messaging, ids=ids, key=key, certificate=certificate, saml_assertion=None, attachments=[], sign=sign)


# --- reading (both sides) ---


@dataclass
class _Verified:
    envelope: etree._Element
    header: ebms.MessagingHeader
    attachments: dict[str, mime.MimePart]
    signature: wsse.VerifiedSignature | None  # None: the message carried no wsse:Security (and none was required)
    assertion: etree._Element | None


def _read(
    body: bytes, content_type: str, *, trust: Trust, now: datetime | None, require_signature: bool = True
) -> _Verified:
    root, attachments = mime.parse_package(body, content_type)
    envelope = xmlsafe.parse(root.body)
    if envelope.tag != ns.q(ns.SOAP12, "Envelope"):
        raise MalformedMessage(f"the root part is not a SOAP 1.2 envelope but {envelope.tag}")
    ebms.check_must_understand(envelope.find(ns.q(ns.SOAP12, "Header")), _UNDERSTOOD)
    soap_body = envelope.find(ns.q(ns.SOAP12, "Body"))
    if soap_body is None:
        raise MalformedMessage("the SOAP envelope has no Body")
    header_element = envelope.find(ns.q(ns.SOAP12, "Header"))
    if header_element is None or header_element.find(ns.q(ns.EB, "Messaging")) is None:
        fault = soap_body.find(ns.q(ns.SOAP12, "Fault"))
        if fault is not None:
            value = (fault.findtext(f"{ns.q(ns.SOAP12, 'Code')}/{ns.q(ns.SOAP12, 'Value')}") or "").strip()
            raise SoapFault(
                f"SOAP Fault instead of an ebMS message: {sts.fault_text(fault)}", code=value.rpartition(":")[2]
            )
    messaging = ebms.find_messaging(envelope)
    header = ebms.parse_messaging(messaging)
    if not require_signature and (header_element is None or header_element.find(ns.q(ns.WSSE, "Security")) is None):
        # Unsigned, as the ATO sends most answers. A header that holds a wsse:Security is verified below in full,
        # so that a signature, wherever there is one, is never taken on trust.
        return _Verified(envelope, header, attachments, None, None)
    security = wsse.find_security(header_element)
    assertions = security.findall(ns.q(ns.SAML2, "Assertion"))
    if len(assertions) > 1:
        raise SignatureInvalid("more than one SAML assertion in wsse:Security")
    assertion = assertions[0] if assertions else None
    must_cover = [messaging, soap_body] + ([assertion] if assertion is not None else [])
    signature = wsse.verify_message(
        envelope,
        attachments={cid: part.body for cid, part in attachments.items()},
        trust=trust,
        must_cover=must_cover,
        now=now,
    )
    return _Verified(envelope, header, attachments, signature, assertion)


def _parts(
    user: ebms.UserMessageHeader, attachments: dict[str, mime.MimePart], *, max_inflated_bytes: int
) -> list[InboundPart]:
    """The payloads, gunzipped. Together they may hold ``max_inflated_bytes``: a part never inflates past what is
    left of that (zlib stops there), so what a gzip bomb costs in memory follows the limit, not its parts."""
    found: list[InboundPart] = []
    used: set[str] = set()
    budget = max_inflated_bytes
    for part in user.parts:
        content_id = part.content_id
        if content_id is None:
            raise InvalidHeader(f"PartInfo href {part.href!r} is not a cid: reference to an attachment")
        if content_id not in attachments:
            raise MalformedMessage(f"PartInfo refers to <{content_id}>, which the MIME package does not hold")
        used.add(content_id)
        transmitted = attachments[content_id].body
        content = _gunzip(transmitted, content_id, budget, max_inflated_bytes) if part.compressed else transmitted
        budget -= len(content)
        if budget < 0:
            raise InflationLimitExceeded(
                f"the message's parts hold more than {max_inflated_bytes} bytes together: refused"
            )
        found.append(InboundPart(part.document_name, content_id, content, transmitted, part.properties))
    extra = set(attachments) - used
    if extra:
        raise MalformedMessage(f"attachment(s) not listed in PayloadInfo: {', '.join(sorted(extra))}")
    return found


def _gunzip(data: bytes, content_id: str, budget: int, total: int) -> bytes:
    limit = min(_MAX_PAYLOAD_BYTES, max(budget, 0))
    try:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        content = decompressor.decompress(data, limit + 1)  # one byte more than allowed says it goes on
        if len(content) > limit:
            if limit < _MAX_PAYLOAD_BYTES:
                raise InflationLimitExceeded(
                    f"part <{content_id}> inflates beyond the {limit} bytes left of the {total} bytes all the "
                    "message's parts may hold together: refused"
                )
            raise DecompressionFailure(f"part <{content_id}> inflates beyond {_MAX_PAYLOAD_BYTES} bytes")
        if not decompressor.eof:
            raise DecompressionFailure(f"part <{content_id}> is a truncated gzip stream")
        return content
    except zlib.error as exc:
        raise DecompressionFailure(f"part <{content_id}> is marked gzip but does not decompress: {exc}") from exc


def parse_response(
    body: bytes,
    content_type: str,
    *,
    ato_certificate: x509.Certificate,
    now: datetime | None = None,
    require_signature: bool = True,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
) -> InboundMessage:
    """Verify (against the configured ATO certificate) and read a reply: a UserMessage, Receipt or Error. With
    ``require_signature=False`` an unsigned reply is read (``signed`` is False); a signed one is verified all the
    same, and a signature that fails is SignatureInvalid either way."""
    verified = _read(body, content_type, trust=ato_certificate, now=now, require_signature=require_signature)
    signer = verified.signature.certificate if verified.signature is not None else None
    header = verified.header
    if header.user_messages:
        user = header.user_messages[0]
        parts = _parts(user, verified.attachments, max_inflated_bytes=max_inflated_bytes)
        payloads = {p.document_name: p.content for p in parts}
        items: list[EventItem] = []
        severity: str | None = None
        for part in parts:
            if events.is_event(part.content):
                event = events.parse_event(part.content)
                items.extend(event.items)
                severity = event.maximum_severity
        return InboundMessage(
            kind="user",
            message_id=user.message_id,
            ref_to_message_id=user.ref_to_message_id,
            timestamp=user.timestamp,
            service=user.service,
            action=user.action,
            conversation_id=user.conversation_id,
            errors=[],
            payloads=payloads,
            event_items=items,
            maximum_severity=severity,
            receipt_references=[],
            signer_certificate=signer,
            raw=body,
        )
    signal = header.signals[0]
    if signal.errors:
        kind: Literal["user", "receipt", "error"] = "error"
    elif signal.receipt is not None:
        kind = "receipt"
    else:
        raise InvalidHeader("the reply is a signal that is neither a Receipt nor an Error")
    return InboundMessage(
        kind=kind,
        message_id=signal.message_id,
        ref_to_message_id=signal.ref_to_message_id,
        timestamp=signal.timestamp,
        service=None,
        action=None,
        conversation_id=None,
        errors=signal.errors,
        payloads={},
        event_items=[],
        maximum_severity=None,
        receipt_references=signal.receipt_references,
        signer_certificate=signer,
        raw=body,
    )


def parse_request(
    body: bytes,
    content_type: str,
    *,
    trust: Trust,
    token_issuer: x509.Certificate | None = None,
    now: datetime | None = None,
    audiences: Collection[str] | None = None,
    timestamp_window: timedelta | None = DEFAULT_TIMESTAMP_WINDOW,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
) -> InboundRequest:
    """Verify and read a message sent to the ATO. With ``token_issuer`` the SAML token is required and checked:
    signed by that certificate, within its validity, issued to the ABN and the certificate that signed the
    message, and (with ``audiences``) for one of those services (TokenRejected otherwise). The eb:Timestamp must
    be within ``timestamp_window`` of ``now`` (StaleMessage; None: not checked), and the parts may inflate to
    ``max_inflated_bytes`` together (InflationLimitExceeded)."""
    verified = _read(body, content_type, trust=trust, now=now)
    header = verified.header
    if verified.signature is None:  # not reached: _read requires the signature unless told otherwise
        raise SignatureInvalid("a message to the ATO must be signed")
    certificate = verified.signature.certificate
    signer_abn = certificate_abn(certificate)
    saml: SamlAssertion | None = None
    if token_issuer is not None:
        if verified.assertion is None:
            raise TokenRejected("the message carries no SAML token")
        saml = sts.verify_assertion(verified.assertion, issuer_certificate=token_issuer, now=now)
        if not signer_abn or saml.abn != signer_abn:
            raise TokenRejected(f"the SAML token is for ABN {saml.abn}, the signing credential is {signer_abn}")
        # Required, not only compared when present: a token without it would bind to no certificate at all.
        serial = saml.attributes.get(registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL)
        if serial != str(certificate.serial_number):
            raise TokenRejected("the SAML token was issued to another certificate, or names none")
        if audiences is not None and saml.audience not in audiences:
            raise TokenRejected(f"the SAML token is for {saml.audience or 'no audience'}, not for these services")
    if timestamp_window is not None:
        message_time = header.user_messages[0].timestamp if header.user_messages else header.signals[0].timestamp
        ebms.check_fresh(message_time, now=now or datetime.now(UTC), window=timestamp_window)
    common = {
        "signer_certificate": certificate,
        "signer_abn": signer_abn,
        "references": verified.signature.references,
        "saml_assertion": etree.tostring(verified.assertion) if verified.assertion is not None else None,
        "saml": saml,
        "raw": body,
    }
    if header.user_messages:
        if len(header.user_messages) > 1 or header.signals:
            raise InvalidHeader("one eb:Messaging may carry one UserMessage here")
        user = header.user_messages[0]
        parts = _parts(user, verified.attachments, max_inflated_bytes=max_inflated_bytes)
        return InboundRequest(
            kind="user",
            message_id=user.message_id,
            ref_to_message_id=user.ref_to_message_id,
            timestamp=user.timestamp,
            service=user.service,
            action=user.action,
            conversation_id=user.conversation_id,
            from_parties=user.from_parties,
            from_role=user.from_role,
            to_parties=user.to_parties,
            properties=user.properties,
            parts=parts,
            mpc=None,
            fingerprint=_fingerprint(
                kind="user",
                service=user.service,
                action=user.action,
                conversation_id=user.conversation_id,
                ref=user.ref_to_message_id,
                parties=[(p.type, p.party_id) for p in user.from_parties + user.to_parties],
                parts=[(p.document_name, hashlib.sha256(p.content).hexdigest()) for p in parts],
                mpc=None,
            ),
            **common,  # type: ignore[arg-type]
        )
    if verified.attachments:
        raise MalformedMessage("a signal message carries attachments")
    signal = header.signals[0]
    if signal.has_pull_request:
        kind: Literal["user", "pull", "receipt", "error"] = "pull"
    elif signal.errors:
        kind = "error"
    elif signal.receipt is not None:
        kind = "receipt"
    else:
        raise InvalidHeader("a SignalMessage with neither PullRequest, Receipt nor Error")
    # A selective pull names the pushed message it asks for, in either of the places ebms.parse_messaging reads.
    ref = signal.pull_ref_to_message_id if kind == "pull" else signal.ref_to_message_id
    return InboundRequest(
        kind=kind,
        message_id=signal.message_id,
        ref_to_message_id=ref,
        timestamp=signal.timestamp,
        service=None,
        action=None,
        conversation_id=None,
        from_parties=[],
        from_role=None,
        to_parties=[],
        properties={},
        parts=[],
        mpc=signal.pull_mpc,
        errors=signal.errors,
        fingerprint=_fingerprint(
            kind=kind,
            service=None,
            action=None,
            conversation_id=None,
            ref=ref,
            parties=[],
            parts=[],
            mpc=signal.pull_mpc,
        ),
        **common,  # type: ignore[arg-type]
    )


def _fingerprint(
    *,
    kind: str,
    service: str | None,
    action: str | None,
    conversation_id: str | None,
    ref: str | None,
    parties: list[tuple[str, str]],
    parts: list[tuple[str, str]],
    mpc: str | None,
) -> str:
    """What makes two messages with one MessageId "the same message": the business content, not the envelope.
    A retry is rebuilt and re-signed (new Timestamp, perhaps a fresh SAML token, a new signature), so those are
    left out; the service, action, conversation, parties and each payload's name and decompressed digest are in."""
    material = json.dumps(
        [kind, service, action, conversation_id, ref, parties, parts, mpc], separators=(",", ":"), sort_keys=False
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()
