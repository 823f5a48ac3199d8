"""The stand-in ATO answering as the ATO is published or reported to: ebMS errors on HTTP 500, each action at its
logical endpoint, a bulk message as one attachment with its DocumentType, and MaximumSeverity ``Partial`` for a
batch accepted in part. (This session's stand-in signs every answer, ATO_SANDBOX_SIGN_ALL; the gateway's tests run
it in its ATO-like mode, where only pulled responses are signed.)"""

from __future__ import annotations

import uuid

import requests

from ato_gateway import wire
from ato_gateway.wire import events, registry

from .conftest import PROPERTIES, Client, Sandbox

EMPTY_BATCH = b'<SPRMBRINFO xmlns="http://www.sbr.gov.au/ato/sprmbrinfo"/>'


def _push(
    client: Client,
    *,
    endpoint: str = "bulkbatch-async-push",
    payloads: list[tuple[str, bytes]] | None = None,
    document_type: str | None = None,
) -> tuple[str, requests.Response]:
    message_id = wire.new_message_id("sandbox-tests.invalid")
    body, content_type = wire.build_signed_request(
        service_action=registry.MAAS_SUBMIT,
        message_id=message_id,
        conversation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, message_id)),
        from_abn=client.credential.info.abn,
        payloads=payloads or [("SPRMBRINFO", EMPTY_BATCH)],
        key=client.credential.private_key,
        certificate=client.credential.certificate,
        saml_assertion=client.token,
        properties=PROPERTIES,
        document_type=document_type,
    )
    return message_id, client.post(endpoint, body, content_type)


def _pulled(client: Client, pushed: str) -> wire.InboundMessage:
    body, content_type = wire.build_signed_pull(
        message_id=wire.new_message_id("sandbox-tests.invalid"),
        ref_to_message_id=pushed,
        key=client.credential.private_key,
        certificate=client.credential.certificate,
        saml_assertion=client.token,
    )
    reply = client.read(client.post("bulkbatch-async-pull", body, content_type))
    assert reply.kind == "user" and reply.ref_to_message_id == pushed and reply.signed
    return reply


def test_an_ebms_error_comes_on_http_500(client: Client, sandbox: Sandbox) -> None:
    _, body, content_type = client.ping_request()
    response = client.post("bulkbatch-async-push", body, content_type)  # a single-sync action at a push endpoint
    assert response.status_code == 500 and response.headers["Content-Type"].startswith("application/soap+xml")
    reply = client.read(response)
    assert [e.code for e in reply.errors] == ["EBMS:0004"] and "Single-sync" in reply.errors[0].detail
    assert reply.signed  # signed because this stand-in signs everything
    assert sandbox.stats()["applied"] == {}


def test_a_bulk_message_goes_to_its_logical_endpoint(client: Client, sandbox: Sandbox) -> None:
    _, refused = _push(client, endpoint="single-async")
    assert [e.code for e in client.read(refused).errors] == ["EBMS:0004"]
    assert "BulkBatch-async-push" in client.read(refused).errors[0].detail
    pushed, taken = _push(client)
    assert taken.status_code == 200 and client.read(taken).kind == "receipt"
    assert list(sandbox.stats()["applied"]) == [pushed]


def _codes(reply: wire.InboundMessage) -> list[str]:
    return [item.code for item in reply.event_items]


def test_a_bulk_message_with_a_part_per_document_is_refused(client: Client, sandbox: Sandbox) -> None:
    pushed, taken = _push(client, payloads=[("SPRMBRINFO", EMPTY_BATCH), ("SPRMBRINFO2", EMPTY_BATCH)])
    assert client.read(taken).kind == "receipt"
    reply = _pulled(client, pushed)
    assert _codes(reply) == ["CMN.ATO.GEN.UNEXPECTEDNUMPAYLOADS"] and "SPRMBRINFOResponse" not in reply.payloads
    assert reply.event_items[0].parameters == (("Count", "2"),)


def test_a_bulk_message_without_its_document_type_is_refused(client: Client, sandbox: Sandbox) -> None:
    pushed, taken = _push(client, document_type="")
    assert client.read(taken).kind == "receipt"
    reply = _pulled(client, pushed)
    assert _codes(reply) == ["CMN.ATO.EBMS.001"] and "SPRMBRINFOResponse" not in reply.payloads


def test_a_bulk_message_as_one_attachment_with_its_document_type_is_processed(client: Client) -> None:
    pushed, _ = _push(client)
    reply = _pulled(client, pushed)
    assert "CMN.ATO.GEN.UNEXPECTEDNUMPAYLOADS" not in _codes(reply) and "CMN.ATO.EBMS.001" not in _codes(reply)
    assert reply.maximum_severity != events.SEVERITY_PARTIAL
