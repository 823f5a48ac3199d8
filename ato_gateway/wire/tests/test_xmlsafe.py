"""Hostile XML is refused before anything looks at it."""

from __future__ import annotations

import threading

import pytest
from lxml import etree

from ato_gateway import wire
from ato_gateway.wire import MalformedMessage, UnsafeXML, xmlsafe

from .conftest import Pki

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>"""

EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE foo SYSTEM "http://127.0.0.1:1/evil.dtd"><foo/>'

UTF16_XXE = XXE.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")


@pytest.mark.parametrize(
    "payload", [BILLION_LAUGHS, XXE, EXTERNAL_DTD, UTF16_XXE], ids=["laughs", "xxe", "dtd", "utf16"]
)
def test_doctype_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(UnsafeXML, match=r"DOCTYPE|entity"):
        xmlsafe.parse(payload)


def test_deep_nesting_and_size_are_limited() -> None:
    with pytest.raises(UnsafeXML, match="nests deeper"):
        xmlsafe.parse(b"<a>" * 100 + b"</a>" * 100)
    with pytest.raises(UnsafeXML, match="exceeds"):
        xmlsafe.parse(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)


def test_not_well_formed_is_malformed_and_permanent() -> None:
    with pytest.raises(MalformedMessage) as error:
        xmlsafe.parse(b"<a><b></a>")
    assert error.value.permanent


def test_hostile_payloads_inside_a_message_are_refused(pki: Pki) -> None:
    for payload in (BILLION_LAUGHS, XXE):
        with pytest.raises(UnsafeXML):
            wire.parse_request(payload, "application/soap+xml", trust=pki.trust)
        with pytest.raises(UnsafeXML):
            wire.parse_response(payload, "application/soap+xml", ato_certificate=pki.ato)
        with pytest.raises(UnsafeXML):
            wire.sts_parse_issue_request(payload, trust=pki.trust)
        with pytest.raises(UnsafeXML):
            wire.sts_parse_issue_response(payload, sts_certificate=pki.ato)
        with pytest.raises(UnsafeXML):
            wire.keystore.list_credentials(payload)


def test_only_bytes_are_parsed() -> None:
    with pytest.raises(TypeError, match=r"^xmlsafe\.parse takes bytes$"):
        xmlsafe.parse("<a/>")  # type: ignore[arg-type]
    for data in (b"<a>1</a>", bytearray(b"<a>1</a>"), memoryview(b"<a>1</a>")):
        assert xmlsafe.parse(data).text == "1"  # type: ignore[arg-type]  # any bytes-like object is taken


def test_the_limits_are_inclusive_and_named_in_the_refusal() -> None:
    """The console shows the refusal to whoever investigates a message: it names the size or depth found."""
    document = b"<a>" + b"x" * 43 + b"</a>"  # 50 bytes
    assert xmlsafe.parse(document, max_bytes=50).text == "x" * 43
    with pytest.raises(UnsafeXML) as refused:
        xmlsafe.parse(document, max_bytes=49)
    assert str(refused.value) == "XML document of 50 bytes exceeds the limit of 49 bytes"
    assert xmlsafe.parse(b"<a>" * 64 + b"</a>" * 64) is not None  # MAX_DEPTH elements deep is allowed
    assert xmlsafe.parse(b"<a>" * 5 + b"</a>" * 5, max_depth=5) is not None
    with pytest.raises(UnsafeXML) as refused:
        xmlsafe.parse(b"<a>" * 6 + b"</a>" * 6, max_depth=5)
    assert str(refused.value) == "XML nests deeper than 5 elements"
    with pytest.raises(UnsafeXML, match="nests deeper than 64 elements"):
        xmlsafe.parse(b"<a>" * 65 + b"</a>" * 65)


def test_the_quick_look_refuses_either_declaration_before_parsing() -> None:
    """The raw bytes are looked at before lxml sees them: a DOCTYPE alone, or an entity declaration alone (even
    where a parser would drop it, in a comment), is refused by that look and not by a later layer."""
    quick = "XML with a DOCTYPE or entity declaration is refused (entity expansion / XXE attack)"
    for data in (EXTERNAL_DTD, b"<a><!-- <!ENTITY x 'y'> --></a>", b"<!DOCTYPE a><a/>"):
        with pytest.raises(UnsafeXML) as refused:
            xmlsafe.parse(data)
        assert str(refused.value) == quick


def test_a_parse_error_about_entities_or_doctypes_is_unsafe_not_merely_malformed() -> None:
    with pytest.raises(UnsafeXML, match=r"^XML refused: Entity 'foo' not defined"):
        xmlsafe.parse(b"<a>&foo;</a>")
    hidden = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE><r/>'.encode("utf-16")
    with pytest.raises(UnsafeXML, match=r"^XML refused: .*DOCTYPE"):
        xmlsafe.parse(hidden)
    with pytest.raises(MalformedMessage, match=r"^XML is not well-formed: .*end"):
        xmlsafe.parse(b"<a></b>")


def test_a_hidden_doctype_is_refused_by_the_parsed_trees_check() -> None:
    hidden = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16")
    with pytest.raises(UnsafeXML) as refused:
        xmlsafe.parse(hidden)
    assert str(refused.value) == "XML with a DOCTYPE is refused (entity expansion / XXE attack)"


def test_values_are_read_as_exclusive_c14n_signs_them() -> None:
    """Comments and processing instructions go, so `.text` is the whole signed value; whitespace between elements
    stays, so a digest over it still matches; a text node beyond libxml2's own limit is refused."""
    root = xmlsafe.parse(b"<a>\n  <id>abc<!---->def</id><?pi x?>\n  <b>x<?cut?>y</b>\n</a>")
    assert [e.text for e in root] == ["abcdef", "xy"]
    assert etree.tostring(root) == b"<a>\n  <id>abcdef</id>\n  <b>xy</b>\n</a>"
    with pytest.raises(MalformedMessage):
        xmlsafe.parse(b"<a>" + b"x" * 10_000_001 + b"</a>")


def test_dtd_validation_is_not_asked_of_a_document_without_one() -> None:
    assert xmlsafe.parse(b'<a xmlns="urn:x"><b/></a>').tag == "{urn:x}a"


def test_each_thread_has_a_parser_of_its_own() -> None:
    """Made once per thread, not once per message; in a new thread (a worker's), made with the same options."""
    here = xmlsafe._parser()
    assert xmlsafe._parser() is here
    there: list[etree.XMLParser] = []
    parsed: list[str] = []

    def work() -> None:
        there.extend([xmlsafe._parser(), xmlsafe._parser()])
        parsed.append(etree.tostring(xmlsafe.parse(b"<a><!-- gone -->x<?pi gone?>y</a>")).decode())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert isinstance(there[0], etree.XMLParser) and there[0] is there[1] and there[0] is not here
    assert parsed == ["<a>xy</a>"]


def test_an_entity_reference_left_in_a_tree_is_refused() -> None:
    """The last layer, on its own: whatever parser made the tree, a reference to an entity is not let through."""
    root = etree.fromstring(b"<a><b/></a>")
    root[0].append(etree.Entity("secret"))
    with pytest.raises(UnsafeXML) as refused:
        xmlsafe._check_tree(root, xmlsafe.MAX_DEPTH)
    assert str(refused.value) == "XML with an entity reference (&secret;) is refused"
    xmlsafe._check_tree(etree.fromstring(b"<a><b/></a>"), xmlsafe.MAX_DEPTH)
