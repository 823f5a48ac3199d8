"""Checks that must each hold on their own, not only behind another (issue 18, items 12 and 13): a pinned
certificate is still checked for its dates, and the parser itself expands no entity and reads no file when the
DOCTYPE check before it is passed by. Each test was seen to fail with its check taken out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from ato_gateway import wire
from ato_gateway.wire import CertificateExpired, SignatureInvalid, UnsafeXML, ns, wsse, xmlsafe

from .conftest import Pki, signed_ping


def test_a_pinned_certificate_past_its_not_after_is_refused_as_expired(pki: Pki) -> None:
    wsse.check_trust(pki.ato, pki.ato, now=pki.ato.not_valid_after_utc - timedelta(minutes=1))
    with pytest.raises(CertificateExpired, match="expired"):
        wsse.check_trust(pki.ato, pki.ato, now=pki.ato.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(CertificateExpired, match="not valid before"):
        wsse.check_trust(pki.ato, pki.ato, now=pki.ato.not_valid_before_utc - timedelta(seconds=1))


def _utf16_with_entities(secret_file: Path) -> bytes:
    """In UTF-16 the bytes hold no b"<!DOCTYPE", so the quick look before parsing does not see it."""
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        f'<!DOCTYPE r [<!ENTITY inner "EXPANDED"><!ENTITY outer SYSTEM "{secret_file.as_uri()}">]>'
        "<r><a>&inner;</a><b>&outer;</b></r>"
    )
    data = text.encode("utf-16")
    assert b"<!DOCTYPE" not in data and b"<!ENTITY" not in data
    return data


def test_the_parser_itself_expands_no_entity_and_reads_no_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("FILE-CONTENT")
    root = etree.fromstring(_utf16_with_entities(secret_file), xmlsafe._parser())
    text = etree.tostring(root, encoding="unicode")
    assert "EXPANDED" not in text and "FILE-CONTENT" not in text
    assert [node.name for node in root.iter(etree.Entity)] == ["inner", "outer"]  # left as references


def test_a_hidden_doctype_is_still_refused_after_parsing(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("FILE-CONTENT")
    with pytest.raises(UnsafeXML):
        xmlsafe.parse(_utf16_with_entities(secret_file))
    # No entity is referred to, so only the parsed tree's DOCTYPE tells.
    unused = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r/>'.encode("utf-16")
    with pytest.raises(UnsafeXML, match="DOCTYPE"):
        xmlsafe.parse(unused)


def _respell_last(body: bytes, old: bytes, new: bytes) -> bytes:
    """Change the message's own signature (the last in the envelope; the token's comes first)."""
    at = body.rindex(old)
    return body[:at] + new + body[at + len(old) :]


SIGNED_INFO_DAMAGE = {
    "SignedInfo missing": (
        lambda b: _respell_last(
            _respell_last(b, b"</ds:SignedInfo>", b"</ds:SignedInfX>"), b"<ds:SignedInfo ", b"<ds:SignedInfX "
        ),
        "no SignedInfo",
    ),
    "inclusive C14N": (
        lambda b: _respell_last(
            b,
            f'<ds:CanonicalizationMethod Algorithm="{ns.EXC_C14N}"'.encode(),
            b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"',
        ),
        "exclusive C14N",
    ),
    "RSA-SHA1 signature": (
        lambda b: _respell_last(
            b,
            f'<ds:SignatureMethod Algorithm="{ns.RSA_SHA256}"'.encode(),
            b'<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-md5"',
        ),
        "unsupported signature algorithm 'http://www.w3.org/2000/09/xmldsig#rsa-md5'",
    ),
    "SignatureValue not base64": (
        lambda b: _respell_last(b, b"<ds:SignatureValue>", b"<ds:SignatureValue>!"),
        "the SignatureValue is missing or not base64",
    ),
}


@pytest.mark.parametrize("damage", list(SIGNED_INFO_DAMAGE))
def test_a_signature_outside_the_profile_is_refused_with_its_reason(pki: Pki, damage: str) -> None:
    """Each check of the signature's form holds on its own and says what is wrong (the console shows it)."""
    spoil, reason = SIGNED_INFO_DAMAGE[damage]
    body, content_type = signed_ping(pki)
    spoilt = spoil(body)
    assert spoilt != body
    with pytest.raises(SignatureInvalid) as refused:
        wire.parse_request(spoilt, content_type, trust=pki.trust)
    assert reason in str(refused.value)


def test_the_parser_loads_no_external_subset(tmp_path: Path) -> None:
    """A hidden DOCTYPE's external subset is not even opened: a file that does not exist leaves no failed load in
    the parser's log. (With collect_ids=False libxml2 opened it: a named device or pipe would hang the reader.)"""
    missing = tmp_path / "missing.dtd"
    text = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r SYSTEM "{missing.as_uri()}"><r a="1"/>'
    parser = xmlsafe._parser()
    root = etree.fromstring(text.encode("utf-16"), parser)
    assert root.tag == "r"
    assert [entry.message for entry in parser.error_log if "failed to load" in entry.message] == []
    with pytest.raises(UnsafeXML, match="DOCTYPE"):
        xmlsafe.parse(text.encode("utf-16"))
