"""Machine credentials: the ATO ``keystore.xml`` (read and write), PKCS#12, and certificate helpers.

An ATO keystore holds one ``credential`` per machine credential: the certificate chain as base64 PKCS#7 and the
private key as base64 PKCS#8 EncryptedPrivateKeyInfo. The ATO writes the PKCS#7 in BER with indefinite lengths,
which ``cryptography`` reads only through a fallback it warns about and may drop; so the certificates are taken out
of the PKCS#7 structure here with a small BER walker (DER is a subset of BER, so our own DER files read the same
way) and each certificate is parsed as the DER it always is.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
    pkcs7,
    pkcs12,
)
from cryptography.x509.oid import NameOID
from lxml import etree

from . import xmlsafe
from .errors import KeystoreError

KEYSTORE_NS = "http://auth.abr.gov.au/credential/xsd/SBRCredentialStore"
_PKCS7_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # OID 1.2.840.113549.1.7.2, DER-encoded


@dataclass(frozen=True)
class CredentialInfo:
    """What a keystore says about one credential, readable without the password."""

    id: str
    credential_type: str
    abn: str
    legal_name: str
    serial_number: int
    not_before: datetime
    not_after: datetime
    sha1_fingerprint: str  # base64, as the keystore writes it

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.not_after


@dataclass(frozen=True)
class Credential:
    info: CredentialInfo
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # the leaf first, then its issuers


# --- PKCS#7 certificates, BER or DER ---


def _header(data: bytes, pos: int) -> tuple[int, int, int | None]:
    """(tag byte, content start, content length or None for indefinite) of the TLV at ``pos``."""
    if pos + 2 > len(data):
        raise KeystoreError("PKCS#7 data ends inside a tag")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise KeystoreError("PKCS#7 data uses a multi-byte tag, which certificates never need")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, pos, first
    if first == 0x80:
        if not tag & 0x20:
            raise KeystoreError("indefinite length on a primitive BER value")
        return tag, pos, None
    count = first & 0x7F
    if count > 4 or pos + count > len(data):
        raise KeystoreError("PKCS#7 length field is out of range")
    return tag, pos + count, int.from_bytes(data[pos : pos + count], "big")


def _end(data: bytes, pos: int) -> int:
    """The position just after the TLV at ``pos``."""
    _, start, length = _header(data, pos)
    if length is not None:
        if start + length > len(data):
            raise KeystoreError("PKCS#7 value runs past the end of the data")
        return start + length
    cursor = start
    while data[cursor : cursor + 2] != b"\x00\x00":
        if cursor >= len(data):
            raise KeystoreError("PKCS#7 indefinite-length value has no end-of-contents")
        cursor = _end(data, cursor)
    return cursor + 2


def _children(data: bytes, pos: int) -> list[int]:
    """Positions of the children of the constructed TLV at ``pos``."""
    _, start, length = _header(data, pos)
    stop = start + length if length is not None else None
    found: list[int] = []
    cursor = start
    while (cursor < stop) if stop is not None else (data[cursor : cursor + 2] != b"\x00\x00"):
        found.append(cursor)
        cursor = _end(data, cursor)
    return found


def _to_der(data: bytes, pos: int) -> bytes:
    """Re-encode one BER TLV with definite lengths (certificates are DER inside, so this is rarely needed)."""
    tag, start, length = _header(data, pos)
    if length is not None and not (tag & 0x20):
        return data[pos : start + length]
    content = b"".join(_to_der(data, child) for child in _children(data, pos)) if tag & 0x20 else b""
    return bytes([tag]) + _der_length(len(content)) + content


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def load_pkcs7_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PKCS#7 SignedData ("degenerate" certificate bag), BER or DER, in file order."""
    try:
        content_info = _children(data, 0)
        if len(content_info) < 2 or data[content_info[0] : content_info[0] + len(_PKCS7_SIGNED_DATA)] != (
            _PKCS7_SIGNED_DATA
        ):
            raise KeystoreError("not a PKCS#7 SignedData structure")
        explicit = content_info[1]
        signed_data = _children(data, explicit)[0]
        certificates: list[x509.Certificate] = []
        for field_pos in _children(data, signed_data):
            if data[field_pos] == 0xA0:  # [0] IMPLICIT SET OF Certificate
                for cert_pos in _children(data, field_pos):
                    _, start, length = _header(data, cert_pos)
                    raw = data[cert_pos : start + length] if length is not None else _to_der(data, cert_pos)
                    certificates.append(x509.load_der_x509_certificate(raw))
        return certificates
    except (IndexError, ValueError) as exc:
        raise KeystoreError(f"the PKCS#7 certificate bag cannot be read: {exc}") from exc


def order_chain(certificates: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf first, then each issuer: the leaf is the certificate that issued no other in the bag."""
    if len(certificates) <= 1:
        return list(certificates)
    issuers = {c.issuer for c in certificates if c.issuer != c.subject}
    leaves = [c for c in certificates if c.subject not in issuers]
    if len(leaves) != 1:
        return list(certificates)
    chain = [leaves[0]]
    by_subject = {c.subject: c for c in certificates}
    while chain[-1].issuer != chain[-1].subject and chain[-1].issuer in by_subject:
        issuer = by_subject[chain[-1].issuer]
        if issuer in chain:
            break
        chain.append(issuer)
    return chain + [c for c in certificates if c not in chain]


# --- reading ---


def _text(element: etree._Element, local: str) -> str:
    found = element.find(f"{{{KEYSTORE_NS}}}{local}")
    return (found.text or "").strip() if found is not None else ""


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _credentials(data: bytes) -> list[etree._Element]:
    root = xmlsafe.parse(data)
    if root.tag != f"{{{KEYSTORE_NS}}}credentialStore":
        raise KeystoreError(f"not an ATO keystore: the root element is {root.tag}")
    return list(root.iter(f"{{{KEYSTORE_NS}}}credential"))


def _info(element: etree._Element) -> CredentialInfo:
    try:
        return CredentialInfo(
            id=element.get("id", ""),
            credential_type=element.get("credentialType", ""),
            abn=_text(element, "abn"),
            legal_name=_text(element, "legalName"),
            serial_number=int(_text(element, "serialNumber") or "0"),
            not_before=_parse_time(_text(element, "notBefore")),
            not_after=_parse_time(_text(element, "notAfter")),
            sha1_fingerprint=_text(element, "sha1fingerprint"),
        )
    except ValueError as exc:
        raise KeystoreError(f"credential {element.get('id')!r} has a malformed field: {exc}") from exc


def list_credentials(data: bytes) -> list[CredentialInfo]:
    """Every credential in an ATO keystore.xml (no password needed)."""
    return [_info(element) for element in _credentials(data)]


def load_credential(
    data: bytes, password: str | bytes, *, abn: str | None = None, credential_id: str | None = None
) -> Credential:
    """Decrypt one credential: the only one, or the one with this ABN or id."""
    elements = _credentials(data)
    if abn is not None:
        elements = [e for e in elements if _text(e, "abn") == abn]
    if credential_id is not None:
        elements = [e for e in elements if e.get("id") == credential_id]
    if not elements:
        raise KeystoreError("no credential in the keystore matches")
    if len(elements) > 1:
        raise KeystoreError("the keystore holds several credentials: name one by abn or credential_id")
    element = elements[0]
    info = _info(element)
    secret = password.encode("utf-8") if isinstance(password, str) else password
    try:
        key = load_der_private_key(base64.b64decode(_text(element, "protectedPrivateKey")), secret)
    except (ValueError, TypeError) as exc:
        raise KeystoreError(f"cannot decrypt credential {info.id!r}: wrong password or damaged key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeystoreError(f"credential {info.id!r} holds a non-RSA key")
    chain = order_chain(load_pkcs7_certificates(base64.b64decode(_text(element, "publicCertificate"))))
    if not chain:
        raise KeystoreError(f"credential {info.id!r} has no certificate")
    public = _spki(key.public_key())
    leaf = next((c for c in chain if _spki(c.public_key()) == public), None)
    if leaf is None:
        raise KeystoreError(f"credential {info.id!r}: no certificate matches its private key")
    if chain[0] is not leaf:
        chain = [leaf] + [c for c in chain if c is not leaf]
    return Credential(info=info, private_key=key, certificate=leaf, chain=tuple(chain))


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined,no-any-return]


def load_pkcs12(data: bytes, password: str | bytes | None) -> Credential:
    secret = password.encode("utf-8") if isinstance(password, str) else password
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, secret)
    except ValueError as exc:
        raise KeystoreError(f"cannot read the PKCS#12 file: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or certificate is None:
        raise KeystoreError("the PKCS#12 file must hold an RSA key and its certificate")
    chain = (certificate, *order_chain(list(extra)))
    return Credential(info=describe(certificate), private_key=key, certificate=certificate, chain=chain)


def describe(certificate: x509.Certificate, credential_id: str | None = None) -> CredentialInfo:
    abn = certificate_abn(certificate) or ""
    name = _name(certificate)
    return CredentialInfo(
        id=credential_id or f"ABRD:{abn}_{name}",
        credential_type="D",
        abn=abn,
        legal_name=name,
        serial_number=certificate.serial_number,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        sha1_fingerprint=base64.b64encode(certificate.fingerprint(hashes.SHA1())).decode("ascii"),  # noqa: S303
    )


def _name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@functools.lru_cache(maxsize=256)  # read on every message received; reading a subject builds Python objects
def certificate_abn(certificate: x509.Certificate) -> str | None:
    """The ABN of an ATO machine credential certificate: its subject O (``O=11000002568``), 11 digits."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        value = str(attribute.value).strip()
        if len(value) == 11 and value.isdigit():
            return value
    return None


# --- writing ---


def write_keystore(credentials: list[tuple[rsa.RSAPrivateKey, list[x509.Certificate]]], password: str | bytes) -> bytes:
    """An ATO-format keystore.xml: per credential, the chain (leaf first) as DER PKCS#7 and the key as PKCS#8
    encrypted with the best scheme ``cryptography`` offers (PBES2/AES-256), which it also reads back.

    ``integrityValue`` is [ours]: a SHA-1 over the salt and both blobs. The ATO's algorithm is not published, so
    readers (ours included) do not check it.
    """
    secret = password.encode("utf-8") if isinstance(password, str) else password
    root = etree.Element(f"{{{KEYSTORE_NS}}}credentialStore", nsmap={None: KEYSTORE_NS})
    etree.SubElement(root, f"{{{KEYSTORE_NS}}}salt").text = base64.b64encode(secrets.token_bytes(20)).decode()
    holder = etree.SubElement(root, f"{{{KEYSTORE_NS}}}credentials")
    for key, chain in credentials:
        info = describe(chain[0])
        public = base64.b64encode(pkcs7.serialize_certificates(list(chain), Encoding.DER)).decode("ascii")
        protected = base64.b64encode(
            key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, BestAvailableEncryption(secret))
        ).decode("ascii")
        salt = secrets.token_bytes(20)
        integrity = hashlib.sha1(salt + public.encode() + protected.encode(), usedforsecurity=False).digest()
        credential = etree.SubElement(
            holder,
            f"{{{KEYSTORE_NS}}}credential",
            {
                "integrityValue": base64.b64encode(integrity).decode(),
                "credentialType": info.credential_type,
                "id": info.id,
                "credentialSalt": base64.b64encode(salt).decode(),
            },
        )
        fields = [
            ("name1", info.legal_name),
            ("name2", ""),
            ("abn", info.abn),
            ("legalName", info.legal_name),
            ("personId", ""),
            ("serialNumber", str(info.serial_number)),
            ("creationDate", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")),
            ("notBefore", info.not_before.isoformat(timespec="seconds")),
            ("notAfter", info.not_after.isoformat(timespec="seconds")),
            ("sha1fingerprint", info.sha1_fingerprint),
            ("publicCertificate", public),
            ("protectedPrivateKey", protected),
        ]
        for name, value in fields:
            etree.SubElement(credential, f"{{{KEYSTORE_NS}}}{name}").text = value or None
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True, pretty_print=True)


# --- generating (the stand-in ATO's PKI and tests) ---


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_ca(
    key: rsa.RSAPrivateKey,
    common_name: str,
    *,
    valid_for: timedelta = timedelta(days=3650),
    now: datetime | None = None,
) -> x509.Certificate:
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "AU"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stand-in ATO"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_certificate(
    *,
    ca_key: rsa.RSAPrivateKey,
    ca_certificate: x509.Certificate,
    public_key: rsa.RSAPublicKey,
    common_name: str,
    abn: str | None = None,
    organisation: str | None = None,
    not_before: datetime | None = None,
    valid_for: timedelta = timedelta(days=730),
) -> x509.Certificate:
    """An end-entity certificate. With ``abn`` it is shaped like an ATO machine credential (O=<ABN>,
    dnQualifier=ABR), so ``certificate_abn`` reads it."""
    start = not_before or (datetime.now(UTC) - timedelta(minutes=5))
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "AU")]
    if abn is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, abn))
    elif organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    if abn is not None:
        attributes.append(x509.NameAttribute(NameOID.DN_QUALIFIER, "ABR"))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
