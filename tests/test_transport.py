"""The one way out to the ATO: every failure says whether another attempt can help. Real sockets, no ATO needed
for these: a port nobody listens on, a server that accepts and never answers, and an address that is not HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from ato_gateway import transport


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections, reads what comes, answers nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/ebms/single-sync"
    listener.close()
    for conn in accepted:
        conn.close()


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(transport.TransportError) as failed:
        transport.post(f"http://127.0.0.1:{port}/ebms/single-sync", b"<x/>", "application/soap+xml")
    assert (failed.value.code, failed.value.permanent) == ("HTTP:CONNECTION", False)


def test_no_answer_in_time_is_a_transient_timeout(silent_server: str) -> None:
    with pytest.raises(transport.TransportError) as failed:
        transport.post(silent_server, b"<x/>", "application/soap+xml", timeout=(2.0, 0.3))
    assert (failed.value.code, failed.value.permanent) == ("HTTP:TIMEOUT", False)


def test_an_address_that_is_not_http_is_permanent() -> None:
    with pytest.raises(transport.TransportError) as failed:
        transport.post("ftp://ato.invalid/ebms", b"<x/>", "application/soap+xml")
    assert (failed.value.code, failed.value.permanent) == ("HTTP:URL", True)
