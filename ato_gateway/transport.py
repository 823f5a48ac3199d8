"""The one way out to the ATO: HTTP POST with mandatory timeouts. Every failure says whether it is worth trying
again (a dropped connection, a timeout, a 5xx) or not (a 4xx: what we send is wrong and will stay wrong)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from threading import local

import requests
from django.conf import settings

_state = local()


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


def _session() -> requests.Session:
    # One pooled session per thread: keep-alive matters at hundreds of messages a second.
    session: requests.Session | None = getattr(_state, "session", None)
    if session is None:
        session = requests.Session()
        _state.session = session
    return session


def post(url: str, body: bytes, content_type: str, *, timeout: tuple[float, float] | None = None) -> Reply:
    timeout = timeout or (settings.ATO_CONNECT_TIMEOUT_SECONDS, settings.ATO_READ_TIMEOUT_SECONDS)
    started = time.monotonic()
    try:
        response = _session().post(url, data=body, headers={"Content-Type": content_type}, timeout=timeout)
    except requests.Timeout as exc:
        raise TransportError(
            f"The ATO did not answer in time ({exc.__class__.__name__}).", permanent=False, code="HTTP:TIMEOUT"
        ) from exc
    except requests.ConnectionError as exc:
        _state.session = None  # a reset connection may poison the pool
        raise TransportError(
            "The connection to the ATO failed or was reset.", permanent=False, code="HTTP:CONNECTION"
        ) from exc
    elapsed = int((time.monotonic() - started) * 1000)
    if response.status_code >= 500:
        raise TransportError(
            f"The ATO's service answered HTTP {response.status_code}.",
            permanent=False,
            http_status=response.status_code,
            code=f"HTTP:{response.status_code}",
        )
    if response.status_code >= 400:
        raise TransportError(
            f"The ATO refused the request with HTTP {response.status_code}.",
            permanent=True,
            http_status=response.status_code,
            code=f"HTTP:{response.status_code}",
        )
    return Reply(response.status_code, response.headers.get("Content-Type", ""), response.content, elapsed)
