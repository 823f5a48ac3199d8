"""``ato_gateway.wire``: the SBR ebMS3 protocol library. Pure functions over bytes: no Django, no database, no HTTP.

Used by the gateway (client side) and by the stand-in ATO (``ato_sandbox``, server side), which imports nothing else
of the project. Protocol reference: shared/docs/sbr-ebms3.md; our concrete choices: docs/wire-contract.md.
Every value the project chose itself (service URIs, actions, document names, MPC, claim names) is in
``registry.py``.

Types used below: ``key`` is a ``cryptography`` ``RSAPrivateKey``; ``certificate`` an ``x509.Certificate``;
``now`` an aware ``datetime`` (default: the current UTC time); ``Payloads = list[tuple[str, bytes]]``, each
``(DocumentName, document bytes)``. Every function raises a subclass of ``errors.WireError``, whose ``permanent``
attribute says whether resending the same MessageId can help.

Client side (the outbox)
------------------------

``build_signed_request(*, service_action: ServiceAction | str, message_id: str, conversation_id: str,
from_abn: str, agent_number: str | None = None, payloads: Payloads, compress: bool = False, key, certificate,
saml_assertion: bytes | None, properties: dict[str, str], now: datetime | None = None) -> tuple[bytes, str]``
    A signed UserMessage: returns (HTTP body, Content-Type header). ``service_action`` is a registry key such as
    ``"CUREL.Submit.004.00"`` / ``"PING.Ping.001.00"`` or a ``registry.ServiceAction``. ``properties`` must hold
    ``ProductID``, ``BMS Vendor``, ``BMS Name`` and ``BMS Version`` (ValueError otherwise). With ``agent_number``
    the From party carries the TAN as a second PartyId and the Registered Agent role. ``compress`` gzips every
    payload (``CompressionType=application/gzip``). A retry calls this again with the same ``message_id``,
    ``conversation_id`` and payloads (a fresh token is fine): the receiver recognises it as the same message.
    ``message_id`` comes from ``new_message_id()`` (``<uuid>@<host>``) and is stored before the first send.

``build_signed_pull(*, message_id: str, mpc: str | None = None, ref_to_message_id: str | None = None, key,
certificate, saml_assertion: bytes | None, properties: dict[str, str] | None = None, now: datetime | None = None)
-> tuple[bytes, str]``
    A signed PullRequest: selective (``ref_to_message_id``, the pushed message whose response is wanted; what the
    gateway sends) or for a channel (``mpc = registry.mpc_for(abn)``). (A signal has no MessageProperties:
    ``properties`` is accepted and not sent.)

``parse_response(body: bytes, content_type: str, *, ato_certificate: x509.Certificate,
now: datetime | None = None) -> InboundMessage``
    Verifies the reply's signature (it must be by exactly ``ato_certificate`` and cover eb:Messaging, the Body and
    every attachment) and reads it. ``InboundMessage``: ``kind`` ('user' | 'receipt' | 'error'), ``message_id``,
    ``ref_to_message_id``, ``timestamp``, ``service``, ``action``, ``conversation_id``, ``errors:
    list[EbmsError(code, severity, short_description, category, detail, ref_to_message_id, description, origin)]``
    (``EbmsError.permanent``), ``payloads: dict[DocumentName, bytes]`` (gunzipped), ``event_items:
    list[EventItem(code, severity, short_description, detailed_description, parameters, locations)]`` and
    ``maximum_severity`` from an ``http://sbr.gov.au/comn/event.02.data`` part if present,
    ``receipt_references``, ``signer_certificate``, ``raw``. ``raise_for_errors()`` raises ``EbmsFault`` for an
    Error reply (permanent unless every code is EBMS:0005/EBMS:0006).
    Raises SignatureInvalid / CertificateUntrusted (bad or untrusted signature), MalformedMessage, UnsafeXML,
    InvalidHeader, DecompressionFailure: all permanent. ``max_inflated_bytes`` (default 64 MiB) is what all the
    parts may inflate to together (InflationLimitExceeded); a header block marked mustUnderstand that the library
    does not process is MustUnderstandFault (both permanent).

``sts_build_issue_request(*, abn: str, key, certificate, applies_to: str = registry.STS_APPLIES_TO_DEFAULT,
credential_type: str = "D", sts_url: str = "", now: datetime | None = None) -> tuple[bytes, str]``
    A WS-Trust 1.3 Issue request signed with the machine credential (Timestamp and Body), built by zeep from
    ``wsdl/sts.wsdl`` (``sts_client``), with the reference client's claims (ABN, credential type ``D``).

``sts_parse_issue_response(body: bytes, *, sts_certificate: x509.Certificate, now: datetime | None = None)
-> IssuedToken(assertion: bytes, expires_at: datetime, assertion_id: str, subject_abn: str)``
    Verifies the assertion's signature with ``sts_certificate``. A SOAP Fault (``wst:FailedAuthentication``)
    raises TokenRejected (permanent). Refresh a few minutes before ``expires_at``.

Keystores: ``keystore.list_credentials(data) -> list[CredentialInfo]``,
``keystore.load_credential(data, password, *, abn=None, credential_id=None) -> Credential(info, private_key,
certificate, chain)``, ``keystore.load_pkcs12(data, password)``, ``keystore.write_keystore([(key, chain)],
password) -> bytes``.

Server side (the stand-in ATO)
------------------------------

``parse_request(body: bytes, content_type: str, *, trust: Trust, token_issuer: x509.Certificate | None = None,
now: datetime | None = None) -> InboundRequest``
    ``trust`` is the expected certificate or a callable ``(certificate) -> bool | None`` that raises
    CertificateUntrusted (or returns False) to refuse. The signature must cover eb:Messaging, the Body, the SAML
    assertion when present, and every attachment. With ``token_issuer`` the SAML token is required, checked and
    bound to the signing credential's ABN. ``InboundRequest``: ``kind`` ('user' | 'pull' | 'receipt' | 'error'),
    ``message_id``, ``service``, ``action``, ``conversation_id``, ``from_parties``, ``from_abn``,
    ``agent_number``, ``parts`` / ``payloads``, ``mpc``, ``ref_to_message_id`` (for a pull: the pushed message
    it selects), ``signer_certificate``, ``signer_abn``, ``references``,
    ``saml``, ``fingerprint`` (equal for a retry of the same message, see docs/wire-contract.md).
    The receiver's limits (docs/wire-contract.md, "What a receiver refuses"): ``audiences`` (the token's
    Audience must be one; TokenRejected), ``timestamp_window`` (default 5 minutes either way, None to skip;
    StaleMessage), ``max_inflated_bytes`` (InflationLimitExceeded); MustUnderstandFault as for parse_response.

``build_signed_response(*, message_id, ref_to_message_id, conversation_id, service, action, to_abn,
payloads: Payloads, key, certificate, from_abn=ATO_ABN, properties=None, compress=False, now=None)
-> tuple[bytes, str]``; ``build_signed_receipt(*, request: InboundRequest, message_id, key, certificate,
now=None) -> tuple[bytes, str]``; ``build_signed_error(*, errors: list[EbmsError], message_id, key,
certificate, ref_to_message_id=None, now=None) -> tuple[bytes, str]`` (``standard_error(code, detail,
ref_to_message_id=...)`` makes an EbmsError).

``sts_parse_issue_request(body, *, trust, now=None, audiences=None) -> IssueRequest`` (InvalidScope for an
AppliesTo outside ``audiences``); ``sts_build_issue_response(*, request,
issuer, key, certificate, lifetime=30 min, now=None) -> bytes``; ``sts_build_fault(reason) -> bytes``;
``saml_verify_assertion(assertion: bytes | Element, *, issuer_certificate, now=None) -> SamlAssertion``.

Speed: ``bench/bench_gateway.py`` prints the cost of ``build_signed_request`` relative to one raw RSA-2048
signature (the goal is at most 1.6). Headers are written directly in canonical form (see ebms.py),
the XSD is parsed once per process, and a token's digest is computed once per token.
"""

from __future__ import annotations

from . import ebms, errors, events, keystore, mime, registry, sts, wsse, xmlsafe
from .client import build_signed_pull, build_signed_request, parse_response
from .ebms import EbmsError, new_message_id, standard_error
from .errors import (
    CertificateExpired,
    CertificateUntrusted,
    DecompressionFailure,
    EbmsFault,
    InvalidHeader,
    KeystoreError,
    MalformedMessage,
    ReplayDetected,
    SchemaInvalid,
    SignatureInvalid,
    TokenRejected,
    UnsafeXML,
    WireError,
)
from .events import Event, EventItem
from .keystore import Credential, CredentialInfo
from .messages import InboundMessage, InboundPart
from .registry import ServiceAction
from .server import InboundRequest, build_signed_error, build_signed_receipt, build_signed_response, parse_request
from .sts import IssuedToken, IssueRequest, SamlAssertion
from .sts import build_fault as sts_build_fault
from .sts import build_issue_response as sts_build_issue_response
from .sts import parse_issue_request as sts_parse_issue_request
from .sts import verify_assertion as saml_verify_assertion
from .sts_client import build_issue_request as sts_build_issue_request
from .sts_client import parse_issue_response as sts_parse_issue_response
from .wsse import SignedReference, Trust

__all__ = [
    "CertificateExpired",
    "CertificateUntrusted",
    "Credential",
    "CredentialInfo",
    "DecompressionFailure",
    "EbmsError",
    "EbmsFault",
    "Event",
    "EventItem",
    "InboundMessage",
    "InboundPart",
    "InboundRequest",
    "InvalidHeader",
    "IssueRequest",
    "IssuedToken",
    "KeystoreError",
    "MalformedMessage",
    "ReplayDetected",
    "SamlAssertion",
    "SchemaInvalid",
    "ServiceAction",
    "SignatureInvalid",
    "SignedReference",
    "TokenRejected",
    "Trust",
    "UnsafeXML",
    "WireError",
    "build_signed_error",
    "build_signed_pull",
    "build_signed_receipt",
    "build_signed_request",
    "build_signed_response",
    "ebms",
    "errors",
    "events",
    "keystore",
    "mime",
    "new_message_id",
    "parse_request",
    "parse_response",
    "registry",
    "saml_verify_assertion",
    "standard_error",
    "sts",
    "sts_build_fault",
    "sts_build_issue_request",
    "sts_build_issue_response",
    "sts_parse_issue_request",
    "sts_parse_issue_response",
    "wsse",
    "xmlsafe",
]
