"""SwA packages: byte-exact parts, Content-IDs, the start parameter."""

from __future__ import annotations

import base64

import pytest

from ato_gateway.wire import MalformedMessage, mime


def test_round_trip_is_binary_safe() -> None:
    nasty = bytes(range(256)) + b"\r\n--MIMEBoundary_fake\r\n\r\n" + b"\r\n"
    root = b"<S12:Envelope/>"
    part = mime.MimePart(mime.new_content_id("Doc"), "application/octet-stream", nasty)
    body, content_type = mime.build_multipart(root, [part], root_content_id="root@x")
    parsed_root, attachments = mime.parse_package(body, content_type)
    assert parsed_root.body == root
    assert attachments[part.content_id].body == nasty
    assert 'start="<root@x>"' in content_type and 'type="application/soap+xml"' in content_type


def test_start_parameter_picks_the_root_and_base64_parts_are_decoded() -> None:
    body = (
        b"--b\r\nContent-Type: application/xml\r\nContent-ID: <att@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"\x00\x01payload")
        + b"\r\n--b\r\nContent-Type: application/soap+xml\r\nContent-ID: <soap@x>\r\n\r\n<Envelope/>\r\n--b--\r\n"
    )
    root, attachments = mime.parse_package(
        body, 'multipart/related; boundary=b; start="<soap@x>"; type="application/soap+xml"'
    )
    assert root.body == b"<Envelope/>"
    assert attachments["att@x"].body == b"\x00\x01payload"


def test_a_bare_soap_envelope_is_accepted() -> None:
    root, attachments = mime.parse_package(b"<Envelope/>", "application/soap+xml; charset=utf-8")
    assert root.body == b"<Envelope/>" and attachments == {}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"--b\r\nContent-ID: <a>\r\n\r\nx", "multipart/related; boundary=b"),
        (b"no boundary here", "multipart/related; boundary=b"),
        (b"x", "multipart/related"),
        (b"x", "text/html"),
        (b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "multipart/related; boundary=b"),
    ],
)
def test_broken_packages_are_malformed(body: bytes, content_type: str) -> None:
    with pytest.raises(MalformedMessage):
        mime.parse_package(body, content_type)


def test_cid_urls_escape_what_needs_escaping() -> None:
    assert mime.cid_url("a-b@c") == "cid:a-b@c"
    assert mime.cid_url("a b%@c") == "cid:a%20b%25@c"
    assert mime.content_id_from_url("cid:a%20b%25@c") == "a b%@c"
