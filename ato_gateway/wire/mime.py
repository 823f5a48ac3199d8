"""SOAP with Attachments: multipart/related packages, built and parsed byte-exactly.

Attachments are signed over their octets, so this module never lets a text layer touch them: parts are
``Content-Transfer-Encoding: binary`` on the way out, and on the way in a part's body is exactly the bytes between
its header block and the next CRLF-delimiter (base64 parts are decoded, as the SwA profile requires).
The stdlib ``email`` package is used only to read the Content-Type header's parameters.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import quote, unquote

from .errors import MalformedMessage

SOAP_CONTENT_TYPE = "application/soap+xml"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class MimePart:
    content_id: str  # without angle brackets
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=256)
def _safe_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in label) or "part"


def new_content_id(label: str, host: str = "sbr.invalid") -> str:
    """A globally unique Content-ID whose characters need no escaping inside a ``cid:`` URL."""
    return f"{_safe_label(label)}-{secrets.token_hex(8)}@{host}"


_CID_SAFE = re.compile(r"[A-Za-z0-9@.\-_~!$&'()*+,;=:]*")


def cid_url(content_id: str) -> str:
    """RFC 2392: a ``cid:`` URL is the Content-ID without brackets, URL-escaped."""
    if _CID_SAFE.fullmatch(content_id):
        return "cid:" + content_id
    return "cid:" + quote(content_id, safe="@.-_~!$&'()*+,;=:")


def content_id_from_url(url: str) -> str | None:
    if not url.startswith("cid:"):
        return None
    return unquote(url[4:])


def build_multipart(root: bytes, attachments: list[MimePart], *, root_content_id: str) -> tuple[bytes, str]:
    """The HTTP body and Content-Type of a SwA package whose first part is the SOAP 1.2 envelope."""
    boundary = f"MIMEBoundary_{secrets.token_hex(16)}"
    marker = boundary.encode("ascii")
    delimiter = b"--" + marker
    chunks: list[bytes] = [
        delimiter,
        b"\r\nContent-Type: application/soap+xml; charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <",
        root_content_id.encode("ascii"),
        b">\r\n\r\n",
        root,
    ]
    for part in attachments:
        if marker in part.body:  # 128 random bits make this practically impossible; never produce a broken package
            return build_multipart(root, attachments, root_content_id=root_content_id)
        chunks += [
            b"\r\n",
            delimiter,
            b"\r\nContent-Type: ",
            part.content_type.encode("ascii"),
            b"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <",
            part.content_id.encode("ascii"),
            b">\r\n",
        ]
        for name, value in part.headers.items():
            chunks += [name.encode("ascii"), b": ", value.encode("ascii"), b"\r\n"]
        chunks += [b"\r\n", part.body]
    if marker in root:
        return build_multipart(root, attachments, root_content_id=root_content_id)
    chunks += [b"\r\n", delimiter, b"--\r\n"]
    content_type = (
        f'multipart/related; type="{SOAP_CONTENT_TYPE}"; boundary="{boundary}"; '
        f'start="<{root_content_id}>"; start-info="{SOAP_CONTENT_TYPE}"'
    )
    return b"".join(chunks), content_type


def content_type_params(content_type: str) -> tuple[str, dict[str, str]]:
    """The media type (lower case) and its parameters, quotes removed."""
    message = Message()
    message["Content-Type"] = content_type
    media = message.get_content_type().lower()
    params: dict[str, str] = {}
    for key, value in message.get_params(failobj=[])[1:]:
        params[key.lower()] = value if isinstance(value, str) else str(value)
    return media, params


def parse_package(body: bytes, content_type: str) -> tuple[MimePart, dict[str, MimePart]]:
    """The root (SOAP) part and the attachments by Content-ID, from a SwA package or a bare SOAP envelope."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"message of {len(body)} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes")
    media, params = content_type_params(content_type or "")
    if media in (SOAP_CONTENT_TYPE, "text/xml", "application/xml"):
        return MimePart(content_id="", content_type=media, body=body), {}
    if media != "multipart/related":
        raise MalformedMessage(f"unexpected Content-Type {content_type!r}: expected multipart/related or SOAP")
    boundary = params.get("boundary")
    if not boundary:
        raise MalformedMessage("multipart/related Content-Type has no boundary parameter")
    parts = _split(body, boundary.encode("latin-1"))
    if not parts:
        raise MalformedMessage("multipart/related package has no parts")
    start = params.get("start", "").strip()
    start_id = start[1:-1] if start.startswith("<") and start.endswith(">") else start
    root: MimePart | None = None
    attachments: dict[str, MimePart] = {}
    for index, part in enumerate(parts):
        is_root = part.content_id == start_id if start_id else index == 0
        if is_root and root is None:
            root = part
            continue
        if not part.content_id:
            raise MalformedMessage("an attachment has no Content-ID")
        if part.content_id in attachments:
            raise MalformedMessage(f"two parts share the Content-ID <{part.content_id}>")
        attachments[part.content_id] = part
    if root is None:
        raise MalformedMessage(f"no MIME part has the start Content-ID <{start_id}>")
    root_media = content_type_params(root.content_type)[0] if root.content_type else ""
    if root_media not in (SOAP_CONTENT_TYPE, "text/xml", "application/xop+xml"):
        raise MalformedMessage(f"the root part is {root.content_type!r}, not a SOAP envelope")
    return root, attachments


def _split(body: bytes, boundary: bytes) -> list[MimePart]:
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        position = 0
    else:
        position = body.find(b"\r\n" + delimiter)
        if position < 0:
            raise MalformedMessage("multipart body does not contain its boundary")
        position += 2
    parts: list[MimePart] = []
    while True:
        position += len(delimiter)
        if body[position : position + 2] == b"--":
            return parts
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise MalformedMessage("multipart body ends inside a delimiter line")
        start = line_end + 2
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise MalformedMessage("multipart body has no closing delimiter")
        parts.append(_part(body[start:end]))
        position = end + 2


def _part(raw: bytes) -> MimePart:
    split = raw.find(b"\r\n\r\n")
    if split >= 0:
        head, body = raw[:split], raw[split + 4 :]
    elif raw.startswith(b"\r\n"):  # no headers at all
        head, body = b"", raw[2:]
    else:
        raise MalformedMessage("a MIME part has no blank line after its headers")
    headers: dict[str, str] = {}
    last = ""
    for line in head.decode("latin-1").split("\r\n"):
        if not line:
            continue
        if line[0] in " \t" and last:  # folded header line
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MalformedMessage(f"bad MIME header line {line[:60]!r}")
        last = name.strip().lower()
        headers[last] = value.strip()
    content_id = headers.get("content-id", "").strip()
    if content_id.startswith("<") and content_id.endswith(">"):
        content_id = content_id[1:-1]
    encoding = headers.get("content-transfer-encoding", "binary").strip().lower()
    if encoding == "base64":
        try:
            body = base64.b64decode(b"".join(body.split()), validate=True)
        except binascii.Error as exc:
            raise MalformedMessage(f"part <{content_id}> is not valid base64") from exc
    elif encoding not in ("binary", "8bit", "7bit"):
        raise MalformedMessage(f"part <{content_id}> has unsupported Content-Transfer-Encoding {encoding!r}")
    return MimePart(content_id=content_id, content_type=headers.get("content-type", ""), body=body, headers=headers)
