"""The stand-in ATO's front door, in this process: the WSGI application called directly, with no server, so that
every check it makes on every message is seen at once and `make mutate` can try each of its mutants in
milliseconds. Who may reach the operator pages, what a body may be, whose certificate is trusted, what a token
service request is refused as, a repeated MessageId, the endpoint and the party a message is for, the ping's ABN,
and the agent number a business message quotes. The same checks over HTTP are in test_sandbox.py and
test_hostile.py."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ato_gateway import wire
from ato_gateway.wire import keystore, ns, registry
from ato_gateway.wire.documents import codec, cufi, curel, maas
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from ato_gateway.wire.ebms import Party
from ato_gateway.wire.errors import CertificateUntrusted
from ato_gateway.wire.messages import _user_message
from ato_sandbox import app as door_module
from ato_sandbox.app import Limits, SandboxApp, operator_allowed

from .conftest import DEMO_PASSWORD, PROPERTIES

AGENT_TAN = "25123456"
OTHER_TAN = "25987654"
OTHER_ABN = "51824753556"  # the other agent's (the ATO's own ABN, as in tests/ato_fixtures.py)
ELSEWHERE = "33051775556"
CUREL = "http://www.sbr.gov.au/ato/curel"
LIMIT = 64 * 1024  # a small body limit, so that going over it costs nothing
INFLATED = 256 * 1024  # what a message's parts may inflate to, together


@dataclass
class Reply:
    status: str
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status.split()[0])

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: SandboxApp,
    path: str,
    body: bytes = b"",
    *,
    method: str | None = "POST",
    content_type: str = "",
    length: str | None = None,
    remote: str = "127.0.0.1",
    **environ: Any,
) -> Reply:
    """One request to the WSGI application, as gunicorn hands it one."""
    env: dict[str, Any] = {
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": content_type,
        "REMOTE_ADDR": remote,
        "CONTENT_LENGTH": str(len(body)) if length is None else length,
        **environ,
    }
    if method is not None:
        env["REQUEST_METHOD"] = method
    started: list[Any] = []
    chunks = app(env, lambda status, headers: started.extend([status, dict(headers)]))
    return Reply(started[0], started[1], b"".join(chunks))


@dataclass
class Door:
    """The application, the demo credential and a token from the application's own token service."""

    app: SandboxApp
    data_dir: Path
    credential: keystore.Credential
    token: bytes

    @property
    def ato_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.data_dir / "ato-signing.pem").read_bytes())

    def post(self, endpoint: str, body: bytes, content_type: str) -> Reply:
        return call(self.app, f"/ebms/{endpoint}", body, content_type=content_type)

    def read(self, reply: Reply) -> wire.InboundMessage:
        assert reply.code in (200, 500), reply.body[:500]
        return wire.parse_response(reply.body, reply.headers["Content-Type"], ato_certificate=self.ato_certificate)

    def control(self, name: str, value: Any = None, method: str = "POST") -> Any:
        body = b"" if value is None else json.dumps(value).encode()
        reply = call(self.app, f"/_control/{name}", body, method=method)
        assert reply.code == 200, reply.body
        return reply.json()

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.control("query", {"sql": sql, "params": list(params)})["rows"]
        return rows

    def request(
        self,
        action: registry.ServiceAction,
        payloads: list[tuple[str, bytes]],
        *,
        message_id: str | None = None,
        from_abn: str | None = None,
        agent_number: str | None = None,
        to_abn: str = registry.ATO_ABN,
        credential: keystore.Credential | None = None,
        token: bytes | bool | None = True,
        now: datetime | None = None,
        compress: bool = False,
    ) -> tuple[str, bytes, str]:
        credential = credential or self.credential
        message_id = message_id or wire.new_message_id("front-door-tests.invalid")
        from_parties = [Party(from_abn or credential.info.abn, registry.PARTY_TYPE_ABN)]
        if agent_number:
            from_parties.append(Party(agent_number, registry.PARTY_TYPE_TAN))
        body, content_type = _user_message(
            message_id=message_id,
            conversation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, message_id)),
            service=action.service_uri,
            action=action.action,
            from_parties=from_parties,
            from_role=registry.ROLE_REGISTERED_AGENT if agent_number else registry.ROLE_BUSINESS,
            to_parties=[Party(to_abn, registry.PARTY_TYPE_ABN)],
            to_role=registry.ROLE_AGENCY,
            payloads=payloads,
            document_type=action.document_type,
            compress=compress,
            key=credential.private_key,
            certificate=credential.certificate,
            saml_assertion=self.token if token is True else (token or None),
            properties=PROPERTIES,
            ref_to_message_id=None,
            now=now,
        )
        return message_id, body, content_type

    def ping_request(self, text: str = "hello", **kwargs: Any) -> tuple[str, bytes, str]:
        document = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>{escape(text)}</Text></PingRequest>'
        return self.request(registry.PING, [("PingRequest", document.encode())], **kwargs)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("stats", method="GET")
        return result


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    data_dir = tmp_path_factory.mktemp("front-door")
    app = SandboxApp(data_dir, limits=Limits(max_body_bytes=LIMIT, max_inflated_bytes=INFLATED))
    app.sign_all = True  # every answer signed and verified here, as test_sandbox.py runs the stand-in
    credential = keystore.load_credential((data_dir / "demo-keystore.xml").read_bytes(), DEMO_PASSWORD)
    body, content_type = wire.sts_build_issue_request(
        abn=credential.info.abn, key=credential.private_key, certificate=credential.certificate
    )
    issued = call(app, "/sts", body, content_type=content_type)
    assert issued.code == 200, issued.body
    box = Door(app, data_dir, credential, b"")
    box.token = wire.sts_parse_issue_response(issued.body, sts_certificate=box.ato_certificate).assertion
    box.control(
        "register",
        {
            "seed": 3,
            "taxpayers": 40,
            "today": "2026-11-30",
            "agents": [
                {"tan": AGENT_TAN, "abn": credential.info.abn, "clients": 8},
                {"tan": OTHER_TAN, "abn": OTHER_ABN, "clients": 8},
            ],
        },
    )
    yield box


@pytest.fixture
def fresh(door: Door) -> Door:
    door.control("faults", method="DELETE")
    door.control("reset")
    door.app._trusted.clear()
    return door


def _stranger(abn: str = "53004085616", *, ca_name: str = "Somebody else's CA") -> tuple[keystore.Credential, bytes]:
    """A credential from a CA the stand-in has never seen, and that CA's PEM."""
    ca_key = keystore.new_rsa_key()
    ca = keystore.make_ca(ca_key, ca_name)
    key = keystore.new_rsa_key()
    certificate = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=key.public_key(), common_name="Stranger", abn=abn
    )
    return keystore.Credential(keystore.describe(certificate), key, certificate, (certificate, ca)), ca.public_bytes(
        Encoding.PEM
    )


# --- who may reach the operator pages ---


@pytest.mark.parametrize(
    ("remote", "token", "given", "allowed"),
    [
        ("127.0.0.1", "", "", True),
        ("::1", "", "", True),
        ("10.1.2.3", "", "", False),
        ("10.1.2.3", "sesame", "sesame", True),
        ("10.1.2.3", "sesame", "wrong", False),
        ("127.0.0.1", "sesame", "wrong", False),  # a token given must be the right one, from anywhere
        ("127.0.0.1", "sesame", "", True),
        ("10.1.2.3", "", "sesame", False),  # no token is set: a given one opens nothing
        ("", "", "", False),  # a unix socket: not known to be this machine
        ("not an address", "", "", False),
    ],
)
def test_operator_pages_only_from_this_machine_or_with_the_token(
    remote: str, token: str, given: str, allowed: bool
) -> None:
    environ = {"REMOTE_ADDR": remote, "HTTP_X_SANDBOX_TOKEN": given}
    assert operator_allowed(environ, token) is allowed


def test_no_address_at_all_is_not_this_machine() -> None:
    assert operator_allowed({}, "") is False


def test_with_a_token_set_this_machine_needs_none() -> None:
    assert operator_allowed({"REMOTE_ADDR": "127.0.0.1"}, "sesame") is True


def test_the_operator_token_opens_the_pages_from_elsewhere(door: Door, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "sesame"  # noqa: S105 - a test's operator token
    monkeypatch.setattr(door.app, "control_token", token)
    given: dict[str, Any] = {"HTTP_X_SANDBOX_TOKEN": token}
    assert call(door.app, "/_control/faults", method="GET", remote="192.0.2.7", **given).code == 200
    given = {"HTTP_X_SANDBOX_TOKEN": "wrong"}
    assert call(door.app, "/_control/faults", method="GET", remote="192.0.2.7", **given).code == 403


@pytest.mark.parametrize("path", ["/_inspect", "/_inspect/messages", "/_control/faults", "/_control/query"])
def test_another_machine_gets_403_from_every_operator_page(door: Door, path: str) -> None:
    reply = call(door.app, path, b'{"sql": "SELECT 1"}', method="GET", remote="192.0.2.7")
    assert (reply.code, reply.headers["Content-Type"], reply.body) == (403, "text/plain", door_module.OPERATOR_ONLY)


def test_the_routes(door: Door) -> None:
    health = call(door.app, "/healthz", method="GET", remote="192.0.2.7")
    assert (health.status, health.headers) == ("200 OK", {"Content-Type": "application/json", "Content-Length": "17"})
    assert health.body == b'{"status": "ok"}\n'
    inspect = call(door.app, "/_inspect", method=None)  # no method said: a GET
    assert inspect.code == 200 and inspect.headers["Content-Type"] == "text/html; charset=utf-8"
    assert call(door.app, "/_inspect", method="POST").code == 404  # the inspection pages are read only
    missing = call(door.app, "/_inspect/no-such-page", method="GET")
    assert (missing.status, missing.headers["Content-Type"], missing.body) == (
        "404 Not Found",
        "text/plain",
        b"not found\n",
    )
    # An inspection page reads its query: the agent's clients after the last one of the register, none.
    first = call(door.app, f"/_inspect/agent/{AGENT_TAN}", method="GET")
    after = call(door.app, f"/_inspect/agent/{AGENT_TAN}", method="GET", QUERY_STRING="after=999999-0")
    assert first.code == after.code == 200 and first.body != after.body
    elsewhere = call(door.app, "/elsewhere", method="GET")
    assert (elsewhere.headers["Content-Type"], elsewhere.body) == ("text/plain", b"not found\n")
    assert call(door.app, "", method="GET").code == 404
    for path in ("/sts", "/ebms/single-sync", "/ebms/async-pull"):
        refused = call(door.app, path, method="GET")
        assert (refused.status, refused.headers["Content-Type"], refused.body) == (
            "405 Method Not Allowed",
            "text/plain",
            b"POST only\n",
        ), path
        assert call(door.app, path, method=None).code == 405, path


def test_a_bug_is_a_500_and_the_application_carries_on(door: Door, caplog: pytest.LogCaptureFixture) -> None:
    reply = call(door.app, "/_control/today", b"[1]")  # a list has no "today": an AttributeError in the stand-in
    assert (reply.code, reply.headers["Content-Type"], reply.body) == (
        500,
        "text/plain",
        b"internal error in the stand-in ATO\n",
    )
    assert [r.getMessage() for r in caplog.records] == ["unhandled error on POST /_control/today"]
    assert call(door.app, "/healthz", method="GET").code == 200


# --- what a body may be ---


@pytest.mark.parametrize(
    ("length", "status", "words"),
    [
        ("twelve", 400, b"Content-Length 'twelve' is not a length\n"),
        ("x" * 50, 400, b"Content-Length '" + b"x" * 40 + b"' is not a length\n"),
        ("-1", 400, b"Content-Length -1 is not a length\n"),
        (str(LIMIT + 1), 413, f"the request body of {LIMIT + 1} bytes exceeds the limit of {LIMIT} bytes\n".encode()),
    ],
)
def test_a_length_that_is_no_length_or_over_the_limit_is_refused_before_reading(
    fresh: Door, length: str, status: int, words: bytes
) -> None:
    reply = call(fresh.app, "/_control/faults", b"{}", length=length)
    assert (reply.code, reply.headers["Content-Type"], reply.body) == (status, "text/plain", words)
    # At the ATO's endpoints too, counted as received: a 4xx, so that the sender does not send it again.
    assert call(fresh.app, "/ebms/single-sync", b"{}", length=length).body == words
    assert fresh.stats()["received"] == 1


def test_a_body_of_the_limit_is_read_whole_and_no_further(fresh: Door) -> None:
    exact = b'{"seed": 1}'.ljust(LIMIT)
    assert call(fresh.app, "/_control/faults", exact + b"trailing bytes", length=str(LIMIT)).code == 200
    assert fresh.control("faults", method="GET")["seed"] == 1
    short = b'{"seed": 2}  '
    assert call(fresh.app, "/_control/faults", short + b"}", length=str(len(short))).code == 200
    assert fresh.control("faults", method="GET")["seed"] == 2
    assert call(fresh.app, "/_control/faults", b'{"seed": 3}', length="0").code == 200  # no length: nothing read
    assert fresh.control("faults", method="GET")["seed"] == 2


def test_a_body_without_a_length_is_read_to_the_limit(fresh: Door) -> None:
    assert call(fresh.app, "/_control/faults", b'{"seed": 4}'.ljust(LIMIT), length="").code == 200
    assert fresh.control("faults", method="GET")["seed"] == 4
    over = call(fresh.app, "/_control/faults", b"{}".ljust(LIMIT + 1), length="")
    assert (over.code, over.body) == (413, f"the request body exceeds the limit of {LIMIT} bytes\n".encode())


# --- whose certificate is trusted ---


def test_our_own_credentials_are_trusted_and_remembered(fresh: Door) -> None:
    certificate = fresh.credential.certificate
    assert fresh.app._trust(certificate) is True
    assert list(fresh.app._trusted.values()) == [True] and len(fresh.app._trusted) == 1
    assert fresh.app._trust(certificate) is True and len(fresh.app._trusted) == 1


def test_a_stranger_is_refused_until_its_ca_or_itself_is_trusted(fresh: Door) -> None:
    stranger, ca_pem = _stranger()
    fresh.app._trust(fresh.credential.certificate)  # a decision kept for ours is none for the stranger
    with pytest.raises(CertificateUntrusted) as refused:
        fresh.app._trust(stranger.certificate)
    assert str(refused.value) == (
        f"the certificate {stranger.certificate.subject.rfc4514_string()} (issued by "
        f"{stranger.certificate.issuer.rfc4514_string()}) is not trusted by the stand-in ATO"
    )
    assert list(fresh.app._trusted.values()) == [True]  # ours only: a refusal is decided again next time
    with pytest.raises(CertificateUntrusted):
        fresh.app._trust(stranger.certificate)
    call(fresh.app, "/_control/trust", ca_pem)
    assert fresh.app._trust(stranger.certificate) is True
    # The certificate itself, posted: trusted as it is, with no issuer to check.
    alone, _ = _stranger()
    call(fresh.app, "/_control/trust", alone.certificate.public_bytes(Encoding.PEM))
    assert fresh.app._trust(alone.certificate) is True


@pytest.mark.parametrize(("kept", "after"), [(1022, 1023), (1023, 1024), (1024, 0)])
def test_the_trust_decisions_kept_are_bounded(fresh: Door, kept: int, after: int) -> None:
    """Past 1024 decisions kept, they are forgotten (and decided again): a stand-in trusting certificates posted
    to it for ever would otherwise grow without end."""
    fresh.app._trusted.update({(str(n).encode(), ()): True for n in range(kept)})
    fresh.app._trust(fresh.credential.certificate)
    assert len(fresh.app._trusted) == after


def test_a_ca_of_the_same_name_is_not_our_ca(fresh: Door) -> None:
    """The issuer's name is no proof: a certificate from another CA that took our CA's name is refused, whichever
    of the trusted certificates carries that name."""
    ca_name = fresh.app.pki.ca_certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    forged, forged_ca = _stranger(ca_name=str(ca_name))
    assert forged.certificate.issuer == fresh.app.pki.ca_certificate.subject
    with pytest.raises(CertificateUntrusted):
        fresh.app._trust(forged.certificate)
    _, other_ca = _stranger(ca_name=str(ca_name))
    call(fresh.app, "/_control/trust", other_ca)  # a second CA of that name: neither signed the forged one
    with pytest.raises(CertificateUntrusted):
        fresh.app._trust(forged.certificate)
    call(fresh.app, "/_control/trust", forged_ca)
    assert fresh.app._trust(forged.certificate) is True


@pytest.mark.parametrize(
    ("start", "words"), [(timedelta(days=-40), "expired on"), (timedelta(days=2), "is not valid before")]
)
def test_a_certificate_out_of_date_is_refused_though_our_ca_issued_it(
    fresh: Door, start: timedelta, words: str
) -> None:
    """Checked on every message, not only on the first: the decision kept for a certificate is no pass."""
    pki = fresh.app.pki
    key = keystore.new_rsa_key()
    certificate = keystore.issue_certificate(
        ca_key=pki.ca_key,
        ca_certificate=pki.ca_certificate,
        public_key=key.public_key(),
        common_name="Out of date",
        abn="53004085616",
        not_before=datetime.now(UTC) + start,
        valid_for=timedelta(days=30),
    )
    fresh.app._trusted[(certificate.public_bytes(Encoding.DER), tuple(fresh.app.storage.trusted_pems()))] = True
    with pytest.raises(wire.WireError, match=words):
        fresh.app._trust(certificate)


# --- the token service ---


def _sts_fault(reply: Reply) -> tuple[str, str]:
    envelope = etree.fromstring(reply.body)
    values = [v.text or "" for v in envelope.iter(f"{{{ns.SOAP12}}}Value")]
    return values[-1], envelope.findtext(f".//{{{ns.SOAP12}}}Text") or ""


def test_the_token_service_says_why_it_refuses(fresh: Door) -> None:
    stranger, _ = _stranger()
    body, content_type = wire.sts_build_issue_request(
        abn=stranger.info.abn, key=stranger.private_key, certificate=stranger.certificate
    )
    untrusted = call(fresh.app, "/sts", body, content_type=content_type)
    assert untrusted.code == 400 and untrusted.headers["Content-Type"] == door_module.SOAP
    subcode, reason = _sts_fault(untrusted)
    assert subcode == "wst:FailedAuthentication" and "is not trusted by the stand-in ATO" in reason
    own = fresh.credential
    body, content_type = wire.sts_build_issue_request(
        abn=own.info.abn, key=own.private_key, certificate=own.certificate, applies_to="https://elsewhere.invalid/"
    )
    scope = call(fresh.app, "/sts", body, content_type=content_type)
    assert scope.code == 400 and _sts_fault(scope)[0] == "wst:InvalidScope"
    assert "no token for AppliesTo 'https://elsewhere.invalid/'" in _sts_fault(scope)[1]
    malformed = call(fresh.app, "/sts", b"<not-a-soap-envelope/>", content_type=door_module.SOAP)
    assert malformed.code == 400 and _sts_fault(malformed)[0] == "wst:InvalidRequest"
    header = etree.QName(ns.SOAP12, "Header").text
    envelope = etree.fromstring(
        wire.sts_build_issue_request(abn=own.info.abn, key=own.private_key, certificate=own.certificate)[0]
    )
    etree.SubElement(envelope.find(header), "{urn:example:hostile}Surprise").set(
        f"{{{ns.SOAP12}}}mustUnderstand", "true"
    )
    fault = call(fresh.app, "/sts", etree.tostring(envelope), content_type=content_type)
    assert (fault.code, fault.headers["Content-Type"]) == (500, door_module.SOAP)
    assert etree.fromstring(fault.body).findtext(f".//{{{ns.SOAP12}}}Value") == "S12:MustUnderstand"


def test_a_token_is_issued_for_each_of_the_known_services(fresh: Door) -> None:
    own = fresh.credential
    for audience in sorted(door_module.DEFAULT_AUDIENCES):
        body, content_type = wire.sts_build_issue_request(
            abn=own.info.abn, key=own.private_key, certificate=own.certificate, applies_to=audience
        )
        issued = call(fresh.app, "/sts", body, content_type=content_type)
        assert (issued.code, issued.headers["Content-Type"]) == (200, door_module.SOAP), audience
        token = wire.sts_parse_issue_response(issued.body, sts_certificate=fresh.ato_certificate)
        assert token.subject_abn == own.info.abn
        saml = wire.saml_verify_assertion(token.assertion, issuer_certificate=fresh.ato_certificate)
        assert (saml.issuer, saml.audience) == (door_module.ISSUER, audience)


# --- a message: verified, then applied once ---


def _codes(door: Door, reply: Reply) -> list[str]:
    return [e.code for e in door.read(reply).errors]


def test_a_ping_is_applied_once_and_counted_once(fresh: Door) -> None:
    message_id, body, content_type = fresh.ping_request("once & for all")
    first = fresh.post("single-sync", body, content_type)
    reply = fresh.read(first)
    assert reply.kind == "user" and reply.ref_to_message_id == message_id
    assert b"<Text>once &amp; for all</Text>" in reply.payloads["PingResponse"]
    applied = etree.fromstring(reply.payloads["PingResponse"]).findtext(f"{{{registry.PING_NAMESPACE}}}AppliedAt")
    assert applied is not None
    assert abs(datetime.fromisoformat(applied.replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(minutes=1)
    assert [(e.code, e.severity, e.short_description) for e in reply.event_items] == [
        ("GEN.OK", "Information", "Ping applied.")
    ]
    stats = fresh.stats()
    assert (stats["applied"], stats["received"], stats["answered"]) == ({message_id: 1}, 1, 1)
    assert fresh.query("SELECT action FROM effects WHERE message_id = ?", message_id) == [
        {"action": f"{registry.PING.service_uri} {registry.PING.action}"}
    ]
    stored = fresh.query(
        "SELECT status, content_type, hex(body) AS body FROM messages WHERE message_id = ?", message_id
    )
    assert stored == [{"status": 200, "content_type": first.headers["Content-Type"], "body": first.body.hex().upper()}]
    # Sent again (rebuilt, re-signed): the first answer byte for byte, and nothing applied again.
    _, again, again_type = fresh.ping_request("once & for all", message_id=message_id)
    repeat = fresh.post("single-sync", again, again_type)
    assert (repeat.body, repeat.headers["Content-Type"]) == (first.body, first.headers["Content-Type"])
    assert fresh.stats()["applied"] == {message_id: 1}


def test_the_same_message_id_with_other_content_is_a_replay(fresh: Door) -> None:
    message_id, body, content_type = fresh.ping_request("original")
    first = fresh.post("single-sync", body, content_type)
    _, other, other_type = fresh.ping_request("tampered", message_id=message_id)
    replay = fresh.read(fresh.post("single-sync", other, other_type))
    assert [(e.code, e.ref_to_message_id) for e in replay.errors] == [("EBMS:0004", message_id)]
    assert replay.errors[0].detail == (f"replay refused: MessageId {message_id} was already used for different content")
    assert fresh.post("single-sync", body, content_type).body == first.body
    assert fresh.stats()["applied"] == {message_id: 1}


def test_a_message_that_fails_verification_is_refused_naming_it(fresh: Door) -> None:
    message_id, body, content_type = fresh.ping_request("tamper")
    tampered = body.replace(b"200704/test</eb:Action>", b"200704/tesT</eb:Action>")
    reply = fresh.read(fresh.post("single-sync", tampered, content_type))
    assert [(e.code, e.ref_to_message_id) for e in reply.errors] == [("EBMS:0101", message_id)]
    with pytest.raises(wire.WireError) as why:  # the error says what the wire found wrong
        wire.parse_request(tampered, content_type, trust=fresh.app._trust)
    assert reply.errors[0].detail == str(why.value)
    assert fresh.stats()["applied"] == {} and fresh.query("SELECT * FROM messages") == []


def test_an_unknown_mandatory_header_is_a_must_understand_fault(fresh: Door) -> None:
    _, body, content_type = fresh.ping_request()
    block = b'<x:Surprise xmlns:x="urn:example:hostile" S12:mustUnderstand="true">1</x:Surprise>'
    reply = fresh.post("single-sync", body.replace(b"<S12:Header>", b"<S12:Header>" + block), content_type)
    assert reply.code == 500 and reply.headers["Content-Type"] == door_module.SOAP
    assert etree.fromstring(reply.body).findtext(f".//{{{ns.SOAP12}}}Value") == "S12:MustUnderstand"
    assert fresh.stats()["applied"] == {}


def test_a_refused_message_is_not_remembered(fresh: Door) -> None:
    """An answer of "wrong endpoint" is not the message's answer: sent where it belongs, it is applied."""
    message_id, body, content_type = fresh.ping_request()
    wrong = fresh.read(fresh.post("single-async", body, content_type))
    assert [(e.code, e.ref_to_message_id) for e in wrong.errors] == [("EBMS:0004", message_id)]
    assert wrong.errors[0].detail == (
        f"{registry.PING.key} goes to the ATO's {registry.PING.endpoint} endpoint: send it to /ebms/single-sync"
    )
    assert fresh.query("SELECT * FROM messages") == []
    assert fresh.read(fresh.post("single-sync", body, content_type)).kind == "user"
    assert fresh.stats()["applied"] == {message_id: 1}


def test_a_signal_where_user_messages_go_and_a_message_where_pulls_go(fresh: Door) -> None:
    own = fresh.credential
    pull, content_type = wire.build_signed_pull(
        message_id=wire.new_message_id("front-door-tests.invalid"),
        mpc=registry.mpc_for(own.info.abn),
        key=own.private_key,
        certificate=own.certificate,
        saml_assertion=fresh.token,
    )
    signal = fresh.read(fresh.post("single-sync", pull, content_type))
    assert [e.code for e in signal.errors] == ["EBMS:0004"]
    assert signal.errors[0].detail == "single-sync takes UserMessages; this is a pull signal"
    assert fresh.query("SELECT message_id FROM messages") == []  # not its answer: nothing remembered
    _, body, content_type = fresh.ping_request()
    for endpoint in ("async-pull", "collect-async", "bulkbatch-async-pull"):
        user = fresh.read(fresh.post(endpoint, body, content_type))
        assert [(e.code, e.detail) for e in user.errors] == [
            ("EBMS:0004", "async-pull takes PullRequest signals only")
        ], endpoint
    assert fresh.stats()["applied"] == {}


def test_a_pushed_action_goes_to_its_own_endpoint_or_the_older_async_push(fresh: Door) -> None:
    maas = next(a for a in registry.SERVICE_ACTIONS if a.pattern == "push-pull")
    assert maas.endpoint.lower() == "bulkbatch-async-push"
    _, body, content_type = fresh.request(maas, [(maas.request_document, b"<x/>")])
    refused = fresh.read(fresh.post("single-sync", body, content_type))
    assert [e.code for e in refused.errors] == ["EBMS:0004"]
    assert "send it to /ebms/bulkbatch-async-push" in refused.errors[0].detail
    receipt = fresh.post("async-push", body, content_type)
    assert fresh.read(receipt).kind == "receipt"
    assert fresh.post("async-push", body, content_type).body == receipt.body  # the push remembered: once
    assert fresh.stats()["queued"] == 1
    _, body, content_type = fresh.request(maas, [(maas.request_document, b"<x/>")])
    assert fresh.read(fresh.post("bulkbatch-async-push", body, content_type)).kind == "receipt"
    # The older path takes pushed actions only: a single-sync action sent there is refused.
    _, ping, content_type = fresh.ping_request()
    assert _codes(fresh, fresh.post("async-push", ping, content_type)) == ["EBMS:0004"]


def test_an_unknown_action_or_one_the_stand_in_lacks_is_refused(fresh: Door, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = dataclasses.replace(registry.PING, action="http://sbr.gov.au/no-such-action")
    message_id, body, content_type = fresh.request(unknown, [("PingRequest", b"<x/>")])
    reply = fresh.read(fresh.post("single-sync", body, content_type))
    assert [(e.code, e.ref_to_message_id) for e in reply.errors] == [("EBMS:0004", message_id)]
    assert reply.errors[0].detail == f"unknown service/action {registry.PING.service_uri} {unknown.action}"
    # Every single-sync action has its service today: one is taken out of the stand-in's table for this test.
    lacking = registry.get(curel.SearchRequest.SERVICE_ACTION)
    monkeypatch.delitem(door_module.services.HANDLERS, lacking.key)
    message_id, body, content_type = fresh.request(lacking, [(lacking.request_document, b"<x/>")])
    reply = fresh.read(fresh.post(lacking.endpoint.lower(), body, content_type))
    assert [(e.code, e.ref_to_message_id) for e in reply.errors] == [("EBMS:0004", message_id)]
    assert reply.errors[0].detail == f"{lacking.key} is not implemented by the stand-in ATO"
    assert fresh.stats()["applied"] == {}


def test_a_message_not_addressed_to_the_ato_is_ebms_0009(fresh: Door) -> None:
    message_id, body, content_type = fresh.ping_request(to_abn=ELSEWHERE)
    reply = fresh.read(fresh.post("single-sync", body, content_type))
    assert [(e.code, e.ref_to_message_id) for e in reply.errors] == [("EBMS:0009", message_id)]
    assert reply.errors[0].detail == f"the message is not addressed to the ATO ({registry.ATO_ABN})"
    assert fresh.stats()["applied"] == {}


# --- the ping's ABN ---


def test_a_ping_for_an_abn_the_credential_does_not_hold_is_cmn_ato_auth_001(fresh: Door) -> None:
    message_id, body, content_type = fresh.ping_request(from_abn=OTHER_ABN)
    reply = fresh.read(fresh.post("single-sync", body, content_type))
    assert reply.kind == "user" and "PingResponse" not in reply.payloads
    [item] = reply.event_items
    assert (item.code, item.severity) == ("CMN.ATO.AUTH.001", "Error")
    assert item.short_description == "The agent or intermediary is not related to the credential's ABN."
    assert item.detailed_description == (
        f"The message is from ABN {OTHER_ABN}, but it is signed with the machine credential of ABN "
        f"{fresh.credential.info.abn}."
    )
    assert fresh.stats()["applied"] == {message_id: 1}


@pytest.mark.parametrize(
    "payloads",
    [
        [("Other", b"<x/>")],
        [("PingRequest", b'<PingResponse xmlns="http://sbr.gov.au/ato/test"/>')],
        [("PingRequest", b"<unclosed>")],
    ],
)
def test_a_ping_without_a_ping_request_is_refused(fresh: Door, payloads: list[tuple[str, bytes]]) -> None:
    message_id, body, content_type = fresh.request(registry.PING, payloads)
    reply = fresh.read(fresh.post("single-sync", body, content_type))
    assert [(e.code, e.ref_to_message_id) for e in reply.errors] == [("EBMS:0004", message_id)]
    assert reply.errors[0].detail.startswith("no valid PingRequest part: ")


# --- the agent number a business message quotes ---


def _search(door: Door, **kwargs: Any) -> tuple[str, wire.InboundMessage]:
    person = door.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a ON "
        "a.id = l.agent_id WHERE t.entity = 'IND' AND a.tan = ? AND l.end_date IS NULL ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]
    document = curel.SearchRequest(
        client=ClientIdentifier.of(tfn=person["tfn"]),
        person_name=PersonName(person["family_name"]),
        birth_date=date.fromisoformat(person["birth_date"]),
    )
    action = registry.get(document.SERVICE_ACTION)
    payloads = kwargs.pop("payloads", None) or [(action.request_document, codec.encode(document))]
    message_id, body, content_type = door.request(action, payloads, **kwargs)
    return message_id, door.read(door.post("single-sync", body, content_type))


def _items(reply: wire.InboundMessage) -> list[tuple[str, str, dict[str, str]]]:
    return [(i.code, i.severity, dict(i.parameters)) for i in reply.event_items]


def test_our_agent_number_is_answered(fresh: Door) -> None:
    message_id, reply = _search(fresh, agent_number=AGENT_TAN)
    assert reply.kind == "user" and "CURELSearchResponse" in reply.payloads
    assert _items(reply)[0][:2] == ("GEN.OK", "Information")
    assert fresh.stats()["applied"] == {message_id: 1}


@pytest.mark.parametrize(("tan", "shown"), [(None, "(none)"), ("25000009", "25000009")])
def test_no_agent_number_or_an_unknown_one_is_cmn_ato_auth_003(fresh: Door, tan: str | None, shown: str) -> None:
    _, reply = _search(fresh, agent_number=tan)
    assert _items(reply) == [("CMN.ATO.AUTH.003", "Error", {"AgentNumber": shown})]
    assert "CURELSearchResponse" not in reply.payloads


def test_an_agent_number_of_another_abn_is_cmn_ato_auth_001(fresh: Door) -> None:
    _, reply = _search(fresh, agent_number=OTHER_TAN)
    assert _items(reply) == [("CMN.ATO.AUTH.001", "Error", {"CredentialABN": fresh.credential.info.abn})]
    assert "CURELSearchResponse" not in reply.payloads


def test_a_business_message_without_its_document_or_with_a_bad_one_is_xml03(fresh: Door) -> None:
    action = registry.get(curel.SearchRequest.SERVICE_ACTION)
    _, missing = _search(fresh, agent_number=AGENT_TAN, payloads=[("Other", b"<x/>")])
    assert _items(missing) == [
        ("CMN.ATO.GEN.XML03", "Error", {"Detail": f"the message has no {action.request_document} part"})
    ]
    good = curel.SearchRequest(
        client=ClientIdentifier.of(tfn="123456782"), person_name=PersonName("Nguyen"), birth_date=date(1980, 1, 1)
    )
    bad = codec.encode(good).replace(b">123456782<", b">12345678 2<")  # a TFN the XSD's pattern refuses
    _, invalid = _search(fresh, agent_number=AGENT_TAN, payloads=[(action.request_document, bad)])
    [(code, severity, parameters)] = _items(invalid)
    assert (code, severity) == ("CMN.ATO.GEN.XML03", "Error") and parameters["Detail"]
    assert "12345678 2" not in parameters["Detail"] and "'(withheld)'" in parameters["Detail"]


def test_a_quoted_number_is_withheld_from_an_error_text() -> None:
    assert door_module._withhold_numbers("value '123 456 782' is not valid") == "value '(withheld)' is not valid"
    assert door_module._withhold_numbers("value '12345' and '1234' and 'Smith'") == (
        "value '(withheld)' and '1234' and 'Smith'"
    )


def test_a_message_id_is_guessed_only_to_say_which_message_failed() -> None:
    guess = door_module._guess_message_id
    assert guess(b"<eb:MessageId> abc@x </eb:MessageId>") == "abc@x"
    assert guess(b"<MessageId>plain</MessageId>") == "plain"
    assert guess(b"<eb:MessageId>   </eb:MessageId>") is None
    assert guess(b"<eb:MessageId>\xff\xfe</eb:MessageId>") is None
    assert guess(b"no id here") is None
    assert guess(b" " * 65536 + b"<eb:MessageId>late</eb:MessageId>") is None


def test_a_message_id_ending_at_the_last_byte_looked_at_is_found() -> None:
    guess = door_module._guess_message_id
    head = b"<eb:MessageId>edge</"
    assert guess(b" " * (65536 - len(head)) + head) == "edge"
    assert guess(b" " * (65537 - len(head)) + head) is None


def test_a_long_xsd_complaint_is_cut_to_a_thousand_characters(fresh: Door) -> None:
    action = registry.get(curel.SearchRequest.SERVICE_ACTION)
    bad = f'<CURELSearchRequest xmlns="{CUREL}"><{"Long" * 400}/></CURELSearchRequest>'.encode()
    _, invalid = _search(fresh, agent_number=AGENT_TAN, payloads=[(action.request_document, bad)])
    [(_, _, parameters)] = _items(invalid)
    assert len(parameters["Detail"]) == 1000 and "Long" * 100 in parameters["Detail"]


def test_the_services_refusal_is_the_answer(fresh: Door) -> None:
    """A fund's Get from a credential that is no fund: no agent number needed, and the service's own refusal."""
    document = maas.GetRequest(usi="53004085616001", member_id="M1")
    action = registry.get(document.SERVICE_ACTION)
    message_id, body, content_type = fresh.request(action, [(action.request_document, codec.encode(document))])
    first = fresh.post("single-sync", body, content_type)
    reply = fresh.read(first)
    assert _items(reply) == [("CMN.ATO.SPRMBRINFO.FUND01", "Error", {"ABN": fresh.credential.info.abn})]
    assert action.response_document not in reply.payloads
    assert fresh.stats()["applied"] == {message_id: 1}
    # The same message again: the refusal remembered, byte for byte.
    assert fresh.post("single-sync", body, content_type).body == first.body


def test_the_service_answers_as_of_the_stand_ins_business_date(fresh: Door) -> None:
    person = fresh.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a ON "
        "a.id = l.agent_id WHERE a.tan = ? AND l.end_date IS NULL AND t.tfn IS NOT NULL ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]
    document = cufi.ListRequest(client=ClientIdentifier.of(tfn=person["tfn"]))
    action = registry.get(document.SERVICE_ACTION)
    _, body, content_type = fresh.request(
        action, [(action.request_document, codec.encode(document))], agent_number=AGENT_TAN
    )
    reply = fresh.read(fresh.post("single-sync", body, content_type))
    assert reply.kind == "user" and action.response_document in reply.payloads, _items(reply)


def test_a_ping_says_what_its_part_held_and_answers_an_empty_text(fresh: Door) -> None:
    _, body, content_type = fresh.request(
        registry.PING, [("PingRequest", b'<PingResponse xmlns="http://sbr.gov.au/ato/test"/>')]
    )
    [error] = fresh.read(fresh.post("single-sync", body, content_type)).errors
    assert error.detail == (
        "no valid PingRequest part: the PingRequest part holds {http://sbr.gov.au/ato/test}PingResponse"
    )
    empty = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"/>'.encode()
    _, body, content_type = fresh.request(registry.PING, [("PingRequest", empty)])
    answer = fresh.read(fresh.post("single-sync", body, content_type)).payloads["PingResponse"]
    assert b"<Text></Text>" in answer


def test_a_pull_goes_to_the_pull_endpoints(fresh: Door) -> None:
    own = fresh.credential
    for endpoint in ("async-pull", "collect-async"):
        wanted = wire.new_message_id("front-door-tests.invalid")
        pull, content_type = wire.build_signed_pull(
            message_id=wire.new_message_id("front-door-tests.invalid"),
            ref_to_message_id=wanted,
            key=own.private_key,
            certificate=own.certificate,
            saml_assertion=fresh.token,
        )
        [error] = fresh.read(fresh.post(endpoint, pull, content_type)).errors
        assert (error.code, error.detail) == ("EBMS:0006", f"nothing to pull for {wanted}"), endpoint


def _token(door: Door, *, audience: str, signed_by: Any = None) -> bytes:
    """A token as the stand-in's token service signs them, for any audience, or signed by another key."""
    now = datetime.now(UTC)
    own = door.credential
    attributes = {
        registry.SAML_ATTRIBUTE_ABN: own.info.abn,
        registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL: str(own.certificate.serial_number),
        registry.SAML_ATTRIBUTE_CREDENTIAL_TYPE: "D",
    }
    key, certificate = signed_by or (door.app.pki.signing_key, door.app.pki.signing_certificate)
    return wire.sts.create_assertion(
        issuer=door_module.ISSUER,
        subject_abn=own.info.abn,
        audience=audience,
        attributes=attributes,
        key=key,
        certificate=certificate,
        not_before=now,
        not_on_or_after=now + timedelta(minutes=30),
    )


def _refused(door: Door, code: str = "EBMS:0101", **kwargs: Any) -> str:
    """The error's detail for a ping built with ``kwargs``; nothing applied."""
    message_id, body, content_type = door.ping_request(**kwargs)
    reply = door.read(door.post("single-sync", body, content_type))
    assert [(e.code, e.ref_to_message_id) for e in reply.errors] == [(code, message_id)], reply.errors
    assert door.stats()["applied"] == {}
    return reply.errors[0].detail


def test_a_message_needs_a_token_from_the_stand_ins_own_token_service(fresh: Door) -> None:
    assert _refused(fresh, token=False) == "the message carries no SAML token"
    stranger, _ = _stranger()
    forged = _token(
        fresh, audience=registry.STS_APPLIES_TO_DEFAULT, signed_by=(stranger.private_key, stranger.certificate)
    )
    assert _refused(fresh, token=forged)
    # The same token, signed by the stand-in: taken.
    good = _token(fresh, audience=registry.STS_APPLIES_TO_DEFAULT)
    message_id, body, content_type = fresh.ping_request(token=good)
    assert fresh.read(fresh.post("single-sync", body, content_type)).kind == "user"
    assert fresh.stats()["applied"] == {message_id: 1}


def test_a_token_for_another_service_is_refused(fresh: Door) -> None:
    assert "https://elsewhere.invalid/" in _refused(fresh, token=_token(fresh, audience="https://elsewhere.invalid/"))


def test_a_stale_message_is_refused(fresh: Door) -> None:
    assert "Timestamp" in _refused(fresh, "EBMS:0103", now=datetime.now(UTC) - timedelta(hours=2))


def test_parts_inflating_beyond_the_limit_are_refused(fresh: Door) -> None:
    padding = b"<Padding>" + b" " * INFLATED + b"</Padding>"
    message_id, body, content_type = fresh.request(registry.PING, [("PingRequest", padding)], compress=True)
    assert len(body) < LIMIT  # small on the wire: it is what it inflates to that is refused
    reply = fresh.read(fresh.post("single-sync", body, content_type))
    assert [(e.code, e.ref_to_message_id) for e in reply.errors] == [("EBMS:0303", message_id)]
    assert fresh.stats()["applied"] == {}
