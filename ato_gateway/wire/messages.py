"""What both sides of the wire share: the inbound message types, token and certificate caches, building a signed
SOAP/ebMS envelope with its MIME parts, and reading and verifying one (signature, token, header, parts)."""

from __future__ import annotations

import functools
import gzip
import itertools
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from . import ebms, mime, ns, registry, sts, wsse, xmlsafe
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
from .wsse import ReferenceSpec, SignedReference, Trust

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"


_EXC = (ns.EXC_C14N,)


_ENVELOPE_OPEN = ebms.ENVELOPE_OPEN.encode("utf-8")


_MAX_PAYLOAD_BYTES = 50 * 1024 * 1024


# Defaults of the limits a receiver passes in (the gateway and the stand-in ATO take theirs from settings): what all
# the parts of one message may inflate to together, and how far its eb:Timestamp may be from the receiver's clock.
DEFAULT_MAX_INFLATED_BYTES = 64 * 1024 * 1024


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
