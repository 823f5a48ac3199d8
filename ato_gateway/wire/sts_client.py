"""The token service's client, on zeep: the ATO's security token service is a WSDL-described WS-Trust 1.3 SOAP
service, which is what zeep is for. The WSDL is kept in the repository (``wsdl/sts.wsdl``), built from the contract
of the ATO's published reference client; zeep builds the Issue request from it, addresses it (WS-Addressing Action,
MessageID and To) and signs it through its WS-Security hook, and reads the answer against it.

What stays ours: the claims the reference client asks for (registry.STS_CLAIM_*), the cache of tokens
(``ato_gateway/tokens.py``), the checks on the returned assertion (``sts.verify_assertion``), and the signature
itself (see ``_CredentialSignature``). Nothing here opens a connection: the caller posts the bytes with its own
transport, as it does every ebMS message, so that timeouts and the classing of failures stay in one place.

zeep is not used for the ebMS messages: its signature cannot cover ``eb:Messaging`` or the attachments.
"""

from __future__ import annotations

import functools
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import zeep
import zeep.exceptions
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from . import ns, registry, xmlsafe
from .ebms import format_timestamp, parse_timestamp
from .errors import MalformedMessage, TokenRejected
from .keystore import certificate_abn
from .sts import CONTENT_TYPE, IssuedToken, fault_text, verify_assertion
from .wsse import certificate_b64, sign, token_reference_key_info_xml, xml_reference

WSDL = Path(__file__).resolve().parent / "wsdl" / "sts.wsdl"
_BINDING = "{urn:practice-portal:ato-sts}SecurityTokenServiceSoap12"
_S12 = ns.SOAP12
# One client per process (parsing the WSDL costs milliseconds); its wsse hook is set per request, under the lock.
_lock = threading.Lock()


@functools.cache
def _client() -> zeep.Client:
    # strict=False: an answer with more in it than the WSDL names (as any token service's may) is still read.
    return zeep.Client(str(WSDL), settings=zeep.Settings(strict=False, xml_huge_tree=False, forbid_dtd=True))


class _CredentialSignature:
    """zeep's WS-Security hook (``apply``/``verify``), signing with the machine credential: a wsu:Timestamp
    (Created, Expires 5 minutes later), the credential's BinarySecurityToken, and a signature over the Timestamp
    and the Body.

    Hand-written, because zeep cannot meet one requirement here: its own signing (``zeep.wsse.BinarySignature``)
    runs through python-xmlsec, a C binding that must be built against the very libxml2 that lxml uses and that
    this project does not depend on (a mismatch fails at import). The signature is the project's own
    (``wsse.sign``: exclusive C14N, RSA-SHA256, SHA-256 digests), the one every ebMS message carries, which the
    tests check with xmlsec1."""

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate, now: datetime) -> None:
        self.key = key
        self.certificate = certificate
        self.now = now

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> tuple[etree._Element, dict[str, str]]:
        n = secrets.randbelow(10**9)
        ts_id, bst_id, body_id = f"id-ts-{n}", f"id-x509-{n}", f"id-body-{n}"
        header = envelope.find(ns.q(_S12, "Header"))
        if header is None:
            header = etree.Element(ns.q(_S12, "Header"))
            envelope.insert(0, header)
        body = envelope.find(ns.q(_S12, "Body"))
        if body is None:
            raise MalformedMessage("zeep built an Issue request without a Body")
        body.set(ns.q(ns.WSU, "Id"), body_id)
        security = etree.SubElement(
            header,
            ns.q(ns.WSSE, "Security"),
            {ns.q(_S12, "mustUnderstand"): "true"},
            nsmap={"wsse": ns.WSSE, "wsu": ns.WSU},
        )
        timestamp = etree.SubElement(security, ns.q(ns.WSU, "Timestamp"), {ns.q(ns.WSU, "Id"): ts_id})
        etree.SubElement(timestamp, ns.q(ns.WSU, "Created")).text = format_timestamp(self.now)
        etree.SubElement(timestamp, ns.q(ns.WSU, "Expires")).text = format_timestamp(
            self.now + timedelta(seconds=registry.STS_REQUEST_LIFETIME_SECONDS)
        )
        token = etree.SubElement(
            security,
            ns.q(ns.WSSE, "BinarySecurityToken"),
            {"EncodingType": ns.BASE64_BINARY, "ValueType": ns.X509V3, ns.q(ns.WSU, "Id"): bst_id},
        )
        token.text = certificate_b64(self.certificate)
        sign(
            security,
            key=self.key,
            references=[xml_reference(timestamp, f"#{ts_id}"), xml_reference(body, f"#{body_id}")],
            key_info_xml=token_reference_key_info_xml(bst_id),
        )
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        # The answer's envelope is not signed; its assertion is, and parse_issue_response verifies that.
        return envelope


def claims(credential_type: str = registry.CREDENTIAL_TYPE_DEVICE) -> dict[str, Any]:
    """The claims the ATO's published reference client requests: the ABN and the credential type (D, a device:
    a machine credential), in the identity dialect."""
    return {
        "Dialect": registry.STS_CLAIMS_DIALECT,
        "ClaimType": [
            {"Uri": registry.STS_CLAIM_ABN, "Optional": False},
            {"Uri": registry.STS_CLAIM_CREDENTIAL_TYPE, "Optional": False, "Value": credential_type},
        ],
    }


def build_issue_request(
    *,
    abn: str,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    applies_to: str = registry.STS_APPLIES_TO_DEFAULT,
    credential_type: str = registry.CREDENTIAL_TYPE_DEVICE,
    sts_url: str = "",
    now: datetime | None = None,
) -> tuple[bytes, str]:
    """A signed WS-Trust 1.3 Issue request for a SAML 2.0 token, built by zeep from the WSDL and addressed to
    ``sts_url`` (wsa:To). The token is for the credential's ABN, which must be ``abn``. Returns (body, type)."""
    owner = certificate_abn(certificate)
    if owner != abn:
        raise ValueError(f"the credential is ABN {owner}'s, not {abn}'s: the token service issues for the credential")
    client = _client()
    with _lock:
        client.wsse = _CredentialSignature(key, certificate, now or datetime.now(UTC))
        try:
            service = client.create_service(_BINDING, sts_url or "https://sts.invalid/")
            # Client.create_message addresses a message with the WSDL's own address, whatever service it is given;
            # the binding's _create takes the service's options, so wsa:To is the token service actually asked.
            envelope, _ = service._binding._create(
                "Issue",
                (),
                {
                    "RequestType": ns.WST_ISSUE,
                    "TokenType": ns.SAML2_TOKEN_TYPE,
                    "AppliesTo": {"EndpointReference": {"Address": applies_to}},
                    "Claims": claims(credential_type),
                    "KeyType": ns.WST_BEARER,
                },
                client=client,
                options=service._binding_options,
            )
        finally:
            client.wsse = None
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"), CONTENT_TYPE


def parse_issue_response(body: bytes, *, sts_certificate: x509.Certificate, now: datetime | None = None) -> IssuedToken:
    """The token from an RSTR(C), read by zeep against the WSDL, after verifying the assertion's signature with
    the token service's certificate; TokenRejected for a SOAP Fault."""
    envelope = xmlsafe.parse(body)  # the hardened parser first: zeep only ever sees a tree that passed it
    soap_body = envelope.find(ns.q(_S12, "Body"))
    if envelope.tag != ns.q(_S12, "Envelope") or soap_body is None:
        raise MalformedMessage("the token service's answer is not a SOAP 1.2 envelope")
    fault = soap_body.find(ns.q(_S12, "Fault"))
    if fault is not None:
        raise TokenRejected(f"the token service refused: {fault_text(fault)}")
    client = _client()
    try:
        operation = client.create_service(_BINDING, "https://sts.invalid/")._binding.get("Issue")
        result = operation.process_reply(envelope)
    except (zeep.exceptions.Error, ValueError, TypeError, AttributeError) as exc:
        raise MalformedMessage(f"the token service's answer does not fit its WSDL: {exc}") from exc
    responses = result if isinstance(result, list) else getattr(result, "RequestSecurityTokenResponse", None) or []
    if not responses:
        raise MalformedMessage("the token service's answer has no RequestSecurityTokenResponse")
    rstr = responses[0]
    requested = getattr(rstr, "RequestedSecurityToken", None)
    assertion = getattr(requested, "_value_1", None)
    if not isinstance(assertion, etree._Element) or assertion.tag != ns.q(ns.SAML2, "Assertion"):
        raise MalformedMessage("the token service's answer has no SAML 2.0 assertion")
    verified = verify_assertion(assertion, issuer_certificate=sts_certificate, now=now)
    expires = verified.not_on_or_after
    lifetime = getattr(rstr, "Lifetime", None)
    lifetime_expires = parse_timestamp(getattr(lifetime, "Expires", None))
    if lifetime_expires is not None and lifetime_expires < expires:
        expires = lifetime_expires
    # Serialised as its own document: the assertion travels verbatim in every ebMS message from now on.
    token = etree.tostring(assertion)
    return IssuedToken(assertion=token, expires_at=expires, assertion_id=verified.id, subject_abn=verified.subject)
