"""What the ATO has published, or another implementation reports, as the wire library speaks it: unsigned answers,
signatures checked wherever there is one, the token service's claims and client, the WPN party type, the
``Partial`` severity and a SOAP fault's code."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from lxml import etree

from ato_gateway import wire
from ato_gateway.wire import events, ns, registry, sts_client
from ato_gateway.wire.documents import codec, maas
from ato_gateway.wire.documents.common import PersonName

from .conftest import PRACTICE_ABN, PROPERTIES, Pki, ping_document, signed_ping

IDENTITY = "http://schemas.xmlsoap.org/ws/2005/05/identity"
VANGUARD = "http://vanguard.ebusiness.gov.au/2008/06/identity/claims/"


def _answer(pki: Pki, *, sign: bool, payloads: list[tuple[str, bytes]] | None = None) -> tuple[bytes, str]:
    request = wire.parse_request(*signed_ping(pki), trust=pki.trust)
    return wire.build_signed_response(
        message_id="answer@ato",
        ref_to_message_id=request.message_id,
        conversation_id=request.conversation_id or "",
        service=request.service or "",
        action=request.action or "",
        to_abn=PRACTICE_ABN,
        payloads=payloads or [("PingResponse", b"<PingResponse/>")],
        key=pki.ato_key,
        certificate=pki.ato,
        sign=sign,
    )


def test_an_unsigned_answer_is_read_when_no_signature_is_required(pki: Pki) -> None:
    body, content_type = _answer(pki, sign=False)
    assert b"Security" not in body  # as the ATO answers everything but pulled responses
    reply = wire.parse_response(body, content_type, ato_certificate=pki.ato, require_signature=False)
    assert (reply.kind, reply.signed, reply.payloads["PingResponse"]) == ("user", False, b"<PingResponse/>")
    with pytest.raises(wire.SignatureInvalid, match="wsse:Security"):  # and where one is required, it is refused
        wire.parse_response(body, content_type, ato_certificate=pki.ato)


def test_a_signature_is_verified_wherever_there_is_one(pki: Pki) -> None:
    body, content_type = _answer(pki, sign=True)
    reply = wire.parse_response(body, content_type, ato_certificate=pki.ato, require_signature=False)
    assert reply.signed and reply.signer_certificate == pki.ato
    tampered = body.replace(b"<PingResponse/>", b"<PingResponse>forged</PingResponse>")
    assert tampered != body
    with pytest.raises(wire.SignatureInvalid):
        wire.parse_response(tampered, content_type, ato_certificate=pki.ato, require_signature=False)
    with pytest.raises(wire.SignatureInvalid):  # signed by someone else: refused, not read as if unsigned
        wire.parse_response(body, content_type, ato_certificate=pki.certificate, require_signature=False)


def test_receipts_and_errors_can_go_unsigned(pki: Pki) -> None:
    request = wire.parse_request(*signed_ping(pki), trust=pki.trust)
    body, content_type = wire.build_signed_receipt(
        request=request, message_id="r@ato", key=pki.ato_key, certificate=pki.ato, sign=False
    )
    receipt = wire.parse_response(body, content_type, ato_certificate=pki.ato, require_signature=False)
    assert receipt.kind == "receipt" and not receipt.signed and receipt.receipt_references == request.references
    body, content_type = wire.build_signed_error(
        errors=[wire.standard_error("EBMS:0101", "refused")],
        message_id="e@ato",
        key=pki.ato_key,
        certificate=pki.ato,
        sign=False,
    )
    error = wire.parse_response(body, content_type, ato_certificate=pki.ato, require_signature=False)
    assert [e.code for e in error.errors] == ["EBMS:0101"] and not error.signed


def test_a_soap_fault_says_whether_to_try_again(pki: Pki) -> None:
    def fault(code: str) -> bytes:
        return (
            f'<S12:Envelope xmlns:S12="{ns.SOAP12}"><S12:Body><S12:Fault><S12:Code><S12:Value>S12:{code}'
            "</S12:Value></S12:Code><S12:Reason><S12:Text>why</S12:Text></S12:Reason></S12:Fault></S12:Body>"
            "</S12:Envelope>"
        ).encode()

    for code, permanent in (("Receiver", False), ("Sender", True), ("MustUnderstand", True)):
        with pytest.raises(wire.errors.SoapFault) as refused:
            wire.parse_response(fault(code), "application/soap+xml", ato_certificate=pki.ato, require_signature=False)
        assert (refused.value.code, refused.value.permanent) == (code, permanent)


def test_the_token_request_asks_for_the_reference_clients_claims(pki: Pki) -> None:
    body, _ = wire.sts_build_issue_request(
        abn=PRACTICE_ABN,
        key=pki.key,
        certificate=pki.certificate,
        applies_to=registry.STS_APPLIES_TO_TEST,
        sts_url="https://sts.example.invalid/issue",
    )
    envelope = etree.fromstring(body)
    claims = envelope.find(f".//{{{ns.WST}}}Claims")
    assert claims is not None and claims.get("Dialect") == IDENTITY
    requested = {c.get("Uri"): (c.get("Optional"), c.findtext(f"{{{IDENTITY}}}Value")) for c in claims}
    assert requested == {f"{VANGUARD}abn": ("false", None), f"{VANGUARD}credentialtype": ("false", "D")}
    address = envelope.findtext(f".//{{{ns.WSP}}}AppliesTo/{{{ns.WSA}}}EndpointReference/{{{ns.WSA}}}Address")
    assert address == "https://test.sbr.gov.au/services"
    # Addressed by zeep from the WSDL kept in the repository: its Action, and the token service actually asked.
    wsdl = etree.parse(str(sts_client.WSDL))
    action = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/}input").get(
        "{http://www.w3.org/2006/05/addressing/wsdl}Action"
    )
    assert envelope.findtext(f".//{{{ns.WSA}}}Action") == action == ns.WST_RST_ISSUE_ACTION
    assert envelope.findtext(f".//{{{ns.WSA}}}To") == "https://sts.example.invalid/issue"
    # The token service reads what it asks for: the credential's ABN, credential type D, the AppliesTo.
    request = wire.sts_parse_issue_request(body, trust=pki.trust)
    assert (request.abn, request.credential_type, request.applies_to) == (PRACTICE_ABN, "D", address)


def test_the_applies_to_of_each_environment_is_a_setting(settings: Any) -> None:
    assert settings.ATO_STS_APPLIES_TO_BY_ENVIRONMENT == {
        "sandbox": "https://sbr.gov.au/services",
        "test": "https://test.sbr.gov.au/services",
        "production": "https://sbr.gov.au/services",
    }
    assert registry.STS_APPLIES_TO_PRODUCTION == "https://sbr.gov.au/services"


def test_a_sender_may_be_identified_by_its_wpn(pki: Pki) -> None:
    body, content_type = wire.build_signed_request(
        service_action=registry.PING,
        message_id=wire.new_message_id(),
        conversation_id="c-wpn",
        from_abn="001234567",
        from_party_type=registry.PARTY_TYPE_WPN,
        payloads=[("PingRequest", ping_document())],
        key=pki.key,
        certificate=pki.certificate,
        saml_assertion=pki.token,
        properties=PROPERTIES,
    )
    request = wire.parse_request(body, content_type, trust=pki.trust)
    assert [(p.type, p.party_id) for p in request.from_parties] == [("http://ato.gov.au/PartyIdType/WPN", "001234567")]
    with pytest.raises(ValueError, match="unknown party type"):
        wire.build_signed_request(
            service_action=registry.PING,
            message_id=wire.new_message_id(),
            conversation_id="c",
            from_abn="1",
            from_party_type="http://example.invalid/PartyIdType/X",
            payloads=[("PingRequest", ping_document())],
            key=pki.key,
            certificate=pki.certificate,
            saml_assertion=None,
            properties=PROPERTIES,
        )


def test_a_partly_accepted_answer_says_partial(pki: Pki) -> None:
    items = [events.EventItem("GEN.OK", "Information"), events.EventItem("CMN.ATO.X", "Error", "refused")]
    event = events.build_event(items, partial=True)
    assert events.parse_event(event).maximum_severity == "Partial"
    assert events.parse_event(events.build_event(items)).maximum_severity == "Error"
    body, content_type = _answer(pki, sign=False, payloads=[("Event", event)])
    reply = wire.parse_response(body, content_type, ato_certificate=pki.ato, require_signature=False)
    assert reply.maximum_severity == events.SEVERITY_PARTIAL == "Partial"


def test_every_action_names_the_atos_logical_endpoint() -> None:
    assert registry.ENDPOINTS == (
        "Single-sync",
        "Single-async",
        "BulkBatch-async-push",
        "BulkBatch-async-pull",
        "Collect-async",
    )
    assert {sa.endpoint for sa in registry.SERVICE_ACTIONS} <= set(registry.ENDPOINTS)
    assert registry.MAAS_SUBMIT.endpoint == "BulkBatch-async-push" and registry.MAAS_SUBMIT.bulk
    assert registry.get("CUREL.Search.004.00").endpoint == registry.PING.endpoint == "Single-sync"


def test_maas_is_the_published_sprmbrinfo_0001_2018_with_its_two_interactions() -> None:
    """Submit or Maintain member account (bulk, pushed, its results pulled) and Get or Provision of Details
    (single), in the one service; the short name and action strings are ours."""
    maas_actions = [sa for sa in registry.SERVICE_ACTIONS if sa.service == "MAAS"]
    assert [sa.key for sa in maas_actions] == ["MAAS.Submit.001.00", "MAAS.Get.001.00"]
    assert {(sa.version, sa.service_uri) for sa in maas_actions} == {
        ("0001.2018", "http://sbr.gov.au/ato/sprmbrinfo/2018")
    }
    assert (registry.MAAS_SUBMIT.pattern, registry.MAAS_SUBMIT.endpoint) == ("push-pull", "BulkBatch-async-push")
    assert (registry.MAAS_GET.pattern, registry.MAAS_GET.endpoint, registry.MAAS_GET.bulk) == (
        "single-sync",
        "Single-sync",
        False,
    )
    assert registry.by_uri("http://sbr.gov.au/ato/sprmbrinfo/2018", "Get.001.00") is registry.MAAS_GET


def test_a_bulk_message_delimits_its_records_in_one_document() -> None:
    def member(transaction_id: str) -> maas.MemberTransaction:
        return maas.MemberTransaction(
            transaction_id=transaction_id,
            usi="53004085616001",
            name=PersonName("Citizen", "Jo"),
            birth_date=date(1980, 1, 2),
            status="OPEN",
            event=maas.AccountEvent("OPENED", date(2026, 1, 5)),
        )

    document = codec.encode(maas.SubmitRequest(transactions=[member("T-1"), member("T-2"), member("T-3")]))
    root = etree.fromstring(document)
    q = "{http://www.sbr.gov.au/ato/sprmbrinfo}"
    records = root.findall(f"{q}Transaction")
    assert [r[0].tag for r in records] == [f"{q}RecordDelimiter"] * 3  # each record begins with its delimiter
    assert [r.findtext(f"{q}RecordDelimiter/{q}DocumentId") for r in records] == ["1", "2", "3"]
    assert codec.decode(maas.SubmitRequest, document).transactions[2].delimiter == maas.RecordDelimiter(3)
