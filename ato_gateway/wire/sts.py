"""The security token service: WS-Trust 1.3 Issue request and response, and SAML 2.0 assertions.

Client side: ``sts_client`` (zeep, from the WSDL in ``wsdl/``) builds the Issue request and reads the answer, with
``verify_assertion`` here checking the token it holds.
Server side (the stand-in ATO): ``parse_issue_request``, ``build_issue_response``, ``build_fault`` and
``verify_assertion`` for the token that then travels in every ebMS message.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from . import ns, registry, xmlsafe
from .ebms import check_must_understand, format_timestamp, parse_timestamp
from .errors import CertificateUntrusted, InvalidScope, MalformedMessage, SignatureInvalid, TokenRejected
from .keystore import certificate_abn
from .wsse import (
    ReferenceSpec,
    Trust,
    certificate_b64,
    check_trust,
    check_validity,
    digest_b64,
    exc_c14n,
    find_security,
    id_index,
    security_token_certificate,
    sign,
    verify_signature,
    x509_data_key_info_xml,
)

CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
_NSMAP = {"S12": ns.SOAP12, "wsu": ns.WSU, "wsse": ns.WSSE, "wst": ns.WST, "wsp": ns.WSP, "wsa": ns.WSA}
_S12 = ns.SOAP12
_SAML = ns.SAML2
_CLAIMS = registry.STS_CLAIMS_NAMESPACE
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
# The header blocks an Issue request may mark mustUnderstand: the security header and WS-Addressing's.
_STS_UNDERSTOOD = frozenset(
    {ns.q(ns.WSSE, "Security")}
    | {ns.q(ns.WSA, name) for name in ("Action", "MessageID", "To", "ReplyTo", "FaultTo", "From", "RelatesTo")}
)


@dataclass(frozen=True)
class IssuedToken:
    """What the client keeps: the assertion exactly as issued, and when to stop using it."""

    assertion: bytes
    expires_at: datetime
    assertion_id: str
    subject_abn: str


@dataclass(frozen=True)
class IssueRequest:
    """A verified Issue request, as the token service sees it."""

    abn: str
    credential_type: str
    applies_to: str
    certificate: x509.Certificate
    created: datetime
    expires: datetime
    message_id: str | None


@dataclass(frozen=True)
class SamlAssertion:
    id: str
    issuer: str
    subject: str
    not_before: datetime
    not_on_or_after: datetime
    audience: str | None
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def abn(self) -> str:
        return self.attributes.get(registry.SAML_ATTRIBUTE_ABN, self.subject)


# --- client: sts_client.py (on zeep) ---


def fault_text(fault: etree._Element) -> str:
    reason = " ".join(t.strip() for t in fault.itertext() if t.strip())
    return reason or "SOAP Fault without a reason"


# --- server ---


def parse_issue_request(
    body: bytes,
    *,
    trust: Trust,
    now: datetime | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    audiences: Collection[str] | None = None,
) -> IssueRequest:
    """Verify and read an Issue request. Raises SignatureInvalid/CertificateUntrusted/TokenRejected/MalformedMessage,
    MustUnderstandFault, and InvalidScope for an AppliesTo outside ``audiences`` (the token service's own
    services: it issues for nobody else)."""
    moment = now or datetime.now(UTC)
    envelope = xmlsafe.parse(body)
    if envelope.tag != ns.q(_S12, "Envelope"):
        raise MalformedMessage("the Issue request is not a SOAP 1.2 envelope")
    header = envelope.find(ns.q(_S12, "Header"))
    check_must_understand(header, _STS_UNDERSTOOD)
    soap_body = envelope.find(ns.q(_S12, "Body"))
    if soap_body is None:
        raise MalformedMessage("the Issue request has no Body")
    security = find_security(header)
    timestamp = security.find(ns.q(ns.WSU, "Timestamp"))
    signature = security.find(ns.q(ns.DS, "Signature"))
    if timestamp is None or signature is None:
        raise SignatureInvalid("the Issue request must carry a signed wsu:Timestamp")
    ids = id_index(envelope)
    certificate = security_token_certificate(security, signature, ids)
    _, elements, _ = verify_signature(signature, certificate=certificate, ids=ids)
    for required, name in ((timestamp, "Timestamp"), (soap_body, "Body")):
        if not any(required is element for element in elements):
            raise SignatureInvalid(f"the Issue request's signature does not cover the {name}")
    check_trust(certificate, trust, now=moment)
    created = parse_timestamp(timestamp.findtext(ns.q(ns.WSU, "Created")))
    expires = parse_timestamp(timestamp.findtext(ns.q(ns.WSU, "Expires")))
    if created is None or expires is None:
        raise TokenRejected("the Issue request's timestamp lacks Created or Expires")
    if created > moment + clock_skew or expires < moment - clock_skew:
        raise TokenRejected(
            f"stale timestamp: created {format_timestamp(created)}, expires {format_timestamp(expires)}, "
            f"now {format_timestamp(moment)}"
        )
    rst = soap_body.find(ns.q(ns.WST, "RequestSecurityToken"))
    if rst is None:
        raise MalformedMessage("the Body holds no wst:RequestSecurityToken")
    request_type = (rst.findtext(ns.q(ns.WST, "RequestType")) or "").strip()
    if request_type != ns.WST_ISSUE:
        raise MalformedMessage(f"unsupported RequestType {request_type!r}")
    token_type = (rst.findtext(ns.q(ns.WST, "TokenType")) or ns.SAML2_TOKEN_TYPE).strip()
    if token_type != ns.SAML2_TOKEN_TYPE:
        raise MalformedMessage(f"unsupported TokenType {token_type!r}")
    address = rst.find(f".//{ns.q(ns.WSA, 'Address')}")
    applies_to = (address.text or "").strip() if address is not None else registry.STS_APPLIES_TO_DEFAULT
    if audiences is not None and applies_to not in audiences:
        raise InvalidScope(f"the token service issues no token for AppliesTo {applies_to!r}")
    claims = rst.find(ns.q(ns.WST, "Claims"))
    # The reference client's claims: ClaimType elements naming the ABN and the credential type (its Value, "D").
    # The ABN is the credential's own (below); the claim asks for it in the token.
    requested = {
        c.get("Uri", ""): (c.findtext(ns.q(_CLAIMS, "Value")) or "").strip()
        for c in (claims.iter(ns.q(_CLAIMS, "ClaimType")) if claims is not None else ())
    }
    abn = ""
    credential_type = requested.get(registry.STS_CLAIM_CREDENTIAL_TYPE, "")
    certificate_owner = certificate_abn(certificate)
    if not abn:
        abn = certificate_owner or ""
    if not certificate_owner or abn != certificate_owner:
        raise TokenRejected(f"the claimed ABN {abn!r} is not the credential's ABN {certificate_owner!r}")
    header_message_id = header.findtext(ns.q(ns.WSA, "MessageID")) if header is not None else None
    return IssueRequest(
        abn=abn,
        credential_type=credential_type or registry.CREDENTIAL_TYPE_DEVICE,
        applies_to=applies_to,
        certificate=certificate,
        created=created,
        expires=expires,
        message_id=header_message_id,
    )


def build_issue_response(
    *,
    request: IssueRequest,
    issuer: str,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    lifetime: timedelta = timedelta(seconds=registry.STS_TOKEN_LIFETIME_SECONDS),
    now: datetime | None = None,
) -> bytes:
    """An RSTRC holding a SAML 2.0 assertion for the request's ABN, enveloped-signed by the token service."""
    moment = now or datetime.now(UTC)
    assertion = create_assertion(
        issuer=issuer,
        subject_abn=request.abn,
        audience=request.applies_to,
        attributes={
            registry.SAML_ATTRIBUTE_ABN: request.abn,
            registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL: str(request.certificate.serial_number),
            registry.SAML_ATTRIBUTE_CREDENTIAL_TYPE: request.credential_type,
        },
        key=key,
        certificate=certificate,
        not_before=moment,
        not_on_or_after=moment + lifetime,
    )
    envelope = etree.Element(ns.q(_S12, "Envelope"), nsmap=_NSMAP)
    header = etree.SubElement(envelope, ns.q(_S12, "Header"))
    etree.SubElement(header, ns.q(ns.WSA, "Action")).text = ns.WST_RSTRC_ISSUE_ACTION
    if request.message_id:
        etree.SubElement(header, ns.q(ns.WSA, "RelatesTo")).text = request.message_id
    body = etree.SubElement(envelope, ns.q(_S12, "Body"))
    collection = etree.SubElement(body, ns.q(ns.WST, "RequestSecurityTokenResponseCollection"))
    rstr = etree.SubElement(collection, ns.q(ns.WST, "RequestSecurityTokenResponse"))
    etree.SubElement(rstr, ns.q(ns.WST, "TokenType")).text = ns.SAML2_TOKEN_TYPE
    lifetime_element = etree.SubElement(rstr, ns.q(ns.WST, "Lifetime"))
    etree.SubElement(lifetime_element, ns.q(ns.WSU, "Created")).text = format_timestamp(moment)
    etree.SubElement(lifetime_element, ns.q(ns.WSU, "Expires")).text = format_timestamp(moment + lifetime)
    requested = etree.SubElement(rstr, ns.q(ns.WST, "RequestedSecurityToken"))
    requested.append(xmlsafe.parse(assertion))
    applies = etree.SubElement(rstr, ns.q(ns.WSP, "AppliesTo"))
    reference = etree.SubElement(applies, ns.q(ns.WSA, "EndpointReference"))
    etree.SubElement(reference, ns.q(ns.WSA, "Address")).text = request.applies_to
    etree.SubElement(rstr, ns.q(ns.WST, "KeyType")).text = ns.WST_BEARER
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def build_fault(reason: str, *, subcode: str = "FailedAuthentication") -> bytes:
    """A SOAP 1.2 Sender fault with subcode ``wst:<subcode>`` (HTTP 400 under the SOAP 1.2 HTTP binding)."""
    envelope = etree.Element(ns.q(_S12, "Envelope"), nsmap={"S12": _S12, "wst": ns.WST})
    body = etree.SubElement(envelope, ns.q(_S12, "Body"))
    fault = etree.SubElement(body, ns.q(_S12, "Fault"))
    code = etree.SubElement(fault, ns.q(_S12, "Code"))
    etree.SubElement(code, ns.q(_S12, "Value")).text = "S12:Sender"
    sub = etree.SubElement(code, ns.q(_S12, "Subcode"))
    etree.SubElement(sub, ns.q(_S12, "Value")).text = f"wst:{subcode}"
    reason_element = etree.SubElement(fault, ns.q(_S12, "Reason"))
    etree.SubElement(reason_element, ns.q(_S12, "Text"), {ns.q(ns.XML, "lang"): "en"}).text = reason
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


# --- SAML 2.0 assertions ---


def create_assertion(
    *,
    issuer: str,
    subject_abn: str,
    audience: str | None,
    attributes: dict[str, str],
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    not_before: datetime,
    not_on_or_after: datetime,
) -> bytes:
    """A SAML 2.0 assertion, enveloped-signed (exclusive C14N, RSA-SHA256), as a standalone document."""
    assertion_id = f"_{secrets.token_hex(16)}"
    assertion = etree.Element(
        ns.q(_SAML, "Assertion"),
        {"ID": assertion_id, "IssueInstant": format_timestamp(not_before), "Version": "2.0"},
        nsmap={"saml2": _SAML},
    )
    etree.SubElement(assertion, ns.q(_SAML, "Issuer")).text = issuer
    subject = etree.SubElement(assertion, ns.q(_SAML, "Subject"))
    etree.SubElement(
        subject, ns.q(_SAML, "NameID"), {"Format": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"}
    ).text = subject_abn
    etree.SubElement(subject, ns.q(_SAML, "SubjectConfirmation"), {"Method": ns.SAML2_BEARER})
    conditions = etree.SubElement(
        assertion,
        ns.q(_SAML, "Conditions"),
        {"NotBefore": format_timestamp(not_before), "NotOnOrAfter": format_timestamp(not_on_or_after)},
    )
    if audience:
        restriction = etree.SubElement(conditions, ns.q(_SAML, "AudienceRestriction"))
        etree.SubElement(restriction, ns.q(_SAML, "Audience")).text = audience
    authn = etree.SubElement(assertion, ns.q(_SAML, "AuthnStatement"), {"AuthnInstant": format_timestamp(not_before)})
    context = etree.SubElement(authn, ns.q(_SAML, "AuthnContext"))
    etree.SubElement(context, ns.q(_SAML, "AuthnContextClassRef")).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
    statement = etree.SubElement(assertion, ns.q(_SAML, "AttributeStatement"))
    for name, value in attributes.items():
        attribute = etree.SubElement(
            statement,
            ns.q(_SAML, "Attribute"),
            {"Name": name, "NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"},
        )
        etree.SubElement(attribute, ns.q(_SAML, "AttributeValue")).text = value
    # Enveloped signature: the digest is over the assertion without its signature, i.e. as it is right now.
    digest = digest_b64(exc_c14n(assertion))
    sign(
        assertion,
        key=key,
        references=[ReferenceSpec(f"#{assertion_id}", (ns.ENVELOPED_SIGNATURE, ns.EXC_C14N), digest)],
        key_info_xml=x509_data_key_info_xml(certificate_b64(certificate)),
        position=1,  # SAML's schema puts ds:Signature right after Issuer
    )
    return etree.tostring(assertion)


def verify_assertion(
    assertion: bytes | etree._Element,
    *,
    issuer_certificate: x509.Certificate,
    now: datetime | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> SamlAssertion:
    """Check a SAML 2.0 assertion: signed (enveloped, whole assertion) by ``issuer_certificate`` and valid now.
    Every failure is TokenRejected."""
    moment = now or datetime.now(UTC)
    element = xmlsafe.parse(assertion) if isinstance(assertion, bytes) else assertion
    if element.tag != ns.q(_SAML, "Assertion"):
        raise TokenRejected(f"not a SAML 2.0 assertion: {element.tag}")
    # A token is presented with every message for its whole life (30 minutes), byte for byte the same. Once its
    # signature has been checked against this issuer, the same bytes need no second check (which costs C14N and
    # an RSA verification, a tenth of what the receiving side spends on a message); the time checks are repeated
    # on every use.
    cache_key = (
        hashlib.sha256(etree.tostring(element)).digest(),
        issuer_certificate.fingerprint(hashes.SHA256()),
    )
    verified = _VERIFIED.get(cache_key)
    if verified is None:
        verified = _verify_assertion_signature(element, issuer_certificate=issuer_certificate, now=moment)
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[cache_key] = verified
    if moment < verified.not_before - clock_skew:
        raise TokenRejected(f"the SAML assertion is not valid before {format_timestamp(verified.not_before)}")
    if moment >= verified.not_on_or_after:
        raise TokenRejected(f"the SAML assertion expired at {format_timestamp(verified.not_on_or_after)}")
    try:
        check_validity(verified.certificate, now=moment)
    except CertificateUntrusted as exc:
        raise TokenRejected(f"the SAML assertion was not issued by the token service: {exc}") from exc
    return replace(verified.assertion, attributes=dict(verified.assertion.attributes))  # a copy: callers own it


@dataclass(frozen=True)
class _VerifiedAssertion:
    assertion: SamlAssertion
    certificate: x509.Certificate  # that signed it
    not_before: datetime
    not_on_or_after: datetime


_VERIFIED: dict[tuple[bytes, bytes], _VerifiedAssertion] = {}
_VERIFIED_MAX = 1024


def _verify_assertion_signature(
    element: etree._Element, *, issuer_certificate: x509.Certificate, now: datetime
) -> _VerifiedAssertion:
    """The checks that depend only on the assertion's bytes and its issuer; verify_assertion checks the times."""
    moment = now
    assertion_id = element.get("ID", "")
    signature = element.find(ns.q(ns.DS, "Signature"))
    if signature is None or not assertion_id:
        raise TokenRejected("the SAML assertion is not signed")
    try:
        ids = id_index(element)
        certificate = security_token_certificate(element, signature, ids)
        check_trust(certificate, issuer_certificate, now=moment)
        _, elements, _ = verify_signature(signature, certificate=certificate, ids=ids)
    except CertificateUntrusted as exc:
        raise TokenRejected(f"the SAML assertion was not issued by the token service: {exc}") from exc
    except SignatureInvalid as exc:
        raise TokenRejected(f"the SAML assertion's signature is invalid: {exc}") from exc
    if not any(e is element for e in elements):
        raise TokenRejected("the SAML assertion's signature does not cover the assertion")
    conditions = element.find(ns.q(_SAML, "Conditions"))
    not_before = parse_timestamp(conditions.get("NotBefore")) if conditions is not None else None
    not_after = parse_timestamp(conditions.get("NotOnOrAfter")) if conditions is not None else None
    if not_before is None or not_after is None:
        raise TokenRejected("the SAML assertion has no validity period")
    name_id = element.findtext(f"{ns.q(_SAML, 'Subject')}/{ns.q(_SAML, 'NameID')}") or ""
    attributes = {
        a.get("Name", ""): (a.findtext(ns.q(_SAML, "AttributeValue")) or "").strip()
        for a in element.iter(ns.q(_SAML, "Attribute"))
    }
    audience = element.findtext(f".//{ns.q(_SAML, 'Audience')}")
    saml = SamlAssertion(
        id=assertion_id,
        issuer=(element.findtext(ns.q(_SAML, "Issuer")) or "").strip(),
        subject=name_id.strip(),
        not_before=not_before,
        not_on_or_after=not_after,
        audience=audience.strip() if audience else None,
        attributes=attributes,
    )
    return _VerifiedAssertion(saml, certificate, not_before, not_after)
