"""The ebMS3 header: strictly valid when we send it, read leniently when we receive it."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime

import pytest
from lxml import etree

from ato_gateway import wire
from ato_gateway.wire import ebms, events, mime, ns, registry, wsse

from .conftest import PRACTICE_ABN, PROPERTIES, Pki, ping_document, signed_ping

SCHEMAS = ebms.SCHEMA_DIR


@pytest.fixture(scope="module")
def fixture_schema() -> etree.XMLSchema:
    """The OASIS header schema loaded afresh from its file (not the instance the builders validate with); the
    file's digest is pinned below."""
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "ebms-header-3_0-200704.xsd")))


def _messages(pki: Pki) -> dict[str, tuple[bytes, str]]:
    request = wire.parse_request(*signed_ping(pki), trust=pki.trust)
    return {
        "request": signed_ping(pki, compress=True),
        "agent request": wire.build_signed_request(
            service_action="CUREL.Validate.004.00",
            message_id=wire.new_message_id(),
            conversation_id=str(uuid.uuid4()),
            from_abn=PRACTICE_ABN,
            agent_number="87654321",
            payloads=[("CURELValidateRequest", b"<x/>"), ("Second", b"<y/>")],
            key=pki.key,
            certificate=pki.certificate,
            saml_assertion=pki.token,
            properties=PROPERTIES,
        ),
        "pull": wire.build_signed_pull(
            message_id=wire.new_message_id(),
            mpc=registry.mpc_for(PRACTICE_ABN),
            key=pki.key,
            certificate=pki.certificate,
            saml_assertion=pki.token,
        ),
        "selective pull": wire.build_signed_pull(
            message_id=wire.new_message_id(),
            ref_to_message_id=request.message_id,
            key=pki.key,
            certificate=pki.certificate,
            saml_assertion=pki.token,
        ),
        "response": wire.build_signed_response(
            message_id=wire.new_message_id(),
            ref_to_message_id=request.message_id,
            conversation_id="c",
            service=registry.PING.service_uri,
            action=registry.PING.action,
            to_abn=PRACTICE_ABN,
            payloads=[("PingResponse", b"<r/>")],
            key=pki.ato_key,
            certificate=pki.ato,
        ),
        "receipt": wire.build_signed_receipt(
            request=request, message_id=wire.new_message_id(), key=pki.ato_key, certificate=pki.ato
        ),
        "error": wire.build_signed_error(
            errors=[
                wire.standard_error("EBMS:0004", 'a "detail" with <markup> & \ttabs\r\n', ref_to_message_id="m@x"),
                wire.EbmsError(
                    "EBMS:0006",
                    "warning",
                    "EmptyMessagePartitionChannel",
                    "Communication",
                    "",
                    None,
                    description="nothing yet",
                ),
            ],
            message_id=wire.new_message_id(),
            ref_to_message_id="m@x",
            key=pki.ato_key,
            certificate=pki.ato,
        ),
    }


def _soap(body: bytes, content_type: str) -> bytes:
    return mime.parse_package(body, content_type)[0].body


def test_every_header_we_send_validates_against_the_fixture_schema(pki: Pki, fixture_schema: etree.XMLSchema) -> None:
    for name, (body, content_type) in _messages(pki).items():
        envelope = etree.fromstring(_soap(body, content_type))
        messaging = envelope.find(f"{{{ns.SOAP12}}}Header/{{{ns.EB}}}Messaging")
        assert messaging is not None, name
        assert fixture_schema.validate(messaging), (name, fixture_schema.error_log)
        assert messaging.get(f"{{{ns.SOAP12}}}mustUnderstand") == "true"
        assert messaging.get(f"{{{ns.WSU}}}Id", "").startswith("id-messaging-")


def test_what_we_send_is_already_in_exclusive_canonical_form(pki: Pki) -> None:
    """The builders write canonical text and digest it as written; lxml's C14N of what arrives must agree."""
    for name, (body, content_type) in _messages(pki).items():
        soap = _soap(body, content_type)
        envelope = etree.fromstring(soap)
        for path, tag in (
            (f"{{{ns.SOAP12}}}Header/{{{ns.EB}}}Messaging", b"eb:Messaging"),
            (f"{{{ns.SOAP12}}}Body", b"S12:Body"),
        ):
            element = envelope.find(path)
            assert element is not None
            sent = re.search(rb"<" + tag + rb"[ >].*?</" + tag + rb">", soap, re.DOTALL)
            assert sent is not None
            assert wsse.exc_c14n(element) == sent.group(0), name


def test_the_packaged_schemas_are_the_ones_their_readme_names() -> None:
    """Each schema is the file whose source and SHA-256 schemas/README.md records: an edit shows here."""
    readme = (SCHEMAS / "README.md").read_text()
    pinned = dict(re.findall(r"^\| `([\w.-]+\.xsd)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.MULTILINE))
    found = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in SCHEMAS.glob("*.xsd")}
    assert found == pinned and len(found) == 4


def test_an_invalid_header_is_never_sent(pki: Pki) -> None:
    with pytest.raises(wire.SchemaInvalid, match="MessageId"):
        wire.build_signed_pull(message_id="", mpc="m", key=pki.key, certificate=pki.certificate, saml_assertion=None)
    with pytest.raises(ValueError, match="BMS Version"):
        wire.build_signed_request(
            service_action=registry.PING,
            message_id="a@b",
            conversation_id="c",
            from_abn=PRACTICE_ABN,
            payloads=[("PingRequest", ping_document())],
            key=pki.key,
            certificate=pki.certificate,
            saml_assertion=None,
            properties={k: v for k, v in PROPERTIES.items() if k != "BMS Version"},
        )
    with pytest.raises(ValueError, match="cannot carry"):
        wire.build_signed_pull(
            message_id="a\x01@b", mpc="m", key=pki.key, certificate=pki.certificate, saml_assertion=None
        )


def test_the_header_carries_what_the_reference_says(pki: Pki) -> None:
    body, content_type = _messages(pki)["agent request"]
    header = ebms.parse_messaging(ebms.find_messaging(etree.fromstring(_soap(body, content_type))))
    [user] = header.user_messages
    assert [(p.type, p.party_id) for p in user.from_parties] == [
        (registry.PARTY_TYPE_ABN, PRACTICE_ABN),
        (registry.PARTY_TYPE_TAN, "87654321"),
    ]
    assert user.from_role == registry.ROLE_REGISTERED_AGENT
    assert [(p.type, p.party_id) for p in user.to_parties] == [(registry.PARTY_TYPE_ABN, "51824753556")]
    assert user.to_role == registry.ROLE_AGENCY
    assert (user.service, user.action) == ("http://sbr.gov.au/ato/curel/2018", "Validate.004.00")
    assert user.properties == PROPERTIES
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
        etree.fromstring(_soap(body, content_type)).findtext(f".//{{{ns.EB}}}Timestamp") or "",
    )
    assert re.fullmatch(r"[0-9a-f-]{36}@[\w.-]+", user.message_id)
    first = user.parts[0]
    assert first.href.startswith("cid:") and first.properties == {
        "DocumentName": "CURELValidateRequest",
        "PartID": "1",
        "DocumentType": "BASE",
        "MimeType": "application/xml",
        "filename": "CURELValidateRequest.xml",
    }
    assert [p.document_name for p in user.parts] == ["CURELValidateRequest", "Second"]
    compressed = ebms.parse_messaging(ebms.find_messaging(etree.fromstring(_soap(*_messages(pki)["request"]))))
    assert compressed.user_messages[0].parts[0].properties["CompressionType"] == "application/gzip"


def _pull_header(inner: str) -> etree._Element:
    return etree.fromstring(
        f'<eb:Messaging xmlns:eb="{ns.EB}" xmlns:S12="{ns.SOAP12}" S12:mustUnderstand="true"><eb:SignalMessage>'
        f"<eb:MessageInfo><eb:Timestamp>2026-12-01T00:00:00.000Z</eb:Timestamp><eb:MessageId>p@x</eb:MessageId>"
        f"{inner}</eb:SignalMessage></eb:Messaging>".encode()
    )


def test_a_selective_pull_is_sent_valid_and_read_in_either_form(pki: Pki, fixture_schema: etree.XMLSchema) -> None:
    """We send the pushed message's id in MessageInfo/RefToMessageId, with no mpc. The ATO's pull is reported to
    take eb:RefToMessageId inside eb:PullRequest, which the OASIS schema refuses (only other namespaces may go
    there): we read that form too, and never send it."""
    body, content_type = wire.build_signed_pull(
        message_id="pull@x", ref_to_message_id="pushed@x", key=pki.key, certificate=pki.certificate, saml_assertion=None
    )
    messaging = ebms.find_messaging(etree.fromstring(_soap(body, content_type)))
    assert fixture_schema.validate(messaging), fixture_schema.error_log
    pull = messaging.find(f"{{{ns.EB}}}SignalMessage/{{{ns.EB}}}PullRequest")
    assert pull is not None and pull.get("mpc") is None and len(pull) == 0
    [ours] = ebms.parse_messaging(messaging).signals
    assert (ours.has_pull_request, ours.pull_ref_to_message_id, ours.pull_mpc) == (True, "pushed@x", None)
    request = wire.parse_request(body, content_type, trust=pki.trust)
    assert (request.kind, request.ref_to_message_id, request.mpc) == ("pull", "pushed@x", None)

    reported = _pull_header(
        "</eb:MessageInfo><eb:PullRequest><eb:RefToMessageId>pushed@x</eb:RefToMessageId></eb:PullRequest>"
    )
    assert not fixture_schema.validate(reported)
    [theirs] = ebms.parse_messaging(reported).signals
    assert (theirs.pull_ref_to_message_id, theirs.pull_mpc) == ("pushed@x", None)
    channel = _pull_header(f'</eb:MessageInfo><eb:PullRequest mpc="{registry.mpc_for(PRACTICE_ABN)}"/>')
    assert ebms.parse_messaging(channel).signals[0].pull_ref_to_message_id is None
    with pytest.raises(ValueError, match="names a channel"):
        wire.build_signed_pull(message_id="p@x", key=pki.key, certificate=pki.certificate, saml_assertion=None)


def test_received_headers_are_read_leniently(fixture_schema: etree.XMLSchema) -> None:
    # As the real ATO client sends: an empty eb:Schema (forbidden by the schema), and properties we do not know.
    envelope = etree.fromstring(
        f"""
    <S12:Envelope xmlns:S12="{ns.SOAP12}" xmlns:eb="{ns.EB}"><S12:Header><eb:Messaging S12:mustUnderstand="true">
      <eb:UserMessage><eb:MessageInfo><eb:Timestamp>2020-03-11T00:13:32.868Z</eb:Timestamp>
        <eb:MessageId>x@y</eb:MessageId></eb:MessageInfo>
        <eb:PartyInfo><eb:From><eb:PartyId type="{registry.PARTY_TYPE_ABN}">12</eb:PartyId>
          <eb:Role>r</eb:Role></eb:From>
          <eb:To><eb:PartyId>51824753556</eb:PartyId><eb:Role>a</eb:Role></eb:To></eb:PartyInfo>
        <eb:CollaborationInfo><eb:Service>http://sbr.gov.au/ato/payevnt/2020</eb:Service>
          <eb:Action>Submit.004.00</eb:Action><eb:ConversationId>c</eb:ConversationId></eb:CollaborationInfo>
        <eb:MessageProperties><eb:Property name="Something New">1</eb:Property></eb:MessageProperties>
        <eb:PayloadInfo><eb:PartInfo href="cid:p@x"><eb:Schema></eb:Schema><eb:PartProperties>
          <eb:Property name="DocumentName">PAYEVNT</eb:Property><eb:Property name="Unheard Of">?</eb:Property>
        </eb:PartProperties></eb:PartInfo></eb:PayloadInfo></eb:UserMessage></eb:Messaging></S12:Header>
    <S12:Body/></S12:Envelope>""".encode()
    )
    messaging = ebms.find_messaging(envelope)
    assert not fixture_schema.validate(messaging)  # the schema would refuse it ...
    with pytest.raises(wire.SchemaInvalid):
        ebms.validate_messaging(messaging)  # ... and so would we, if we were sending it
    [user] = ebms.parse_messaging(messaging).user_messages  # but we read it
    assert user.timestamp == datetime(2020, 3, 11, 0, 13, 32, 868000, tzinfo=UTC)
    assert user.parts[0].document_name == "PAYEVNT" and user.parts[0].content_id == "p@x"
    assert user.properties == {"Something New": "1"}


def test_registry_holds_every_service_and_action() -> None:
    keys = {sa.key for sa in registry.SERVICE_ACTIONS}
    assert {f"CUREL.{v}.004.00" for v in ("Submit", "Validate", "Remove", "ValidateRemove", "List", "Search")} <= keys
    assert {
        "CUDTL2016.Get.003.00",
        "CUDTL.Get.003.00",
        "CUADDR.List.003.00",
        "CUASSOC.List.001.00",
        "CUAUTHCNTCT.Submit.001.00",
        "CUFI.Validate.003.00",
        "COMMPREF.Get.001.00",
        "CC.Get.001.00",
        "MAAS.Submit.001.00",
        "PING.Ping.001.00",
    } <= keys
    assert not [sa for sa in registry.SERVICE_ACTIONS if sa.service == "CUDTL2016" and sa.verb != "Get"]
    assert registry.MAAS_SUBMIT.pattern == "push-pull" and registry.MAAS_SUBMIT.document_type == "BULK"
    assert {sa.pattern for sa in registry.SERVICE_ACTIONS if sa.service != "MAAS"} == {"single-sync"}
    assert registry.by_uri("http://sbr.gov.au/ato/cudtl/2016", "Get.003.00") == registry.get("CUDTL2016.Get.003.00")
    assert registry.by_uri("http://sbr.gov.au/ato/cudtl/2016", "Submit.003.00") is None
    # The connection test is OASIS's test service and action (ebMS 3.0 core, 5.2.2), not a service of our own.
    assert registry.PING.service_uri == "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service"
    assert registry.PING.action == "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test"
    assert registry.get("PING.Ping.001.00") is registry.PING
    assert registry.abn_from_mpc(registry.mpc_for(PRACTICE_ABN)) == PRACTICE_ABN
    with pytest.raises(KeyError, match="known"):
        registry.get("NOPE.Submit")


def test_events_round_trip() -> None:
    items = [
        events.EventItem(
            "CMN.ATO.SPRMBRINFO.VALID", "Information", "ok", "", (("TFN", "masked"),), (("1", "/SPRMBRINFO/Member[1]"),)
        ),
        events.EventItem("CMN.ATO.AUTH.002", "Error", "not authorised", "detail & more"),
    ]
    event = events.parse_event(events.build_event(items))
    assert event.maximum_severity == "Error" and list(event.items) == items


def test_the_library_needs_no_django() -> None:
    import os
    import subprocess
    import sys

    script = (
        "import sys, ato_gateway.wire; "
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
