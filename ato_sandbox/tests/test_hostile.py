"""Hostile bytes sent over HTTP to the stand-in ATO process, as an attacker would (issue 15): comments inside
signed values, stale and future timestamps, tokens for another audience or another certificate, mandatory header
blocks nobody understands, gzip bombs, and bodies over the limit. Each is refused, and nothing is applied."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from lxml import etree

from ato_gateway import wire
from ato_gateway.wire import keystore, ns, registry
from ato_sandbox.testing import running_sandbox

from .conftest import DEMO_PASSWORD, PROPERTIES, Client, Sandbox

ATTACKER = "https://attacker.invalid/"
# The stand-in run with small limits, so that going over them costs the tests little.
STRICT_ENV = {
    "DJANGO_DEBUG": "1",
    "ATO_SANDBOX_SIGN_ALL": "1",
    "ATO_SANDBOX_MAX_BODY_BYTES": str(256 * 1024),
    "ATO_SANDBOX_MAX_INFLATED_BYTES": str(1024 * 1024),
    "ATO_SANDBOX_TIMESTAMP_WINDOW_SECONDS": "60",
}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A second stand-in ATO with small limits, and a client holding a token from it."""
    data_dir = tmp_path_factory.mktemp("ato-sandbox-strict")
    with running_sandbox(data_dir, env=STRICT_ENV, workers=1, threads=4) as url:
        box = Sandbox(url, data_dir)
        credential = keystore.load_credential((data_dir / "demo-keystore.xml").read_bytes(), DEMO_PASSWORD)
        body, content_type = wire.sts_build_issue_request(
            abn=credential.info.abn, key=credential.private_key, certificate=credential.certificate
        )
        response = requests.post(f"{url}/sts", data=body, headers={"Content-Type": content_type}, timeout=10)
        assert response.status_code == 200, response.text
        token = wire.sts_parse_issue_response(response.content, sts_certificate=box.ato_certificate)
        yield Client(box, credential, token.assertion)


@pytest.fixture
def fresh_strict(strict: Client) -> Client:
    strict.sandbox.control("DELETE", "faults")
    strict.sandbox.control("POST", "reset")
    return strict


def _codes(client: Client, response: requests.Response) -> list[str]:
    return [e.code for e in client.read(response).errors]


def _nothing_applied(sandbox: Sandbox) -> None:
    stats = sandbox.stats()
    assert stats["applied"] == {} and stats["queued"] == 0, stats


def _request(
    client: Client,
    *,
    payloads: list[tuple[str, bytes]] | None = None,
    compress: bool = False,
    now: datetime | None = None,
    token: bytes | None = None,
    credential: keystore.Credential | None = None,
    message_id: str | None = None,
) -> tuple[str, bytes, str]:
    """A signed ping, with whatever else a hostile sender wants in it."""
    message_id = message_id or wire.new_message_id("sandbox-tests.invalid")
    signer = credential or client.credential
    ping = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>{escape("hostile")}</Text></PingRequest>'
    body, content_type = wire.build_signed_request(
        service_action=registry.PING,
        message_id=message_id,
        conversation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, message_id)),
        from_abn=signer.info.abn,
        payloads=[("PingRequest", ping.encode()), *(payloads or [])],
        compress=compress,
        key=signer.private_key,
        certificate=signer.certificate,
        saml_assertion=token if token is not None else client.token,
        properties=PROPERTIES,
        now=now,
    )
    return message_id, body, content_type


def _signing_key(sandbox: Sandbox) -> rsa.RSAPrivateKey:
    key = load_pem_private_key((sandbox.data_dir / "ato-signing-key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _token_for(sandbox: Sandbox, credential: keystore.Credential, *, audience: str, with_serial: bool = True) -> bytes:
    """A token as the stand-in's token service signs them, for any audience (as one issued before it checked)."""
    now = datetime.now(UTC)
    attributes = {
        registry.SAML_ATTRIBUTE_ABN: credential.info.abn,
        registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL: str(credential.certificate.serial_number),
        registry.SAML_ATTRIBUTE_CREDENTIAL_TYPE: "D",
    }
    if not with_serial:
        del attributes[registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL]
    return wire.sts.create_assertion(
        issuer="https://sandbox.ato.invalid/sts",
        subject_abn=credential.info.abn,
        audience=audience,
        attributes=attributes,
        key=_signing_key(sandbox),
        certificate=sandbox.ato_certificate,
        not_before=now,
        not_on_or_after=now + timedelta(minutes=30),
    )


# --- 1. comments and processing instructions inside signed values ---


def test_a_comment_inside_the_message_id_does_not_make_a_captured_message_new(client: Client, sandbox: Sandbox) -> None:
    message_id, body, content_type = _request(client)
    first = client.post("single-sync", body, content_type)
    assert client.read(first).kind == "user"
    # Exclusive C14N drops comments, so the captured message still verifies with one put into its MessageId.
    captured = f"<eb:MessageId>{message_id}</eb:MessageId>".encode()
    assert body.count(captured) == 1
    for at in (3, 0, len(message_id)):
        hostile = f"<eb:MessageId>{message_id[:at]}<!---->{message_id[at:]}</eb:MessageId>".encode()
        again = client.post("single-sync", body.replace(captured, hostile), content_type)
        assert again.content == first.content  # read as the message it is: the first answer, byte for byte
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_a_processing_instruction_inside_a_signed_value_is_ignored(client: Client, sandbox: Sandbox) -> None:
    message_id, body, content_type = _request(client)
    first = client.post("single-sync", body, content_type)
    captured = f"<eb:MessageId>{message_id}</eb:MessageId>".encode()
    hostile = f"<eb:MessageId>{message_id[:3]}<?x y?>{message_id[3:]}</eb:MessageId>".encode()
    again = client.post("single-sync", body.replace(captured, hostile), content_type)
    assert again.content == first.content  # ignored, as SOAP 1.2 says: the same message, answered as before
    assert sandbox.stats()["applied"] == {message_id: 1}


def _stranger(sandbox: Sandbox, abn: str) -> keystore.Credential:
    """Another machine credential of the same ABN, from a CA the stand-in is told to trust."""
    ca_key = keystore.new_rsa_key()
    ca = keystore.make_ca(ca_key, "Another trusted CA")
    key = keystore.new_rsa_key()
    certificate = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=key.public_key(), common_name="Second device", abn=abn
    )
    sandbox.control("POST", "trust", data=ca.public_bytes(Encoding.PEM))
    return keystore.Credential(keystore.describe(certificate), key, certificate, (certificate, ca))


def test_a_comment_in_the_tokens_certificate_serial_does_not_unbind_it(client: Client, sandbox: Sandbox) -> None:
    other = _stranger(sandbox, client.credential.info.abn)
    serial = str(client.credential.certificate.serial_number)
    value = f"<saml2:AttributeValue>{serial}</saml2:AttributeValue>".encode()
    assert client.token.count(value) == 1
    hostile_token = client.token.replace(
        value, f"<saml2:AttributeValue><!---->{serial}</saml2:AttributeValue>".encode()
    )
    # The token was issued to the demo credential's certificate; the other credential presents it as its own.
    _, body, content_type = _request(client, token=hostile_token, credential=other)
    reply = client.read(client.post("single-sync", body, content_type))
    assert [e.code for e in reply.errors] == ["EBMS:0101"]
    assert "certificate" in reply.errors[0].detail
    _nothing_applied(sandbox)
    # A token that names no certificate binds to none: refused, not taken by whoever presents it.
    unbound = _token_for(sandbox, other, audience=registry.STS_APPLIES_TO_DEFAULT, with_serial=False)
    _, body, content_type = _request(client, token=unbound, credential=other)
    assert _codes(client, client.post("single-sync", body, content_type)) == ["EBMS:0101"]
    _nothing_applied(sandbox)


# --- 2. freshness ---


@pytest.mark.parametrize("moment", [datetime(2001, 1, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)])
def test_a_timestamp_far_in_the_past_or_future_is_refused(client: Client, sandbox: Sandbox, moment: datetime) -> None:
    _, body, content_type = _request(client, now=moment)
    reply = client.read(client.post("single-sync", body, content_type))
    assert [e.code for e in reply.errors] == ["EBMS:0103"] and "eb:Timestamp" in reply.errors[0].detail
    _nothing_applied(sandbox)


def test_the_window_is_a_setting(client: Client, sandbox: Sandbox, fresh_strict: Client) -> None:
    """Four minutes off is inside the default window of five, and outside the strict stand-in's 60 seconds."""
    four_minutes_ago = datetime.now(UTC) - timedelta(minutes=4)
    message_id, body, content_type = _request(client, now=four_minutes_ago)
    assert client.read(client.post("single-sync", body, content_type)).kind == "user"
    assert sandbox.stats()["applied"] == {message_id: 1}
    _, body, content_type = _request(fresh_strict, now=four_minutes_ago)
    assert _codes(fresh_strict, fresh_strict.post("single-sync", body, content_type)) == ["EBMS:0103"]
    _nothing_applied(fresh_strict.sandbox)


# --- 3. the token's audience ---


def test_the_token_service_issues_only_for_its_own_services(sandbox: Sandbox, client: Client) -> None:
    body, content_type = wire.sts_build_issue_request(
        abn=client.credential.info.abn,
        key=client.credential.private_key,
        certificate=client.credential.certificate,
        applies_to=ATTACKER,
    )
    response = requests.post(f"{sandbox.url}/sts", data=body, headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == 400
    fault = etree.fromstring(response.content)
    subcode = fault.findtext(f".//{{{ns.SOAP12}}}Subcode/{{{ns.SOAP12}}}Value")
    assert subcode == "wst:InvalidScope" and b"attacker.invalid" in response.content
    with pytest.raises(wire.TokenRejected):
        wire.sts_parse_issue_response(response.content, sts_certificate=sandbox.ato_certificate)


def test_a_token_for_another_audience_is_refused(client: Client, sandbox: Sandbox) -> None:
    _, body, content_type = _request(client, token=_token_for(sandbox, client.credential, audience=ATTACKER))
    reply = client.read(client.post("single-sync", body, content_type))
    assert [e.code for e in reply.errors] == ["EBMS:0101"] and ATTACKER in reply.errors[0].detail
    _nothing_applied(sandbox)
    # The same token for the services themselves is taken: it is the audience that was refused.
    good = _token_for(sandbox, client.credential, audience=registry.STS_APPLIES_TO_DEFAULT)
    message_id, body, content_type = _request(client, token=good)
    assert client.read(client.post("single-sync", body, content_type)).kind == "user"
    assert sandbox.stats()["applied"] == {message_id: 1}


# --- 4. mustUnderstand ---


def _with_header_block(body: bytes, block: bytes) -> bytes:
    assert body.count(b"<S12:Header>") == 1
    return body.replace(b"<S12:Header>", b"<S12:Header>" + block)


@pytest.mark.parametrize("flag", ["true", "1"])
def test_an_unknown_mandatory_header_block_gets_a_must_understand_fault(
    client: Client, sandbox: Sandbox, flag: str
) -> None:
    _, body, content_type = _request(client)
    block = f'<x:Surprise xmlns:x="urn:example:hostile" S12:mustUnderstand="{flag}">1</x:Surprise>'.encode()
    response = client.post("single-sync", _with_header_block(body, block), content_type)
    assert response.status_code == 500  # the SOAP 1.2 HTTP binding's status for env:MustUnderstand
    envelope = etree.fromstring(response.content)
    assert envelope.findtext(f".//{{{ns.SOAP12}}}Code/{{{ns.SOAP12}}}Value") == "S12:MustUnderstand"
    not_understood = envelope.find(f"{{{ns.SOAP12}}}Header/{{{ns.SOAP12}}}NotUnderstood")
    assert not_understood is not None
    prefix, _, local = not_understood.get("qname", "").partition(":")
    assert (not_understood.nsmap[prefix], local) == ("urn:example:hostile", "Surprise")
    _nothing_applied(sandbox)


def test_an_unknown_optional_header_block_is_ignored(client: Client, sandbox: Sandbox) -> None:
    message_id, body, content_type = _request(client)
    optional = b'<x:Aside xmlns:x="urn:example:hostile" S12:mustUnderstand="false">1</x:Aside>'
    other_role = (
        b'<x:Relay xmlns:x="urn:example:hostile" S12:mustUnderstand="true" S12:role="urn:example:relay">1</x:Relay>'
    )
    response = client.post("single-sync", _with_header_block(body, optional + other_role), content_type)
    assert client.read(response).kind == "user"
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_the_token_service_also_faults_on_an_unknown_mandatory_header(sandbox: Sandbox, client: Client) -> None:
    body, content_type = wire.sts_build_issue_request(
        abn=client.credential.info.abn, key=client.credential.private_key, certificate=client.credential.certificate
    )
    header = etree.QName(ns.SOAP12, "Header").text
    envelope = etree.fromstring(body)
    block = etree.SubElement(envelope.find(header), "{urn:example:hostile}Surprise")
    block.set(f"{{{ns.SOAP12}}}mustUnderstand", "true")
    hostile = etree.tostring(envelope)
    response = requests.post(f"{sandbox.url}/sts", data=hostile, headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == 500
    assert etree.fromstring(response.content).findtext(f".//{{{ns.SOAP12}}}Value") == "S12:MustUnderstand"


# --- 5. a total limit on what a message inflates to ---


def test_parts_that_inflate_beyond_the_total_limit_are_refused(fresh_strict: Client) -> None:
    """Each part is far below the per-part limit (50 MiB); together they are over the strict stand-in's 1 MiB."""
    padding = b"<Padding>" + b" " * (400 * 1024) + b"</Padding>"
    parts = [(f"Padding{n}", padding) for n in range(3)]
    _, body, content_type = _request(fresh_strict, payloads=parts, compress=True)
    assert len(body) < 20 * 1024  # a few KB on the wire
    reply = fresh_strict.read(fresh_strict.post("single-sync", body, content_type))
    assert [e.code for e in reply.errors] == ["EBMS:0303"] and "1048576" in reply.errors[0].detail
    _nothing_applied(fresh_strict.sandbox)
    # Two of them fit: it is the total that is limited.
    message_id, body, content_type = _request(fresh_strict, payloads=parts[:2], compress=True)
    assert fresh_strict.read(fresh_strict.post("single-sync", body, content_type)).kind == "user"
    assert fresh_strict.sandbox.stats()["applied"] == {message_id: 1}


def test_the_default_limit_stops_a_bomb_of_many_parts(client: Client, sandbox: Sandbox) -> None:
    """The reported attack: a small request of parts of 50 MiB of zeros each, the most the per-part limit allows,
    which the stand-in inflated and held one after the other. Four of them, 200 MiB together; the default total
    limit (64 MiB) stops the second."""
    zeros = b"\0" * (50 * 1024 * 1024)  # one object, four references: the test itself holds 50 MiB
    _, body, content_type = _request(client, payloads=[(f"Bomb{n}", zeros) for n in range(4)], compress=True)
    assert len(body) < 256 * 1024
    reply = client.read(client.post("single-sync", body, content_type, timeout=60))
    assert [e.code for e in reply.errors] == ["EBMS:0303"]
    assert f"of the {64 * 1024 * 1024} bytes all the message's parts may hold" in reply.errors[0].detail
    _nothing_applied(sandbox)


# --- 6. bodies over the limit ---


def test_a_declared_body_over_the_limit_gets_413_not_500(fresh_strict: Client) -> None:
    response = fresh_strict.post("single-sync", b"x" * (256 * 1024 + 1), "application/soap+xml")
    assert response.status_code == 413 and b"262144" in response.content
    _nothing_applied(fresh_strict.sandbox)


def test_a_chunked_body_over_the_limit_gets_413_and_is_not_read_cut_short(fresh_strict: Client) -> None:
    """A signed message padded past the limit and sent chunked (no Content-Length): refused whole, where it was
    cut at the limit and answered as some other, truncated message."""
    padding = b"<Padding>" + b" " * (300 * 1024) + b"</Padding>"
    _, body, content_type = _request(fresh_strict, payloads=[("Padding", padding)])
    assert len(body) > 256 * 1024

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = requests.post(
        f"{fresh_strict.sandbox.url}/ebms/single-sync",
        data=chunks(),
        headers={"Content-Type": content_type},
        timeout=10,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413
    _nothing_applied(fresh_strict.sandbox)
