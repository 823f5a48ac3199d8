"""The ebMS3 header: UserMessage, PullRequest, Receipt and Error signals, built strictly and read leniently.

What we send is validated against the OASIS header schema (a copy of the fixture in ``schemas/``, loaded once per
process); what we receive is read without the schema, because real senders deviate in harmless ways (the ATO's own
client sends an empty ``eb:Schema``) and a receiver that refused them would refuse the real ATO.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxml import etree

from . import ns, registry
from .errors import InvalidHeader, MustUnderstandFault, SchemaInvalid, StaleMessage
from .wsse import SignedReference

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
HEADER_SCHEMA = SCHEMA_DIR / "ebms-header-3_0-200704.xsd"

_EB = ns.EB
_MESSAGING = ns.q(_EB, "Messaging")
_USER_MESSAGE = ns.q(_EB, "UserMessage")
_SIGNAL_MESSAGE = ns.q(_EB, "SignalMessage")
_MESSAGE_INFO = ns.q(_EB, "MessageInfo")
_TIMESTAMP = ns.q(_EB, "Timestamp")
_MESSAGE_ID = ns.q(_EB, "MessageId")
_REF_TO_MESSAGE_ID = ns.q(_EB, "RefToMessageId")
_PARTY_INFO = ns.q(_EB, "PartyInfo")
_FROM = ns.q(_EB, "From")
_TO = ns.q(_EB, "To")
_PARTY_ID = ns.q(_EB, "PartyId")
_ROLE = ns.q(_EB, "Role")
_COLLABORATION_INFO = ns.q(_EB, "CollaborationInfo")
_SERVICE = ns.q(_EB, "Service")
_ACTION = ns.q(_EB, "Action")
_CONVERSATION_ID = ns.q(_EB, "ConversationId")
_MESSAGE_PROPERTIES = ns.q(_EB, "MessageProperties")
_PROPERTY = ns.q(_EB, "Property")
_PAYLOAD_INFO = ns.q(_EB, "PayloadInfo")
_PART_INFO = ns.q(_EB, "PartInfo")
_PART_PROPERTIES = ns.q(_EB, "PartProperties")
_PULL_REQUEST = ns.q(_EB, "PullRequest")
_RECEIPT = ns.q(_EB, "Receipt")
_ERROR = ns.q(_EB, "Error")
_DESCRIPTION = ns.q(_EB, "Description")
_ERROR_DETAIL = ns.q(_EB, "ErrorDetail")
_S12_ENVELOPE = ns.q(ns.SOAP12, "Envelope")
_S12_HEADER = ns.q(ns.SOAP12, "Header")


# OASIS ebMS 3.0 core, section 6.7: short description, category and default severity of each code.
STANDARD_ERRORS: dict[str, tuple[str, str, str]] = {
    "EBMS:0001": ("ValueNotRecognized", "Content", "failure"),
    "EBMS:0002": ("FeatureNotSupported", "Content", "warning"),
    "EBMS:0003": ("ValueInconsistent", "Content", "failure"),
    "EBMS:0004": ("Other", "Content", "failure"),
    "EBMS:0005": ("ConnectionFailure", "Communication", "failure"),
    "EBMS:0006": ("EmptyMessagePartitionChannel", "Communication", "warning"),
    "EBMS:0007": ("MimeInconsistency", "Unpackaging", "failure"),
    "EBMS:0008": ("FeatureNotSupported", "Unpackaging", "failure"),
    "EBMS:0009": ("InvalidHeader", "Unpackaging", "failure"),
    "EBMS:0010": ("ProcessingModeMismatch", "Processing", "failure"),
    "EBMS:0011": ("ExternalPayloadError", "Content", "failure"),
    "EBMS:0101": ("FailedAuthentication", "Processing", "failure"),
    "EBMS:0102": ("FailedDecryption", "Processing", "failure"),
    "EBMS:0103": ("PolicyNoncompliance", "Processing", "failure"),
    "EBMS:0201": ("DysfunctionalReliability", "Processing", "failure"),
    "EBMS:0202": ("DeliveryFailure", "Communication", "failure"),
    "EBMS:0301": ("MissingReceipt", "Communication", "failure"),
    "EBMS:0302": ("InvalidReceipt", "Communication", "failure"),
    "EBMS:0303": ("DecompressionFailure", "Communication", "failure"),
}


@dataclass(frozen=True)
class EbmsError:
    code: str
    severity: str
    short_description: str
    category: str
    detail: str
    ref_to_message_id: str | None
    description: str | None = None
    origin: str | None = None

    @property
    def permanent(self) -> bool:
        from .errors import TRANSIENT_EBMS_CODES

        return self.code not in TRANSIENT_EBMS_CODES


def standard_error(code: str, detail: str, *, ref_to_message_id: str | None = None) -> EbmsError:
    short, category, severity = STANDARD_ERRORS.get(code, ("Other", "Content", "failure"))
    return EbmsError(code, severity, short, category, detail, ref_to_message_id, origin="ebMS")


@dataclass(frozen=True)
class Party:
    party_id: str
    type: str


@dataclass(frozen=True)
class PartInfo:
    """A ``PayloadInfo/PartInfo``: the ``cid:`` reference and its part properties."""

    href: str
    properties: dict[str, str]

    @property
    def content_id(self) -> str | None:
        from .mime import content_id_from_url

        return content_id_from_url(self.href)

    @property
    def document_name(self) -> str:
        return self.properties.get("DocumentName", "")

    @property
    def compressed(self) -> bool:
        return self.properties.get("CompressionType", "").lower() == registry.GZIP_MIME_TYPE


@dataclass
class UserMessageHeader:
    message_id: str
    timestamp: datetime | None
    ref_to_message_id: str | None
    from_parties: list[Party]
    from_role: str
    to_parties: list[Party]
    to_role: str
    service: str
    action: str
    conversation_id: str
    properties: dict[str, str]
    parts: list[PartInfo]


@dataclass
class SignalHeader:
    message_id: str
    timestamp: datetime | None
    ref_to_message_id: str | None
    pull_mpc: str | None
    has_pull_request: bool
    receipt: etree._Element | None
    receipt_references: list[SignedReference]
    errors: list[EbmsError]
    # The pushed message a selective PullRequest asks for: eb:RefToMessageId inside eb:PullRequest (the ATO's
    # reported form, read leniently) or else MessageInfo/RefToMessageId (the form we send).
    pull_ref_to_message_id: str | None = None


@dataclass
class MessagingHeader:
    element: etree._Element
    user_messages: list[UserMessageHeader] = field(default_factory=list)
    signals: list[SignalHeader] = field(default_factory=list)


# --- identifiers and time ---


def new_message_id(host: str = registry.DEFAULT_MESSAGE_ID_HOST) -> str:
    """A MessageId in the ``<unique>@<host>`` form seen in real messages."""
    return f"{uuid.uuid4()}@{host}"


def format_timestamp(moment: datetime) -> str:
    """UTC with milliseconds, as the ATO client sends: ``2020-03-11T00:13:32.868Z``."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_fresh(timestamp: datetime | None, *, now: datetime, window: timedelta) -> None:
    """StaleMessage unless ``timestamp`` (a message's ``eb:Timestamp``) lies within ``window`` of ``now``, either
    way: a retry is rebuilt with a fresh Timestamp, so only a captured message sent again, or a clock far off,
    falls outside a window of a few minutes (the AS4 practice)."""
    if timestamp is None:
        raise StaleMessage("the message has no readable eb:Timestamp")
    if abs(timestamp - now) > window:
        raise StaleMessage(
            f"eb:Timestamp {format_timestamp(timestamp)} is more than {int(window.total_seconds())} s from the "
            f"receiver's time {format_timestamp(now)}: refused"
        )


# --- schema ---


@functools.cache
def header_schema() -> etree.XMLSchema:
    """The OASIS ebMS3 header schema, parsed once per process (it imports soap12.xsd and xml.xsd beside it)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(HEADER_SCHEMA), parser))


def validate_messaging(messaging: etree._Element | str | bytes) -> None:
    """Validate an ``eb:Messaging`` header we are about to send; SchemaInvalid says what is wrong."""
    if isinstance(messaging, str | bytes):
        # Our own output, not untrusted input: the default parser is fine (and needed no hardening).
        messaging = etree.fromstring(messaging.encode("utf-8") if isinstance(messaging, str) else messaging)
    schema = header_schema()
    if not schema.validate(messaging):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)  # type: ignore[attr-defined]
        raise SchemaInvalid(f"the eb:Messaging header does not satisfy the ebMS3 schema: {errors}")


# --- building ---
#
# The builders write XML text that is already in exclusive canonical form (namespace declarations sorted by
# prefix on the apex element, attributes sorted by namespace URI then name, no empty-element tags, c14n escaping,
# no whitespace between elements). The digest of a header is then the digest of the exact bytes sent, with no
# tree and no canonicalisation pass: building and signing a message costs little more than the RSA operation.
# The tests check every builder's output against lxml's exclusive C14N and against xmlsec1.

_APEX_NS = f'xmlns:S12="{ns.SOAP12}" xmlns:eb="{ns.EB}" xmlns:wsu="{ns.WSU}"'
ENVELOPE_OPEN = (  # the envelope's start tag declares every prefix the header blocks use
    f'<S12:Envelope xmlns:S12="{ns.SOAP12}" xmlns:eb="{ns.EB}" xmlns:wsse="{ns.WSSE}" xmlns:wsu="{ns.WSU}"><S12:Header>'
)
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# One search decides whether a value needs any work at all; almost none do.
_NEEDS_ESCAPING = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def esc_text(value: str) -> str:
    """Escape character data as C14N does."""
    if _NEEDS_ESCAPING.search(value) is None:
        return value
    if _INVALID_XML_CHARS.search(value):
        raise ValueError(f"{value!r} holds characters XML cannot carry")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def esc_attr(value: str) -> str:
    """Escape an attribute value as C14N does."""
    if _NEEDS_ESCAPING.search(value) is None:
        return value
    if _INVALID_XML_CHARS.search(value):
        raise ValueError(f"{value!r} holds characters XML cannot carry")
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def body_xml(body_id: str) -> str:
    """The empty SOAP Body, canonical (its digest is over exactly this text)."""
    return f'<S12:Body xmlns:S12="{ns.SOAP12}" xmlns:wsu="{ns.WSU}" wsu:Id="{esc_attr(body_id)}"></S12:Body>'


def _messaging_xml(messaging_id: str, inner: str) -> str:
    # Attributes in C14N order: wsu (http://docs...) sorts before S12 (http://www...).
    return (
        f'<eb:Messaging {_APEX_NS} wsu:Id="{esc_attr(messaging_id)}" S12:mustUnderstand="true">{inner}</eb:Messaging>'
    )


def _message_info_xml(message_id: str, timestamp: datetime, ref: str | None) -> str:
    ref_xml = f"<eb:RefToMessageId>{esc_text(ref)}</eb:RefToMessageId>" if ref else ""
    return (
        f"<eb:MessageInfo><eb:Timestamp>{format_timestamp(timestamp)}</eb:Timestamp>"
        f"<eb:MessageId>{esc_text(message_id)}</eb:MessageId>{ref_xml}</eb:MessageInfo>"
    )


def _properties_xml(properties: dict[str, str]) -> str:
    return "".join(
        f'<eb:Property name="{esc_attr(name)}">{esc_text(value)}</eb:Property>' for name, value in properties.items()
    )


def _party_xml(tag: str, parties: list[Party], role: str) -> str:
    ids = "".join(f'<eb:PartyId type="{esc_attr(p.type)}">{esc_text(p.party_id)}</eb:PartyId>' for p in parties)
    return f"<eb:{tag}>{ids}<eb:Role>{esc_text(role)}</eb:Role></eb:{tag}>"


def user_message_xml(
    *,
    messaging_id: str,
    message_id: str,
    timestamp: datetime,
    from_parties: list[Party],
    from_role: str,
    to_parties: list[Party],
    to_role: str,
    service: str,
    action: str,
    conversation_id: str,
    properties: dict[str, str],
    parts: list[PartInfo],
    ref_to_message_id: str | None = None,
) -> str:
    """``eb:Messaging`` with one UserMessage, in canonical form."""
    chunks = [
        "<eb:UserMessage>",
        _message_info_xml(message_id, timestamp, ref_to_message_id),
        "<eb:PartyInfo>",
        _party_xml("From", from_parties, from_role),
        _party_xml("To", to_parties, to_role),
        "</eb:PartyInfo><eb:CollaborationInfo>",
        f"<eb:Service>{esc_text(service)}</eb:Service><eb:Action>{esc_text(action)}</eb:Action>",
        f"<eb:ConversationId>{esc_text(conversation_id)}</eb:ConversationId></eb:CollaborationInfo>",
    ]
    if properties:
        chunks += ["<eb:MessageProperties>", _properties_xml(properties), "</eb:MessageProperties>"]
    if parts:
        chunks.append("<eb:PayloadInfo>")
        for part in parts:
            chunks += [
                f'<eb:PartInfo href="{esc_attr(part.href)}"><eb:PartProperties>',
                _properties_xml(part.properties),
                "</eb:PartProperties></eb:PartInfo>",
            ]
        chunks.append("</eb:PayloadInfo>")
    chunks.append("</eb:UserMessage>")
    return _messaging_xml(messaging_id, "".join(chunks))


def pull_request_xml(
    *,
    messaging_id: str,
    message_id: str,
    timestamp: datetime,
    mpc: str | None = None,
    ref_to_message_id: str | None = None,
) -> str:
    """A PullRequest signal: for a channel (``mpc``), or selective, for the response to one pushed message.

    The pushed message's id goes in ``MessageInfo/RefToMessageId``. The ATO's pull is reported to take it as
    ``eb:RefToMessageId`` inside ``eb:PullRequest``, but the OASIS schema admits only elements of other namespaces
    there (``xsd:any namespace="##other"``), and what we send stays valid against it (docs/wire-contract.md)."""
    attributes = f' mpc="{esc_attr(mpc)}"' if mpc else ""
    inner = (
        f"<eb:SignalMessage>{_message_info_xml(message_id, timestamp, ref_to_message_id)}"
        f"<eb:PullRequest{attributes}></eb:PullRequest></eb:SignalMessage>"
    )
    return _messaging_xml(messaging_id, inner)


def receipt_xml(
    *,
    messaging_id: str,
    message_id: str,
    timestamp: datetime,
    ref_to_message_id: str,
    references: list[SignedReference],
) -> str:
    """A Receipt whose ebbp:NonRepudiationInformation repeats each ds:Reference of the received message."""
    chunks = [
        f"<eb:SignalMessage>{_message_info_xml(message_id, timestamp, ref_to_message_id)}<eb:Receipt>",
        f'<ebbp:NonRepudiationInformation xmlns:ebbp="{ns.EBBP}">',
    ]
    for reference in references:
        transforms = "".join(f'<ds:Transform Algorithm="{esc_attr(t)}"></ds:Transform>' for t in reference.transforms)
        chunks += [
            "<ebbp:MessagePartNRInformation>",
            f'<ds:Reference xmlns:ds="{ns.DS}" URI="{esc_attr(reference.uri)}">',
            f"<ds:Transforms>{transforms}</ds:Transforms>" if transforms else "",
            f'<ds:DigestMethod Algorithm="{esc_attr(reference.digest_method)}"></ds:DigestMethod>',
            f"<ds:DigestValue>{esc_text(reference.digest_value)}</ds:DigestValue>",
            "</ds:Reference></ebbp:MessagePartNRInformation>",
        ]
    chunks.append("</ebbp:NonRepudiationInformation></eb:Receipt></eb:SignalMessage>")
    return _messaging_xml(messaging_id, "".join(chunks))


def errors_xml(
    *,
    messaging_id: str,
    message_id: str,
    timestamp: datetime,
    ref_to_message_id: str | None,
    errors: list[EbmsError],
) -> str:
    chunks = ["<eb:SignalMessage>", _message_info_xml(message_id, timestamp, ref_to_message_id)]
    for error in errors:
        attributes = {
            "category": error.category,
            "errorCode": error.code,
            "origin": error.origin,
            "refToMessageInError": error.ref_to_message_id,
            "severity": error.severity,
            "shortDescription": error.short_description,
        }
        rendered = " ".join(f'{k}="{esc_attr(v)}"' for k, v in sorted(attributes.items()) if v)
        description = (
            f'<eb:Description xml:lang="en">{esc_text(error.description)}</eb:Description>' if error.description else ""
        )
        detail = f"<eb:ErrorDetail>{esc_text(error.detail)}</eb:ErrorDetail>" if error.detail else ""
        chunks.append(f"<eb:Error {rendered}>{description}{detail}</eb:Error>")
    chunks.append("</eb:SignalMessage>")
    return _messaging_xml(messaging_id, "".join(chunks))


# --- reading (lenient) ---


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _parties(holder: etree._Element | None) -> tuple[list[Party], str]:
    if holder is None:
        return [], ""
    parties = [Party(_text(p), p.get("type", "")) for p in holder.findall(_PARTY_ID)]
    return parties, _text(holder.find(_ROLE))


def find_messaging(envelope: etree._Element) -> etree._Element:
    if envelope.tag != _S12_ENVELOPE:
        raise InvalidHeader(f"the root element is {envelope.tag}, not a SOAP 1.2 Envelope")
    header = envelope.find(_S12_HEADER)
    found = header.findall(_MESSAGING) if header is not None else []
    if len(found) != 1:
        raise InvalidHeader(f"expected one eb:Messaging header, found {len(found)}")
    return found[0]


_MUST_UNDERSTAND = ns.q(ns.SOAP12, "mustUnderstand")
_ROLE_ATTRIBUTE = ns.q(ns.SOAP12, "role")
# SOAP 1.2 part 1, section 2.2: a block with no role is for the ultimate receiver, "next" is for every node, "none"
# for none. Both sides of this project are ultimate receivers and play no other role.
_OUR_ROLES = frozenset({"", f"{ns.SOAP12}/role/next", f"{ns.SOAP12}/role/ultimateReceiver"})


def check_must_understand(header: etree._Element | None, understood: frozenset[str]) -> None:
    """MustUnderstandFault when a header block for us is marked ``mustUnderstand`` (``true`` or ``1``, xs:boolean)
    and its name (Clark notation) is not in ``understood``. SOAP 1.2 has this checked before anything else of
    the message is processed (part 1, section 2.6)."""
    if header is None:
        return
    missing = [
        str(block.tag)
        for block in header
        if isinstance(block.tag, str)
        and block.get(_MUST_UNDERSTAND, "false").strip() in ("true", "1")
        and block.get(_ROLE_ATTRIBUTE, "").strip() in _OUR_ROLES
        and block.tag not in understood
    ]
    if missing:
        raise MustUnderstandFault(
            f"header block(s) {', '.join(missing)} must be understood and are not", not_understood=missing
        )


def must_understand_fault(not_understood: list[str]) -> bytes:
    """The SOAP 1.2 MustUnderstand fault (part 1, section 5.4.8): one ``env:NotUnderstood`` header block per block
    not understood, each naming it by a qualified name whose prefix it declares."""
    envelope = etree.Element(_S12_ENVELOPE, nsmap={"S12": ns.SOAP12})
    header = etree.SubElement(envelope, _S12_HEADER)
    for index, name in enumerate(not_understood):
        qname = etree.QName(name)
        prefix = f"nu{index}"
        etree.SubElement(
            header,
            ns.q(ns.SOAP12, "NotUnderstood"),
            {"qname": f"{prefix}:{qname.localname}" if qname.namespace else qname.localname},
            nsmap={prefix: qname.namespace} if qname.namespace else None,
        )
    fault = etree.SubElement(etree.SubElement(envelope, ns.q(ns.SOAP12, "Body")), ns.q(ns.SOAP12, "Fault"))
    etree.SubElement(
        etree.SubElement(fault, ns.q(ns.SOAP12, "Code")), ns.q(ns.SOAP12, "Value")
    ).text = "S12:MustUnderstand"
    reason = etree.SubElement(fault, ns.q(ns.SOAP12, "Reason"))
    etree.SubElement(
        reason, ns.q(ns.SOAP12, "Text"), {ns.q(ns.XML, "lang"): "en"}
    ).text = "One or more mandatory SOAP header blocks not understood"
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def parse_messaging(messaging: etree._Element) -> MessagingHeader:
    """Read an ``eb:Messaging`` header leniently; InvalidHeader only when a field we rely on is missing."""
    result = MessagingHeader(element=messaging)
    for user in messaging.findall(_USER_MESSAGE):
        info = user.find(_MESSAGE_INFO)
        message_id = _text(info.find(_MESSAGE_ID)) if info is not None else ""
        if not message_id:
            raise InvalidHeader("a UserMessage has no MessageInfo/MessageId")
        party_info = user.find(_PARTY_INFO)
        from_parties, from_role = _parties(party_info.find(_FROM) if party_info is not None else None)
        to_parties, to_role = _parties(party_info.find(_TO) if party_info is not None else None)
        collaboration = user.find(_COLLABORATION_INFO)
        if collaboration is None:
            raise InvalidHeader("a UserMessage has no CollaborationInfo")
        service, action = _text(collaboration.find(_SERVICE)), _text(collaboration.find(_ACTION))
        if not service or not action:
            raise InvalidHeader("CollaborationInfo lacks Service or Action")
        properties = {p.get("name", ""): (p.text or "") for p in user.findall(f"{_MESSAGE_PROPERTIES}/{_PROPERTY}")}
        parts = [
            PartInfo(
                href=part.get("href", ""),
                properties={p.get("name", ""): (p.text or "").strip() for p in part.iter(_PROPERTY)},
            )
            for part in user.findall(f"{_PAYLOAD_INFO}/{_PART_INFO}")
        ]
        result.user_messages.append(
            UserMessageHeader(
                message_id=message_id,
                timestamp=parse_timestamp(_text(info.find(_TIMESTAMP))) if info is not None else None,
                ref_to_message_id=_text(info.find(_REF_TO_MESSAGE_ID)) or None if info is not None else None,
                from_parties=from_parties,
                from_role=from_role,
                to_parties=to_parties,
                to_role=to_role,
                service=service,
                action=action,
                conversation_id=_text(collaboration.find(_CONVERSATION_ID)),
                properties=properties,
                parts=parts,
            )
        )
    for signal in messaging.findall(_SIGNAL_MESSAGE):
        info = signal.find(_MESSAGE_INFO)
        message_id = _text(info.find(_MESSAGE_ID)) if info is not None else ""
        if not message_id:
            raise InvalidHeader("a SignalMessage has no MessageInfo/MessageId")
        ref = (_text(info.find(_REF_TO_MESSAGE_ID)) or None) if info is not None else None
        pull = signal.find(_PULL_REQUEST)
        receipt = signal.find(_RECEIPT)
        errors = [
            EbmsError(
                code=e.get("errorCode", ""),
                severity=e.get("severity", "failure"),
                short_description=e.get("shortDescription", ""),
                category=e.get("category", ""),
                detail=_text(e.find(_ERROR_DETAIL)),
                ref_to_message_id=e.get("refToMessageInError") or ref,
                description=_text(e.find(_DESCRIPTION)) or None,
                origin=e.get("origin"),
            )
            for e in signal.findall(_ERROR)
        ]
        result.signals.append(
            SignalHeader(
                message_id=message_id,
                timestamp=parse_timestamp(_text(info.find(_TIMESTAMP))) if info is not None else None,
                ref_to_message_id=ref,
                pull_mpc=(pull.get("mpc") or None) if pull is not None else None,
                has_pull_request=pull is not None,
                receipt=receipt,
                receipt_references=_receipt_references(receipt),
                errors=errors,
                pull_ref_to_message_id=(_text(pull.find(_REF_TO_MESSAGE_ID)) or ref) if pull is not None else None,
            )
        )
    if not result.user_messages and not result.signals:
        raise InvalidHeader("eb:Messaging holds neither a UserMessage nor a SignalMessage")
    return result


def _receipt_references(receipt: etree._Element | None) -> list[SignedReference]:
    if receipt is None:
        return []
    found = []
    for reference in receipt.iter(ns.q(ns.DS, "Reference")):
        method = reference.find(ns.q(ns.DS, "DigestMethod"))
        found.append(
            SignedReference(
                uri=reference.get("URI", ""),
                transforms=tuple(t.get("Algorithm", "") for t in reference.iter(ns.q(ns.DS, "Transform"))),
                digest_method=method.get("Algorithm", "") if method is not None else "",
                digest_value=_text(reference.find(ns.q(ns.DS, "DigestValue"))),
            )
        )
    return found
