"""The client half (the gateway's outbox): build a signed request or a selective pull, and read the ATO's reply.
Signatures and types are documented in the package docstring (``ato_gateway/wire/__init__.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from . import ebms, events, registry
from .ebms import Party
from .errors import (
    InvalidHeader,
)
from .events import EventItem
from .messages import (
    DEFAULT_MAX_INFLATED_BYTES,
    InboundMessage,
    Payloads,
    _finish,
    _ids,
    _parts,
    _read,
    _user_message,
)
from .registry import ServiceAction


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
