"""Hostile XML is refused before anything looks at it."""

from __future__ import annotations

import pytest

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
