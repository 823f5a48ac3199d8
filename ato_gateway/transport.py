"""The one way out to the ATO: HTTP POST with mandatory timeouts. Every failure says whether it is worth trying
again (a dropped connection, a timeout, a 502, 503 or 504) or not (any other status: what we send is wrong and
will stay wrong, or the ATO says so in words).

A SOAP answer is handed back whatever its status, for the caller to read and decide from: ebMS error signals
commonly ride an HTTP 500 (reported by another implementation), and a SOAP 1.2 fault comes with a 400 or 500 (the
SOAP 1.2 HTTP binding). Their own code decides, not the status."""

from __future__ import annotations

import os
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
from django.conf import settings


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool, http_status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.http_status = http_status
        self.code = code


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    elapsed_ms: int


# httpcore (the transport under httpx), not requests or urllib3: both of those read every response's header block
# with the stdlib email parser, which for a multipart/related reply (every SwA message) also compiles a regular
# expression for that reply's unique boundary. Measured on a 6 KB POST over loopback: requests about 1.1 ms of
# client CPU a request, urllib3 0.63 ms, httpcore 0.29 ms; at hundreds of messages a second that is a tenth of a
# worker's budget. httpcore never sends a request twice on its own (libcurl, for one, silently re-sends a POST whose
# reused connection died), so every attempt the outbox records is exactly one request.
_pools: dict[tuple[int, str], httpcore.ConnectionPool | httpcore.HTTPProxy] = {}


def _pool(url: str) -> httpcore.ConnectionPool | httpcore.HTTPProxy:
    """One thread-safe connection pool per process and scheme (a pool must not cross a fork), through the proxy
    the environment names for that scheme unless the host is exempt (HTTPS_PROXY, NO_PROXY, as requests did)."""
    parts = urlsplit(url)
    key = (os.getpid(), f"{parts.scheme}://{parts.hostname}")
    pool = _pools.get(key)
    if pool is None:
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
            pool = httpcore.HTTPProxy(proxy_url=proxy, max_connections=32)
        else:
            pool = httpcore.ConnectionPool(max_connections=32)
        _pools[key] = pool
    return pool


def post(url: str, body: bytes, content_type: str, *, timeout: tuple[float, float] | None = None) -> Reply:
    connect, read = timeout or (settings.ATO_CONNECT_TIMEOUT_SECONDS, settings.ATO_READ_TIMEOUT_SECONDS)
    started = time.monotonic()
    try:
        with _pool(url).stream(
            "POST",
            url,
            headers=[(b"Content-Type", content_type.encode("latin-1"))],
            content=body,
            extensions={"timeout": {"connect": connect, "read": read, "write": read, "pool": read}},
        ) as response:
            status, headers = response.status, response.headers
            content = _read_capped(response, settings.GATEWAY_MAX_REPLY_BYTES)
    except httpcore.UnsupportedProtocol as exc:  # the configured URL is not http(s): sending again will not help
        raise TransportError(
            f"The ATO address {url!r} is not an HTTP(S) URL.", permanent=True, code="HTTP:URL"
        ) from exc
    except httpcore.TimeoutException as exc:
        raise TransportError(
            f"The ATO did not answer in time ({exc.__class__.__name__}).", permanent=False, code="HTTP:TIMEOUT"
        ) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:  # refused, reset, dropped, bad TLS
        raise TransportError(
            "The connection to the ATO failed or was reset.", permanent=False, code="HTTP:CONNECTION"
        ) from exc
    elapsed = int((time.monotonic() - started) * 1000)
    found = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    content_type = found.decode("latin-1")
    if status in RETRY_STATUSES:  # a gateway or proxy in front of the ATO, or the ATO busy: it never read the message
        raise TransportError(
            f"The ATO's service answered HTTP {status}.", permanent=False, http_status=status, code=f"HTTP:{status}"
        )
    if status >= 300 and not is_soap(content_type):
        # A 4xx: what we send is wrong; another 5xx without a SOAP body: the ATO failed on this message and says
        # nothing more, so sending it again is not known to help; a redirect: not how the ATO answers, never followed.
        raise TransportError(
            f"The ATO refused the request with HTTP {status}.",
            permanent=True,
            http_status=status,
            code=f"HTTP:{status}",
        )
    return Reply(status, content_type, content, elapsed)


def _read_capped(response: httpcore.Response, limit: int) -> bytes:
    """The reply's body as it streams in, refused as soon as it is past ``limit`` (declared or arriving), so that a
    reply of any size costs no more memory than the limit. Permanent: the same message brings the same reply."""
    declared = next((value for name, value in response.headers if name.lower() == b"content-length"), b"")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> TransportError:
    return TransportError(
        f"The ATO's reply is larger than {limit} bytes; refused.", permanent=True, code="HTTP:TOO_LARGE"
    )


# The statuses that say the message did not reach the ATO's service: worth sending again, with the same MessageId.
RETRY_STATUSES = frozenset({502, 503, 504})


def is_soap(content_type: str) -> bool:
    """A SOAP 1.2 envelope, alone or as the root of an SwA package (multipart/related)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/soap+xml", "multipart/related")
