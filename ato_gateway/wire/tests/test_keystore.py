"""The real ATO keystore from the fixtures, and keystores we write ourselves."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from ato_gateway.wire import KeystoreError, keystore

from .conftest import FIXTURES, Pki

ATO_KEYSTORE = FIXTURES / "keystores" / "ato-usi-test-keystore.xml"


@pytest.fixture(scope="module")
def ato_keystore() -> bytes:
    if not ATO_KEYSTORE.exists():
        pytest.fail(f"the fixture keystore is missing: {ATO_KEYSTORE}")
    return ATO_KEYSTORE.read_bytes()


def test_the_real_ato_keystore_lists_both_expired_credentials(ato_keystore: bytes) -> None:
    credentials = keystore.list_credentials(ato_keystore)
    assert [(c.abn, c.legal_name) for c in credentials] == [
        ("11000002568", "INGLETON153"),
        ("27809366375", "USIMachine"),
    ]
    assert all(c.expired() for c in credentials)
    assert credentials[0].not_after == datetime(2024, 9, 11, 20, 10, 21, tzinfo=UTC)
    assert credentials[0].serial_number == 571451443599145771493974786782510258828333038440
    assert credentials[0].sha1_fingerprint == "w8/euNPtW3atryCUQr0d4hCRsus="
    assert credentials[0].id == "ABRD:11000002568_INGLETON153"


def test_the_real_ato_keystore_decrypts_with_its_password_and_reads_ber_quietly(ato_keystore: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cryptography's "falling back to parsing as BER" warning would fail this
        for abn in ("11000002568", "27809366375"):
            credential = keystore.load_credential(ato_keystore, "Password1!", abn=abn)
            assert keystore.certificate_abn(credential.certificate) == abn
            assert credential.private_key.key_size == 2048
            assert credential.private_key.public_key() == credential.certificate.public_key()
            assert [c.subject.rfc4514_string().split(",")[0] for c in credential.chain[1:]] == [
                "CN=ATO Sub Certification Authority Preprod02",
                "CN=ATO Root Certification Authority PreProd",
            ]
            credential.certificate.verify_directly_issued_by(credential.chain[1])
            assert keystore.describe(credential.certificate).sha1_fingerprint == credential.info.sha1_fingerprint


def test_wrong_password_says_so(ato_keystore: bytes) -> None:
    with pytest.raises(KeystoreError, match="wrong password"):
        keystore.load_credential(ato_keystore, "password1!", abn="11000002568")


def test_several_credentials_need_a_choice(ato_keystore: bytes) -> None:
    with pytest.raises(KeystoreError, match="several credentials"):
        keystore.load_credential(ato_keystore, "Password1!")


def test_a_keystore_we_write_reads_back(pki: Pki) -> None:
    data = keystore.write_keystore([(pki.key, [pki.certificate, pki.ca])], "s3cret")
    [info] = keystore.list_credentials(data)
    assert info.abn == "53004085616" and info.serial_number == pki.certificate.serial_number
    credential = keystore.load_credential(data, "s3cret")
    assert credential.certificate == pki.certificate and credential.chain == (pki.certificate, pki.ca)
    assert credential.private_key.private_numbers() == pki.key.private_numbers()
    with pytest.raises(KeystoreError):
        keystore.load_credential(data, "not it")


def test_pkcs12(pki: Pki) -> None:
    data = pkcs12.serialize_key_and_certificates(
        b"p", pki.key, pki.certificate, [pki.ca], BestAvailableEncryption(b"pw")
    )
    credential = keystore.load_pkcs12(data, "pw")
    assert credential.certificate == pki.certificate and credential.chain == (pki.certificate, pki.ca)
    assert credential.info.abn == "53004085616"
    with pytest.raises(KeystoreError):
        keystore.load_pkcs12(data, "wrong")


def test_ber_with_indefinite_lengths_inside_a_certificate_bag_is_converted(pki: Pki) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    der = pki.certificate.public_bytes(Encoding.DER)
    # A certificate written with an indefinite outer length (as some BER encoders do) still reads as the same DER.
    header_length = 4  # 30 82 xx xx
    ber_cert = b"\x30\x80" + der[header_length:] + b"\x00\x00"
    signed_data = (
        b"\x30\x80\x02\x01\x01\x31\x00\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01\x00\x00"
        + b"\xa0\x80"
        + ber_cert
        + b"\x00\x00"
        + b"\x31\x00\x00\x00"
    )
    content_info = b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x80" + signed_data + b"\x00\x00\x00\x00"
    assert keystore.load_pkcs7_certificates(content_info) == [pki.certificate]
