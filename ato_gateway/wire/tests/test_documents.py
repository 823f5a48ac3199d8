"""The business documents against their XSDs: every golden file decodes, encodes back to the same bytes and
validates; every action in the registry has its request and response classes and a golden file of each; the
codec refuses what it must."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec, curel, decode, decode_any, encode, stream
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName

GOLDEN = Path(codec.__file__).resolve().parent / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*.xml"))
BUSINESS_ACTIONS = [a for a in registry.SERVICE_ACTIONS if a != registry.PING]


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_file_round_trips_and_validates(path: Path) -> None:
    data = path.read_bytes()
    document = decode_any(data)
    assert path.name.split("-")[0].removesuffix(".xml") == document.ROOT
    assert encode(document) == codec.compact(data)


@pytest.mark.parametrize("action", BUSINESS_ACTIONS, ids=lambda a: a.key)
def test_every_action_has_typed_documents_and_golden_files(action: registry.ServiceAction) -> None:
    for root in (action.request_document, action.response_document):
        cls = codec.document_class(action.key, root)
        assert cls is not None, f"no document class for {action.key} {root}"
        goldens = [decode_any(p.read_bytes()) for p in GOLDEN.glob(f"{root}*.xml")]
        assert any(type(document) is cls for document in goldens), f"no golden file for {action.key} {root}"


def test_encode_refuses_an_invalid_document() -> None:
    with pytest.raises(codec.DocumentError, match="TaxFileNumberId"):
        encode(curel.SearchRequest(client=ClientIdentifier(tfn="12x")))


def test_decode_refuses_the_wrong_root_and_unsafe_xml() -> None:
    request = encode(curel.SearchRequest(client=ClientIdentifier.of(tfn="123456782"), person_name=PersonName("A")))
    with pytest.raises(codec.DocumentError, match="expected CURELSearchResponse"):
        decode(curel.SearchResponse, request)
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(codec.DocumentError, match="DOCTYPE"):
        decode_any(bomb)
    with pytest.raises(codec.DocumentError, match="not well-formed"):
        decode_any(b"<CURELSearchRequest")


def test_stream_takes_list_fields_only() -> None:
    data = encode(curel.SearchResponse(client=curel.FoundClient(entity_type="COY", organisation_name="Acme")))
    with pytest.raises(TypeError, match="not a list field"):
        stream(curel.SearchResponse, data, "client")


def _listed_clients(count: int) -> list[curel.ListedClient]:
    return [
        curel.ListedClient(
            tfn=f"10000{number:04d}",
            entity_type="COY",
            organisation_name=f"Client {number} Pty Ltd",
            relationships=[curel.ListedRelationship(level="CLIENT", start_date=date(2020, 1, number % 28 + 1))],
        )
        for number in range(count)
    ]


def test_stream_yields_list_items_in_order_and_then_the_rest_of_the_document() -> None:
    clients = _listed_clients(5)
    items = stream(curel.ListResponse, encode(curel.ListResponse(clients=clients, continuation="next")), "clients")
    seen = []
    for item in items:
        assert items.document is None  # the other fields come after the items, so only once they are done
        seen.append(item)
    assert seen == clients and items.count == 5
    assert items.document is not None
    assert items.document.continuation == "next" and items.document.clients == []


def test_stream_refuses_an_invalid_item_in_the_middle() -> None:
    # Long enough that the parser reads it in several chunks, so items before the bad one are handed out first.
    clients = _listed_clients(2000)
    data = encode(curel.ListResponse(clients=clients, continuation="next"))
    data = data.replace(b"<TaxFileNumberId>100001000<", b"<TaxFileNumberId>10000100X<")
    items = stream(curel.ListResponse, data, "clients")
    seen = []
    with pytest.raises(codec.DocumentError, match="TaxFileNumberId"):
        for item in items:
            seen.append(item)
    assert 0 < len(seen) <= 1000 and seen == clients[: len(seen)]  # in order, and never the bad item or later
    assert items.document is None


def test_stream_refuses_a_doctype_the_byte_check_cannot_see() -> None:
    # In UTF-16 "<!DOCTYPE" is not those bytes: the parsed document must be looked at, as xmlsafe.parse does.
    text = encode(curel.ListResponse(clients=_listed_clients(3), continuation="next")).decode("utf-8")
    body = text.split("\n", 1)[1].replace("Client 1 Pty Ltd<", "&name;<")
    data = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<!DOCTYPE CURELListResponse [<!ENTITY name "Someone Else Pty Ltd">]>\n' + body
    ).encode("utf-16")
    with pytest.raises(codec.DocumentError, match="DOCTYPE"):
        list(stream(curel.ListResponse, data, "clients"))
    with pytest.raises(codec.DocumentError, match="DOCTYPE"):
        decode(curel.ListResponse, data)
