"""Keys, certificates and a token made once per test session (RSA key generation is the slow part)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ato_gateway import wire
from ato_gateway.wire import keystore, registry

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # real-world data kept in the repository (README there)
PROPERTIES = {"ProductID": "WIRE-TESTS", "BMS Vendor": "Tests", "BMS Name": "wire tests", "BMS Version": "1.0"}
PRACTICE_ABN = "53004085616"


@dataclass(frozen=True)
class Pki:
    ca_key: rsa.RSAPrivateKey
    ca: x509.Certificate
    ato_key: rsa.RSAPrivateKey
    ato: x509.Certificate
    key: rsa.RSAPrivateKey  # the practice's machine credential
    certificate: x509.Certificate
    token: bytes  # a SAML assertion from the token service, for the practice

    def trust(self, certificate: x509.Certificate) -> bool:
        certificate.verify_directly_issued_by(self.ca)
        wire.wsse.check_validity(certificate)
        return True


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca_key = keystore.new_rsa_key()
    ca = keystore.make_ca(ca_key, "Wire tests CA")
    ato_key = keystore.new_rsa_key()
    ato = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=ato_key.public_key(), common_name="ATO", abn=registry.ATO_ABN
    )
    key = keystore.new_rsa_key()
    certificate = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=key.public_key(), common_name="Practice", abn=PRACTICE_ABN
    )
    body, _ = wire.sts_build_issue_request(abn=PRACTICE_ABN, key=key, certificate=certificate)
    request = wire.sts_parse_issue_request(body, trust=lambda c: c.verify_directly_issued_by(ca))
    response = wire.sts_build_issue_response(request=request, issuer="https://sts.test", key=ato_key, certificate=ato)
    token = wire.sts_parse_issue_response(response, sts_certificate=ato).assertion
    return Pki(ca_key, ca, ato_key, ato, key, certificate, token)


def ping_document(text: str = "hello") -> bytes:
    return f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>{text}</Text></PingRequest>'.encode()


def signed_ping(
    pki: Pki, *, text: str = "hello", compress: bool = False, message_id: str | None = None
) -> tuple[bytes, str]:
    return wire.build_signed_request(
        service_action="PING.Ping.001.00",
        message_id=message_id or wire.new_message_id(),
        conversation_id=str(uuid.uuid4()),
        from_abn=PRACTICE_ABN,
        payloads=[("PingRequest", ping_document(text))],
        compress=compress,
        key=pki.key,
        certificate=pki.certificate,
        saml_assertion=pki.token,
        properties=PROPERTIES,
    )
