"""WS-Security: what we sign verifies (with our code and with xmlsec1), and any change is caught."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ato_gateway import wire
from ato_gateway.wire import events, keystore, mime, ns, registry, wsse

from .conftest import PRACTICE_ABN, PROPERTIES, Pki, ping_document, signed_ping

# zeep's BinarySignature signs only the SOAP Body and the Timestamp: it leaves eb:Messaging unsigned, so a message
# whose Action (or MessageId, or From party) was changed in transit still verifies there. It has no SwA attachment
# transform either. We do not use it for ebMS3; test_tampering_is_refused shows our verifier catches both.


def _resign(
    body: bytes,
    content_type: str,
    key: object,
    *,
    drop: str | None = None,
    digest: str = ns.SHA256,
    mutate: Callable[[etree._Element], None] | None = None,
) -> tuple[bytes, str]:
    """Re-sign a message the way a careless or hostile signer would: without one reference (``drop``, a URI
    prefix), with other digests, or after changing the envelope (``mutate``). The signature itself is valid."""
    root, attachments = mime.parse_package(body, content_type)
    envelope = etree.fromstring(root.body)
    if mutate:
        mutate(envelope)
    ids = wsse.id_index(envelope)
    signature = envelope.find(f".//{{{ns.WSSE}}}Security/{{{ns.DS}}}Signature")
    assert signature is not None
    signed_info = signature.find(f"{{{ns.DS}}}SignedInfo")
    assert signed_info is not None
    for reference in signed_info.findall(f"{{{ns.DS}}}Reference"):
        uri = reference.get("URI", "")
        if drop and uri.startswith(drop):
            signed_info.remove(reference)
            continue
        if uri.startswith("cid:"):
            octets = attachments[mime.content_id_from_url(uri) or ""].body
        else:
            octets = wsse.exc_c14n(ids[uri[1:]])
        reference.find(f"{{{ns.DS}}}DigestMethod").set("Algorithm", digest)  # type: ignore[union-attr]
        reference.find(f"{{{ns.DS}}}DigestValue").text = wsse.digest_b64(octets, digest)  # type: ignore[union-attr]
    value = key.sign(wsse.exc_c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[attr-defined]
    signature.find(f"{{{ns.DS}}}SignatureValue").text = base64.b64encode(value).decode()  # type: ignore[union-attr]
    soap = etree.tostring(envelope)
    if not attachments:
        return soap, content_type
    return mime.build_multipart(soap, list(attachments.values()), root_content_id="root@x")


def test_request_round_trip(pki: Pki) -> None:
    message_id = wire.new_message_id()
    body, content_type = signed_ping(pki, text="round trip", compress=True, message_id=message_id)
    assert content_type.startswith("multipart/related;")
    request = wire.parse_request(body, content_type, trust=pki.trust, token_issuer=pki.ato)
    assert request.kind == "user" and request.message_id == message_id
    assert request.payloads == {"PingRequest": ping_document("round trip")}  # gunzipped
    assert request.parts[0].transmitted != request.parts[0].content
    assert request.from_abn == request.signer_abn == PRACTICE_ABN and request.agent_number is None
    assert request.saml is not None and request.saml.abn == PRACTICE_ABN
    assert [r.uri.split("-")[0] for r in request.references] == [
        "#id",
        f"#{request.saml.id}".split("-")[0],
        "#id",
        "cid:PingRequest",
    ]
    assert all(r.digest_method == ns.SHA256 for r in request.references)
    assert request.properties == PROPERTIES


def test_a_retry_is_recognised_as_the_same_message(pki: Pki) -> None:
    message_id = wire.new_message_id()
    conversation = str(uuid.uuid4())

    def build(text: str, compress: bool) -> wire.InboundRequest:
        body, content_type = wire.build_signed_request(
            service_action=registry.PING,
            message_id=message_id,
            conversation_id=conversation,
            from_abn=PRACTICE_ABN,
            payloads=[("PingRequest", ping_document(text))],
            compress=compress,
            key=pki.key,
            certificate=pki.certificate,
            saml_assertion=pki.token,
            properties=PROPERTIES,
        )
        return wire.parse_request(body, content_type, trust=pki.trust)

    first, retry, changed = build("a", False), build("a", True), build("b", False)
    assert first.fingerprint == retry.fingerprint != changed.fingerprint


def test_response_receipt_and_error_round_trips(pki: Pki) -> None:
    request = wire.parse_request(*signed_ping(pki), trust=pki.trust)
    event = events.build_event([events.EventItem("GEN.OK", "Information", "fine")])
    body, content_type = wire.build_signed_response(
        message_id="r1@ato",
        ref_to_message_id=request.message_id,
        conversation_id=request.conversation_id or "",
        service=request.service or "",
        action=request.action or "",
        to_abn=PRACTICE_ABN,
        payloads=[("PingResponse", b"<PingResponse/>"), ("Event", event)],
        compress=True,
        key=pki.ato_key,
        certificate=pki.ato,
    )
    reply = wire.parse_response(body, content_type, ato_certificate=pki.ato)
    assert (reply.kind, reply.message_id, reply.ref_to_message_id) == ("user", "r1@ato", request.message_id)
    assert reply.payloads["PingResponse"] == b"<PingResponse/>"
    assert [(e.code, e.severity) for e in reply.event_items] == [("GEN.OK", "Information")]
    assert reply.maximum_severity == "Information"
    reply.raise_for_errors()

    body, content_type = wire.build_signed_receipt(
        request=request, message_id="r2@ato", key=pki.ato_key, certificate=pki.ato
    )
    receipt = wire.parse_response(body, content_type, ato_certificate=pki.ato)
    assert receipt.kind == "receipt" and receipt.ref_to_message_id == request.message_id
    assert receipt.receipt_references == request.references

    for code, permanent in (("EBMS:0006", False), ("EBMS:0101", True)):
        body, content_type = wire.build_signed_error(
            errors=[wire.standard_error(code, "why", ref_to_message_id=request.message_id)],
            message_id="r3@ato",
            ref_to_message_id=request.message_id,
            key=pki.ato_key,
            certificate=pki.ato,
        )
        error = wire.parse_response(body, content_type, ato_certificate=pki.ato)
        assert error.kind == "error" and [(e.code, e.detail) for e in error.errors] == [(code, "why")]
        with pytest.raises(wire.EbmsFault) as fault:
            error.raise_for_errors()
        assert fault.value.permanent is permanent


def _flip_attachment_byte(body: bytes) -> bytes:
    document = ping_document("tamper")
    return body.replace(document, document.replace(b"tamper", b"tamPer"))


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "Action": lambda b: b.replace(b"200704/test</eb:Action>", b"200704/tesT</eb:Action>"),
    "MessageId": lambda b: b.replace(b"<eb:MessageId>", b"<eb:MessageId>x"),
    "Service": lambda b: b.replace(b"200704/service</eb:Service>", b"200704/servicE</eb:Service>"),
    "From party": lambda b: b.replace(PRACTICE_ABN.encode() + b"</eb:PartyId>", b"53004085617</eb:PartyId>", 1),
    "Body": lambda b: b.replace(b"></S12:Body>", b">x</S12:Body>"),
    "attachment byte": _flip_attachment_byte,
    "SAML assertion": lambda b: b.replace(b">53004085616</saml2:NameID>", b">53004085617</saml2:NameID>"),
    "SAML attribute": lambda b: b.replace(b"<saml2:AttributeValue>D<", b"<saml2:AttributeValue>E<"),
}


@pytest.mark.parametrize("part", list(TAMPERINGS))
def test_tampering_is_refused(pki: Pki, part: str) -> None:
    body, content_type = signed_ping(pki, text="tamper")
    tampered = TAMPERINGS[part](body)
    assert tampered != body, "the tampering did not apply"
    with pytest.raises(wire.SignatureInvalid, match=r"digest of .* does not match"):
        wire.parse_request(tampered, content_type, trust=pki.trust)


def test_a_changed_signature_value_is_refused(pki: Pki) -> None:
    body, content_type = signed_ping(pki)
    start = body.rindex(b"<ds:SignatureValue>") + len("<ds:SignatureValue>")  # the message's, not the token's
    tampered = body[:start] + (b"A" if body[start : start + 1] != b"A" else b"B") + body[start + 1 :]
    with pytest.raises(wire.SignatureInvalid, match="signature value does not verify"):
        wire.parse_request(tampered, content_type, trust=pki.trust)


def test_an_untrusted_or_wrong_certificate_is_refused(pki: Pki) -> None:
    stranger_key = keystore.new_rsa_key()
    stranger = keystore.issue_certificate(
        ca_key=stranger_key,
        ca_certificate=pki.ca,
        public_key=stranger_key.public_key(),
        common_name="Not the CA's",
        abn=PRACTICE_ABN,
    )  # claims the CA, signed by itself
    with pytest.raises(wire.CertificateUntrusted):
        wire.parse_request(*signed_ping(pki), trust=stranger)
    body, content_type = wire.build_signed_request(
        service_action=registry.PING,
        message_id="a@b",
        conversation_id="c",
        from_abn=PRACTICE_ABN,
        payloads=[("PingRequest", ping_document())],
        key=stranger_key,
        certificate=stranger,
        saml_assertion=None,
        properties=PROPERTIES,
    )
    with pytest.raises(wire.CertificateUntrusted, match="not trusted"):
        wire.parse_request(body, content_type, trust=pki.trust)
    reply = wire.build_signed_receipt(
        request=wire.parse_request(*signed_ping(pki), trust=pki.trust),
        message_id="r@ato",
        key=pki.ato_key,
        certificate=pki.ato,
    )
    with pytest.raises(wire.CertificateUntrusted, match="not by the expected certificate"):
        wire.parse_response(*reply, ato_certificate=pki.certificate)


@pytest.mark.parametrize(
    ("drop", "what"),
    [("#id-messaging", "Messaging"), ("#id-body", "Body"), ("#_", "Assertion"), ("cid:", "attachment")],
)
def test_a_signature_that_leaves_out_a_required_part_is_refused(pki: Pki, drop: str, what: str) -> None:
    body, content_type = _resign(*signed_ping(pki), pki.key, drop=drop)
    with pytest.raises(wire.SignatureInvalid, match=f"does not cover {what}"):
        wire.parse_request(body, content_type, trust=pki.trust)


def test_sha1_digests_are_accepted(pki: Pki) -> None:
    body, content_type = _resign(*signed_ping(pki), pki.key, digest=ns.SHA1)
    request = wire.parse_request(body, content_type, trust=pki.trust, token_issuer=pki.ato)
    assert {r.digest_method for r in request.references} == {ns.SHA1}


def _rewrite(body: bytes, content_type: str, change: Callable[[etree._Element], None]) -> tuple[bytes, str]:
    """Change the envelope without re-signing (what an attacker in the middle can do)."""
    root, attachments = mime.parse_package(body, content_type)
    envelope = etree.fromstring(root.body)
    change(envelope)
    return mime.build_multipart(etree.tostring(envelope), list(attachments.values()), root_content_id="root@x")


@pytest.mark.parametrize("keep_id", [True, False])
def test_signature_wrapping_is_refused(pki: Pki, keep_id: bool) -> None:
    def wrap(envelope: etree._Element) -> None:
        # The classic wrapping attack: a forged eb:Messaging where the receiver looks, and the signed original
        # moved where the signature still finds it by its Id, so that every digest still matches.
        header = envelope.find(f"{{{ns.SOAP12}}}Header")
        assert header is not None
        original = header.find(f"{{{ns.EB}}}Messaging")
        assert original is not None
        forged = deepcopy(original)
        forged.find(f".//{{{ns.EB}}}Action").text = "Remove.004.00"  # type: ignore[union-attr]
        if not keep_id:
            del forged.attrib[f"{{{ns.WSU}}}Id"]
        header.insert(0, forged)
        header.find(f"{{{ns.WSSE}}}Security").append(original)  # type: ignore[union-attr]

    body, content_type = _rewrite(*signed_ping(pki), wrap)
    expected = "occurs more than once" if keep_id else "does not cover Messaging"
    with pytest.raises(wire.SignatureInvalid, match=expected):
        wire.parse_request(body, content_type, trust=pki.trust)


def test_an_unsigned_message_is_refused(pki: Pki) -> None:
    envelope = f'<S12:Envelope xmlns:S12="{ns.SOAP12}"><S12:Header/><S12:Body/></S12:Envelope>'.encode()
    with pytest.raises(wire.InvalidHeader):
        wire.parse_response(envelope, "application/soap+xml", ato_certificate=pki.ato)
    pull, content_type = wire.build_signed_pull(
        message_id="p@x", mpc="m", key=pki.key, certificate=pki.certificate, saml_assertion=None
    )
    unsigned = re.sub(rb"<ds:Signature .*</ds:Signature>", b"", pull, flags=re.DOTALL)
    with pytest.raises(wire.SignatureInvalid, match="expected one ds:Signature"):
        wire.parse_request(unsigned, content_type, trust=pki.trust)


# --- an independent implementation: xmlsec1 ---

XMLSEC1 = shutil.which("xmlsec1")
SIGNATURE_XPATH = (
    "/*[local-name()='Envelope']/*[local-name()='Header']/*[local-name()='Security']/*[local-name()='Signature']"
)


def _xmlsec1(
    document: bytes, certificate_pem: bytes, tmp_path: Path, *, node_xpath: str | None
) -> subprocess.CompletedProcess[str]:
    if XMLSEC1 is None:
        pytest.fail("xmlsec1 is not installed (apt-get install xmlsec1): the independent signature check needs it")
    (tmp_path / "doc.xml").write_bytes(document)
    (tmp_path / "signer.pem").write_bytes(certificate_pem)
    arguments = [
        XMLSEC1,
        "--verify",
        "--pubkey-cert-pem",
        str(tmp_path / "signer.pem"),
        # Which attributes are IDs: wsu:Id on eb:Messaging and the Body, ID on the SAML assertion.
        "--id-attr:Id",
        f"{ns.EB}:Messaging",
        "--id-attr:Id",
        f"{ns.SOAP12}:Body",
        "--id-attr:ID",
        f"{ns.SAML2}:Assertion",
        "--enabled-reference-uris",
        "same-doc",
    ]
    if node_xpath:
        arguments += ["--node-xpath", node_xpath]
    return subprocess.run([*arguments, str(tmp_path / "doc.xml")], capture_output=True, text=True, timeout=60)


def _no_attachment_messages(pki: Pki) -> dict[str, tuple[bytes, bytes]]:
    """Messages without attachments (xmlsec1 has no SwA transform), with the PEM of their signer."""
    pull, _ = wire.build_signed_pull(
        message_id=wire.new_message_id(),
        mpc=registry.mpc_for(PRACTICE_ABN),
        key=pki.key,
        certificate=pki.certificate,
        saml_assertion=pki.token,
    )
    request = wire.parse_request(*signed_ping(pki), trust=pki.trust)
    receipt, _ = wire.build_signed_receipt(request=request, message_id="r@ato", key=pki.ato_key, certificate=pki.ato)
    error, _ = wire.build_signed_error(
        errors=[wire.standard_error("EBMS:0004", "a & b <c>")], message_id="e@ato", key=pki.ato_key, certificate=pki.ato
    )
    practice, ato = pki.certificate.public_bytes(Encoding.PEM), pki.ato.public_bytes(Encoding.PEM)
    return {"pull with SAML token": (pull, practice), "receipt": (receipt, ato), "error": (error, ato)}


def test_xmlsec1_verifies_every_reference_of_our_signatures(pki: Pki, tmp_path: Path) -> None:
    for name, (document, pem) in _no_attachment_messages(pki).items():
        result = _xmlsec1(document, pem, tmp_path, node_xpath=SIGNATURE_XPATH)
        assert result.returncode == 0, (name, result.stderr)
        references = 3 if "SAML" in name else 2
        assert f"SignedInfo References (ok/all): {references}/{references}" in result.stderr, (name, result.stderr)


def test_xmlsec1_refuses_what_we_refuse(pki: Pki, tmp_path: Path) -> None:
    document, pem = _no_attachment_messages(pki)["pull with SAML token"]
    for tampered in (
        document.replace(b"<eb:MessageId>", b"<eb:MessageId>x"),
        document.replace(b">53004085616</saml2:NameID>", b">53004085617</saml2:NameID>"),
    ):
        assert _xmlsec1(tampered, pem, tmp_path, node_xpath=SIGNATURE_XPATH).returncode != 0
        with pytest.raises(wire.SignatureInvalid):
            wire.parse_request(tampered, "application/soap+xml", trust=pki.trust)
    # and a certificate other than the signer's
    assert _xmlsec1(document, pki.ato.public_bytes(Encoding.PEM), tmp_path, node_xpath=SIGNATURE_XPATH).returncode != 0


def test_xmlsec1_verifies_the_saml_assertions_signature(pki: Pki, tmp_path: Path) -> None:
    result = _xmlsec1(pki.token, pki.ato.public_bytes(Encoding.PEM), tmp_path, node_xpath=None)
    assert result.returncode == 0 and "SignedInfo References (ok/all): 1/1" in result.stderr, result.stderr


def test_attachment_digest_is_over_the_transmitted_octets(pki: Pki) -> None:
    """The SwA content transform, checked by hand since xmlsec1 cannot: SHA-256 of the part as sent (gzip)."""
    body, content_type = signed_ping(pki, compress=True)
    _, attachments = mime.parse_package(body, content_type)
    [part] = attachments.values()
    request = wire.parse_request(body, content_type, trust=pki.trust)
    [reference] = [r for r in request.references if r.uri.startswith("cid:")]
    assert reference.transforms == (ns.SWA_CONTENT_TRANSFORM,)
    assert reference.digest_value == base64.b64encode(hashlib.sha256(part.body).digest()).decode()
    assert part.content_type == "application/gzip" and part.body[:2] == b"\x1f\x8b"
