"""The stand-in ATO's own PKI, generated once into its data directory.

On first start with an empty directory: a CA (RSA 2048), a signing certificate for the replies and the token
service, and a demo machine credential for the demo practice, written as an ATO-format keystore. Several gunicorn
workers may start at once, so generation happens under an exclusive file lock, files are written under temporary
names and renamed into place, and ``ato-signing.pem`` (which tests and the gateway wait for) comes last.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from ato_gateway.wire import keystore, registry

DEMO_ABN = "53004085616"
DEMO_LEGAL_NAME = "Harbour Tax Demo Device"
DEMO_KEYSTORE_PASSWORD = "demo-keystore-password"  # noqa: S105 - a published demo password, as the ATO's is

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SIGNING_CERT = "ato-signing.pem"
SIGNING_KEY = "ato-signing-key.pem"
DEMO_KEYSTORE = "demo-keystore.xml"


@dataclass(frozen=True)
class Pki:
    ca_key: rsa.RSAPrivateKey
    ca_certificate: x509.Certificate
    signing_key: rsa.RSAPrivateKey
    signing_certificate: x509.Certificate


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    if private:
        temporary.chmod(0o600)
    temporary.replace(path)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    # Unencrypted: this is a local stand-in whose keys protect nothing real; the directory is the boundary.
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA key")
    return key


def ensure(data_dir: Path) -> Pki:
    """Load the PKI from ``data_dir``, generating whatever is missing first."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / SIGNING_CERT).exists() or not (data_dir / DEMO_KEYSTORE).exists():
        with open(data_dir / ".pki.lock", "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (data_dir / SIGNING_CERT).exists() or not (data_dir / DEMO_KEYSTORE).exists():
                _generate(data_dir)
    return Pki(
        ca_key=_load_key(data_dir / CA_KEY),
        ca_certificate=x509.load_pem_x509_certificate((data_dir / CA_CERT).read_bytes()),
        signing_key=_load_key(data_dir / SIGNING_KEY),
        signing_certificate=x509.load_pem_x509_certificate((data_dir / SIGNING_CERT).read_bytes()),
    )


def _generate(data_dir: Path) -> None:
    if (data_dir / CA_KEY).exists() and (data_dir / CA_CERT).exists():
        ca_key = _load_key(data_dir / CA_KEY)
        ca = x509.load_pem_x509_certificate((data_dir / CA_CERT).read_bytes())
    else:
        ca_key = keystore.new_rsa_key()
        ca = keystore.make_ca(ca_key, "Stand-in ATO Certification Authority")
        _write(data_dir / CA_KEY, _pem_key(ca_key), private=True)
        _write(data_dir / CA_CERT, ca.public_bytes(Encoding.PEM))
    demo_key = keystore.new_rsa_key()
    demo = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=demo_key.public_key(), common_name=DEMO_LEGAL_NAME, abn=DEMO_ABN
    )
    _write(data_dir / DEMO_KEYSTORE, keystore.write_keystore([(demo_key, [demo, ca])], DEMO_KEYSTORE_PASSWORD))
    signing_key = keystore.new_rsa_key()
    signing = keystore.issue_certificate(
        ca_key=ca_key,
        ca_certificate=ca,
        public_key=signing_key.public_key(),
        common_name="Stand-in ATO SBR signing",
        abn=registry.ATO_ABN,
    )
    _write(data_dir / SIGNING_KEY, _pem_key(signing_key), private=True)
    _write(data_dir / SIGNING_CERT, signing.public_bytes(Encoding.PEM))
