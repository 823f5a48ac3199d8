"""The business documents against their XSDs: every golden file decodes, encodes back to the same bytes and
validates; every action in the registry has its request and response classes and a golden file of each; the
codec refuses what it must."""

from __future__ import annotations

from pathlib import Path

import pytest

from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec, curel, decode, decode_any, encode, stream
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName

GOLDEN = Path(codec.__file__).resolve().parent / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*.xml"))
BUSINESS_ACTIONS = [a for a in registry.SERVICE_ACTIONS if a != registry.PING]


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_file_round_trips_and_validates(path: Path):
    data = path.read_bytes()
    document = decode_any(data)
    assert path.name.split("-")[0].removesuffix(".xml") == document.ROOT
    assert encode(document) == codec.compact(data)


@pytest.mark.parametrize("action", BUSINESS_ACTIONS, ids=lambda a: a.key)
def test_every_action_has_typed_documents_and_golden_files(action: registry.ServiceAction):
    for root in (action.request_document, action.response_document):
        cls = codec.document_class(action.key, root)
        assert cls is not None, f"no document class for {action.key} {root}"
        assert any(
            decode_any(p.read_bytes()).SERVICE_ACTION == action.key
            for p in GOLDEN.glob(f"{root}*.xml")
            if type(decode_any(p.read_bytes())) is cls
        ), f"no golden file for {action.key} {root}"


def test_encode_refuses_an_invalid_document():
    with pytest.raises(codec.DocumentError, match="TaxFileNumberId"):
        encode(curel.SearchRequest(client=ClientIdentifier(tfn="12x")))


def test_decode_refuses_the_wrong_root_and_unsafe_xml():
    request = encode(curel.SearchRequest(client=ClientIdentifier.of(tfn="123456782"), person_name=PersonName("A")))
    with pytest.raises(codec.DocumentError, match="expected CURELSearchResponse"):
        decode(curel.SearchResponse, request)
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(codec.DocumentError, match="DOCTYPE"):
        decode_any(bomb)
    with pytest.raises(codec.DocumentError, match="not well-formed"):
        decode_any(b"<CURELSearchRequest")


def test_stream_takes_list_fields_only():
    data = encode(curel.SearchResponse(client=curel.FoundClient(entity_type="COY", organisation_name="Acme")))
    with pytest.raises(TypeError, match="not a list field"):
        stream(curel.SearchResponse, data, "client")
