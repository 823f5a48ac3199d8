"""The server half (the stand-in ATO): read and verify a request (signature, token, audience, freshness,
mustUnderstand, size) and build the signed response, receipt or ebMS error. Signatures and types are documented in
the package docstring (``ato_gateway/wire/__init__.py``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from . import ebms, registry, sts
from .ebms import EbmsError, Party
from .errors import (
    InvalidHeader,
    MalformedMessage,
    SignatureInvalid,
    TokenRejected,
)
from .keystore import certificate_abn
from .messages import (
    DEFAULT_MAX_INFLATED_BYTES,
    InboundPart,
    Payloads,
    _finish,
    _ids,
    _parts,
    _read,
    _user_message,
)
from .sts import SamlAssertion
from .wsse import SignedReference, Trust

DEFAULT_TIMESTAMP_WINDOW = timedelta(minutes=5)


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
