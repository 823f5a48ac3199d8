"""The stand-in ATO over real HTTP: token service, signed exchanges, exactly-once application, faults."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from ato_gateway import wire
from ato_gateway.wire import keystore, registry

from .conftest import PROPERTIES, REPO, Client, Sandbox, issue_token

FIXTURE_KEYSTORE = REPO / "ato_gateway" / "wire" / "tests" / "fixtures" / "keystores" / "ato-usi-test-keystore.xml"


def test_first_start_writes_the_pki_and_a_demo_keystore(sandbox: Sandbox) -> None:
    for name in ("ca.pem", "ato-signing.pem", "demo-keystore.xml"):
        assert (sandbox.data_dir / name).exists(), name
    credential = keystore.load_credential(
        (sandbox.data_dir / "demo-keystore.xml").read_bytes(), "demo-keystore-password"
    )
    assert credential.info.abn == "53004085616"
    ca = keystore.x509.load_pem_x509_certificate((sandbox.data_dir / "ca.pem").read_bytes())
    credential.certificate.verify_directly_issued_by(ca)
    sandbox.ato_certificate.verify_directly_issued_by(ca)
    assert [c.public_bytes(Encoding.DER) for c in credential.chain][1] == ca.public_bytes(Encoding.DER)


def test_the_wsgi_application_runs_without_django(tmp_path: Path) -> None:
    script = (
        "import sys, ato_sandbox.wsgi as w; "
        "assert callable(w.application); "
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'; "
        "assert not [m for m in sys.modules if m.startswith(('portal', 'clients', 'ato_gateway.models'))]"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["ATO_SANDBOX_DATA_DIR"] = str(tmp_path)
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True, timeout=120)


# --- the security token service ---


def test_sts_issues_a_signed_token_for_30_minutes(sandbox: Sandbox, demo: keystore.Credential) -> None:
    response = issue_token(sandbox, demo)
    assert response.status_code == 200
    token = wire.sts_parse_issue_response(response.content, sts_certificate=sandbox.ato_certificate)
    assert token.subject_abn == "53004085616"
    assert timedelta(minutes=29) < token.expires_at - datetime.now(UTC) <= timedelta(minutes=30)
    saml = wire.saml_verify_assertion(token.assertion, issuer_certificate=sandbox.ato_certificate)
    assert saml.attributes[registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL] == str(demo.certificate.serial_number)


def _stranger(abn: str = "53004085616") -> tuple[keystore.Credential, bytes]:
    """A credential from a CA the sandbox has never seen, and that CA's PEM."""
    ca_key = keystore.new_rsa_key()
    ca = keystore.make_ca(ca_key, "Somebody else's CA")
    key = keystore.new_rsa_key()
    certificate = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=key.public_key(), common_name="Stranger", abn=abn
    )
    credential = keystore.Credential(keystore.describe(certificate), key, certificate, (certificate, ca))
    return credential, ca.public_bytes(Encoding.PEM)


def test_sts_refuses_an_untrusted_certificate_until_it_is_trusted(sandbox: Sandbox) -> None:
    stranger, ca_pem = _stranger()
    response = issue_token(sandbox, stranger)
    assert response.status_code == 400
    with pytest.raises(wire.TokenRejected, match="not trusted") as refused:
        wire.sts_parse_issue_response(response.content, sts_certificate=sandbox.ato_certificate)
    assert refused.value.permanent
    assert "FailedAuthentication" in response.text
    sandbox.control("POST", "trust", data=ca_pem)
    assert issue_token(sandbox, stranger).status_code == 200


def test_sts_refuses_the_expired_fixture_credential(sandbox: Sandbox) -> None:
    data = FIXTURE_KEYSTORE.read_bytes()
    credential = keystore.load_credential(data, "Password1!", abn="11000002568")
    sandbox.control("POST", "trust", data=credential.chain[1].public_bytes(Encoding.PEM))  # its ATO issuing CA
    response = issue_token(sandbox, credential)
    assert response.status_code == 400
    with pytest.raises(wire.TokenRejected, match="expired on 2024-09-1"):
        wire.sts_parse_issue_response(response.content, sts_certificate=sandbox.ato_certificate)


# --- signed exchanges ---


def test_signed_ping_round_trip(client: Client, sandbox: Sandbox) -> None:
    message_id, response = client.ping("round trip & back")
    reply = client.read(response)  # verified against ato-signing.pem, or this raises
    assert reply.kind == "user" and reply.ref_to_message_id == message_id
    assert reply.action == registry.PING.action and reply.service == registry.PING.service_uri
    assert b"<Text>round trip &amp; back</Text>" in reply.payloads["PingResponse"]
    assert b"<AppliedAt>" in reply.payloads["PingResponse"]
    assert [(e.code, e.severity) for e in reply.event_items] == [("GEN.OK", "Information")]
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_compressed_ping_is_understood(client: Client) -> None:
    _, response = client.ping("squeezed", compress=True)
    assert b"squeezed" in client.read(response).payloads["PingResponse"]


def test_ping_for_an_abn_the_credential_does_not_hold_is_cmn_ato_auth_001(client: Client) -> None:
    _, response = client.ping(from_abn="51824753556")
    reply = client.read(response)
    assert reply.kind == "user"
    assert [(e.code, e.severity) for e in reply.event_items] == [("CMN.ATO.AUTH.001", "Error")]
    assert "PingResponse" not in reply.payloads


def test_repeated_message_id_gets_the_first_answer_byte_for_byte_and_is_applied_once(
    client: Client, sandbox: Sandbox
) -> None:
    message_id, first = client.ping("once")
    time.sleep(0.01)
    # A retry is rebuilt and re-signed (new timestamp, new signature) with the same MessageId and content.
    _, again = client.ping("once", message_id=message_id)
    assert again.content == first.content
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_a_message_applied_twice_shows_twice_in_the_record_of_effects(client: Client, sandbox: Sandbox) -> None:
    """The "applied exactly once" checks can fail: with its first answer forgotten (as by a stand-in whose
    de-duplication broke), the same message is applied again, and the count says 2."""
    message_id, body, content_type = client.ping_request("twice")
    first = client.post("single-sync", body, content_type)
    assert sandbox.stats()["applied"] == {message_id: 1}
    assert sandbox.control("POST", "forget", json={"message_id": message_id}) == {"forgotten": 1}
    again = client.post("single-sync", body, content_type)
    assert client.read(again).kind == "user" and again.content != first.content  # applied anew, not repeated
    assert sandbox.stats()["applied"] == {message_id: 2}
    effects = sandbox.control(
        "POST", "query", json={"sql": "SELECT action FROM effects WHERE message_id = ?", "params": [message_id]}
    )
    assert effects["rows"] == [{"action": f"{registry.PING.service_uri} {registry.PING.action}"}] * 2


def test_concurrent_repeats_across_workers_are_applied_once(client: Client, sandbox: Sandbox) -> None:
    message_id, body, content_type = client.ping_request("race")
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: client.post("single-sync", body, content_type), range(12)))
    assert len({r.content for r in responses}) == 1
    assert client.read(responses[0]).kind == "user"
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_same_message_id_with_other_content_is_refused_as_a_replay(client: Client, sandbox: Sandbox) -> None:
    message_id, first = client.ping("original")
    _, replay = client.ping("tampered", message_id=message_id)
    reply = client.read(replay)
    assert reply.kind == "error"
    assert [e.code for e in reply.errors] == ["EBMS:0004"]
    assert "replay" in reply.errors[0].detail and reply.errors[0].ref_to_message_id == message_id
    with pytest.raises(wire.EbmsFault) as fault:
        reply.raise_for_errors()
    assert fault.value.permanent
    _, repeat = client.ping("original", message_id=message_id)
    assert repeat.content == first.content
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_a_tampered_request_is_refused_with_ebms_0101(client: Client, sandbox: Sandbox) -> None:
    message_id, body, content_type = client.ping_request("tamper")
    reply = client.read(
        client.post("single-sync", body.replace(b"200704/test</eb:Action>", b"200704/tesT</eb:Action>"), content_type)
    )
    assert [e.code for e in reply.errors] == ["EBMS:0101"] and reply.errors[0].ref_to_message_id == message_id
    assert sandbox.stats()["applied"] == {}


def test_a_header_that_is_not_ebms_is_ebms_0009(client: Client) -> None:
    envelope = (
        b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Header/><S12:Body/></S12:Envelope>'
    )
    reply = client.read(client.post("single-sync", envelope, "application/soap+xml"))
    assert [e.code for e in reply.errors] == ["EBMS:0009"]


def test_an_expired_token_is_ebms_0101(client: Client, sandbox: Sandbox, demo: keystore.Credential) -> None:
    signing_key = load_pem_private_key((sandbox.data_dir / "ato-signing-key.pem").read_bytes(), None)
    assert isinstance(signing_key, rsa.RSAPrivateKey)
    issued = datetime.now(UTC) - timedelta(hours=2)
    expired = wire.sts.create_assertion(
        issuer="https://sandbox.ato.invalid/sts",
        subject_abn=demo.info.abn,
        audience=registry.STS_APPLIES_TO_DEFAULT,
        attributes={registry.SAML_ATTRIBUTE_ABN: demo.info.abn},
        key=signing_key,
        certificate=sandbox.ato_certificate,
        not_before=issued,
        not_on_or_after=issued + timedelta(minutes=30),
    )
    _, response = Client(sandbox, demo, expired).ping()
    reply = client.read(response)
    assert [e.code for e in reply.errors] == ["EBMS:0101"] and "expired" in reply.errors[0].detail
    assert sandbox.stats()["applied"] == {}


# --- faults ---


def test_every_exchange_is_counted_once_with_or_without_faults(client: Client, sandbox: Sandbox) -> None:
    """With no fault set, an exchange is counted in the transaction that records its message; with one, when
    its outcome is drawn. Either way: received once per request, answered once per answer that goes back."""
    message_id, body, content_type = client.ping_request("counted")
    assert client.read(client.post("single-sync", body, content_type)).ref_to_message_id == message_id
    assert client.post("single-sync", b"not a message", content_type).status_code == 500  # an ebMS error answer
    stats = sandbox.stats()
    assert (stats["received"], stats["answered"], stats["applied"]) == (2, 2, {message_id: 1})
    sandbox.faults(next=["http_503", "ok"])
    assert client.post("single-sync", body, content_type).status_code == 503
    assert client.read(client.post("single-sync", body, content_type)).ref_to_message_id == message_id
    stats = sandbox.stats()
    assert (stats["received"], stats["answered"], stats["applied"]) == (4, 3, {message_id: 1})


def test_http_500_and_503_come_before_applying(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(next=["http_500", "http_503"])
    message_id, body, content_type = client.ping_request()
    assert client.post("single-sync", body, content_type).status_code == 500
    assert client.post("single-sync", body, content_type).status_code == 503
    assert sandbox.stats()["applied"] == {}
    assert client.read(client.post("single-sync", body, content_type)).kind == "user"
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_connection_reset_comes_after_applying(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(next=["reset"])
    message_id, body, content_type = client.ping_request("reset")
    with pytest.raises(requests.ConnectionError) as failed:
        client.post("single-sync", body, content_type)
    assert "reset" in str(failed.value).lower()
    assert sandbox.stats()["applied"] == {message_id: 1}
    assert client.read(client.post("single-sync", body, content_type)).ref_to_message_id == message_id
    stats = sandbox.stats()
    assert stats["applied"] == {message_id: 1} and stats["received"] == 2 and stats["answered"] == 1


def test_timeout_comes_after_applying(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(next=["timeout"], timeout_seconds=1.2)
    message_id, body, content_type = client.ping_request("slow")
    with pytest.raises(requests.Timeout):
        client.post("single-sync", body, content_type, timeout=0.4)
    assert sandbox.stats()["applied"] == {message_id: 1}
    assert client.read(client.post("single-sync", body, content_type)).kind == "user"
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_malformed_reply(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(next=["malformed"])
    message_id, body, content_type = client.ping_request()
    with pytest.raises(wire.MalformedMessage) as failed:
        client.read(client.post("single-sync", body, content_type))
    assert failed.value.permanent
    assert client.read(client.post("single-sync", body, content_type)).kind == "user"
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_bad_signature_on_the_reply(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(next=["bad_signature"])
    message_id, body, content_type = client.ping_request()
    spoiled = client.post("single-sync", body, content_type)
    with pytest.raises(wire.SignatureInvalid, match="signature value does not verify"):
        client.read(spoiled)
    good = client.post("single-sync", body, content_type)
    assert client.read(good).kind == "user"
    assert len(good.content) == len(spoiled.content) and good.content != spoiled.content
    assert sandbox.stats()["applied"] == {message_id: 1}


def test_latency(client: Client, sandbox: Sandbox) -> None:
    sandbox.faults(latency_ms=300)
    started = time.monotonic()
    _, response = client.ping()
    assert time.monotonic() - started >= 0.3
    assert client.read(response).kind == "user"


def test_outage_window_answers_503_to_everything(client: Client, sandbox: Sandbox, demo: keystore.Credential) -> None:
    sandbox.faults(outage_seconds=0.8)
    _, response = client.ping()
    assert response.status_code == 503
    assert issue_token(sandbox, demo).status_code == 503
    assert sandbox.stats()["applied"] == {}
    time.sleep(0.9)
    _, response = client.ping()
    assert client.read(response).kind == "user"


def test_random_faults_are_reproducible_from_the_seed(sandbox: Sandbox, demo: keystore.Credential) -> None:
    def run() -> list[int]:
        sandbox.faults(http_503=0.5, http_500=0.2, seed=7)
        return [issue_token(sandbox, demo).status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert {200, 500, 503} <= set(first)


def test_unknown_fault_settings_are_refused(sandbox: Sandbox) -> None:
    response = requests.post(f"{sandbox.url}/_control/faults", json={"gremlins": 1}, timeout=5)
    assert response.status_code == 400 and "gremlins" in response.text


def test_control_query_reads_and_writes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    def query(sql: str) -> requests.Response:
        return requests.post(f"{sandbox.url}/_control/query", json={"sql": sql}, timeout=10)

    answer = query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT count(*) c FROM n"
    )
    assert answer.status_code == 200 and answer.json()["rows"] == [{"c": 3}]
    assert query("SELECT count(*) FROM reg_taxpayers").status_code == 200
    # A read-only connection still runs these two, which write a copy of the register (or a new database) anywhere.
    copy, attached = tmp_path / "copy.db", tmp_path / "attached.db"
    assert query(f"VACUUM INTO '{copy}'").status_code == 400
    assert query(f"ATTACH 'file:{attached}?mode=rwc' AS other").status_code == 400
    assert query("PRAGMA user_version").status_code == 400
    assert not copy.exists() and not attached.exists()


# --- push and pull (MAAS) ---


def _push(client: Client, message_id: str | None = None) -> tuple[str, requests.Response]:
    message_id = message_id or wire.new_message_id("sandbox-tests.invalid")
    document = b'<SPRMBRINFO xmlns="http://www.sbr.gov.au/ato/sprmbrinfo"/>'  # an empty batch: valid, changes nothing
    body, content_type = wire.build_signed_request(
        service_action=registry.MAAS_SUBMIT,
        message_id=message_id,
        conversation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, message_id)),
        from_abn=client.credential.info.abn,
        payloads=[("SPRMBRINFO", document)],
        compress=True,
        key=client.credential.private_key,
        certificate=client.credential.certificate,
        saml_assertion=client.token,
        properties=PROPERTIES,
    )
    return message_id, client.post("async-push", body, content_type)


def _pull(
    client: Client, message_id: str | None = None, mpc: str | None = None, ref: str | None = None
) -> tuple[str, requests.Response]:
    """A channel pull, or with ``ref`` a selective pull for that pushed message (no mpc, as the gateway sends)."""
    message_id = message_id or wire.new_message_id("sandbox-tests.invalid")
    body, content_type = wire.build_signed_pull(
        message_id=message_id,
        mpc=mpc or (None if ref else registry.mpc_for(client.credential.info.abn)),
        ref_to_message_id=ref,
        key=client.credential.private_key,
        certificate=client.credential.certificate,
        saml_assertion=client.token,
    )
    return message_id, client.post("async-pull", body, content_type)


def test_push_gets_a_receipt_and_the_response_is_pulled_after_empty_pulls(client: Client, sandbox: Sandbox) -> None:
    sandbox.control("POST", "fund", json={"abn": client.credential.info.abn})  # MAAS is sent by funds only
    pushed, response = _push(client)
    receipt = client.read(response)
    assert receipt.kind == "receipt" and receipt.ref_to_message_id == pushed
    uris = [r.uri for r in receipt.receipt_references]  # non-repudiation: the digests we signed, repeated
    assert uris[0].startswith("#id-messaging-") and uris[-1].startswith("cid:") and len(uris) == 4
    sandbox.faults(empty_pulls=2)
    for _ in range(2):
        _, response = _pull(client)
        empty = client.read(response)
        assert empty.kind == "error" and [e.code for e in empty.errors] == ["EBMS:0006"]
        assert not empty.errors[0].permanent
    pull_id, response = _pull(client)
    delivered = client.read(response)
    assert delivered.kind == "user" and delivered.ref_to_message_id == pushed
    assert [(e.code, e.parameters) for e in delivered.event_items] == [("GEN.OK", ())]
    assert b"<SPRMBRINFOResponse" in delivered.payloads["SPRMBRINFOResponse"]  # applied at the push, kept till now
    # Repeating the pull's MessageId repeats its answer; it does not deliver anything else.
    _, again = _pull(client, message_id=pull_id)
    assert again.content == response.content
    _, response = _pull(client)
    assert [e.code for e in client.read(response).errors] == ["EBMS:0006"]
    assert sandbox.stats()["applied"] == {pushed: 1}  # a pull applies no business action


def test_a_selective_pull_gets_the_same_response_every_time(client: Client, sandbox: Sandbox) -> None:
    """The response stays until the stand-in is reset: a pull whose reply was lost asks again (a new pull, a new
    MessageId) and gets it byte for byte. Nobody else's pull finds it, and a channel pull does not hand it out
    again."""
    sandbox.control("POST", "fund", json={"abn": client.credential.info.abn})
    pushed, _ = _push(client)
    _, first = _pull(client, ref=pushed)
    delivered = client.read(first)
    assert delivered.kind == "user" and delivered.ref_to_message_id == pushed
    assert b"<SPRMBRINFOResponse" in delivered.payloads["SPRMBRINFOResponse"]
    _, again = _pull(client, ref=pushed)
    assert again.content == first.content
    _, channel = _pull(client)
    assert [e.code for e in client.read(channel).errors] == ["EBMS:0006"]
    _, unknown = _pull(client, ref="never-pushed@sandbox-tests.invalid")
    assert [e.code for e in client.read(unknown).errors] == ["EBMS:0006"]
    stranger, ca_pem = _stranger(abn="11000002568")
    sandbox.control("POST", "trust", data=ca_pem)
    token = wire.sts_parse_issue_response(
        issue_token(sandbox, stranger).content, sts_certificate=sandbox.ato_certificate
    ).assertion
    _, theirs = _pull(Client(sandbox, stranger, token), ref=pushed)
    assert [e.code for e in client.read(theirs).errors] == ["EBMS:0006"]
    stats = sandbox.stats()
    assert stats["applied"] == {pushed: 1} and stats["queued"] == 0


def test_a_repeated_push_is_queued_once(client: Client, sandbox: Sandbox) -> None:
    pushed, first = _push(client)
    _, again = _push(client, pushed)
    assert again.content == first.content and client.read(again).kind == "receipt"
    stats = sandbox.stats()
    assert stats["applied"] == {pushed: 1} and stats["queued"] == 1


def test_pulling_another_partys_channel_is_refused(client: Client) -> None:
    _, response = _pull(client, mpc=registry.mpc_for("51824753556"))
    assert [e.code for e in client.read(response).errors] == ["EBMS:0101"]


def test_a_push_service_sent_single_sync_is_refused(client: Client, sandbox: Sandbox) -> None:
    _, body, content_type = client.ping_request()
    reply = client.read(client.post("async-push", body, content_type))
    assert [e.code for e in reply.errors] == ["EBMS:0004"] and "single-sync" in reply.errors[0].detail
    assert sandbox.stats()["applied"] == {}
