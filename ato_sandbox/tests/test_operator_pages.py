"""The stand-in ATO's control and inspection pages answer only on its own machine, or to whoever holds the token
set in ATO_SANDBOX_CONTROL_TOKEN. The application is called as its WSGI server calls it, with the remote address
a second machine would have (there is none here to send from)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from ato_sandbox.app import CONTROL_TOKEN_ENV, SandboxApp

TOKEN = "a-long-operator-token"  # noqa: S105 - the test's own


def call(app: SandboxApp, path: str, remote: str, **headers: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REMOTE_ADDR": remote,
        "wsgi.input": io.BytesIO(b""),
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, *_: status.append(s)))
    return status[0], body


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxApp:
    monkeypatch.setenv(CONTROL_TOKEN_ENV, TOKEN)
    return SandboxApp(tmp_path)


@pytest.mark.parametrize("path", ["/_control/faults", "/_inspect", "/_inspect/messages"])
def test_from_another_machine_the_operator_pages_need_the_token(app: SandboxApp, path: str) -> None:
    assert call(app, path, "192.0.2.7")[0] == "403 Forbidden"
    assert call(app, path, "192.0.2.7", X_SANDBOX_TOKEN=TOKEN[::-1])[0] == "403 Forbidden"
    assert call(app, path, "", X_SANDBOX_TOKEN="")[0] == "403 Forbidden"
    assert call(app, path, "192.0.2.7", X_SANDBOX_TOKEN=TOKEN)[0] != "403 Forbidden"


@pytest.mark.parametrize("remote", ["127.0.0.1", "::1"])
def test_on_this_machine_they_answer(app: SandboxApp, remote: str) -> None:
    status, body = call(app, "/_control/faults", remote)
    assert status == "200 OK" and body.startswith(b"{")


def test_the_services_themselves_stay_open(app: SandboxApp) -> None:
    assert call(app, "/healthz", "192.0.2.7")[0] == "200 OK"
    assert call(app, "/sts", "192.0.2.7")[0] == "405 Method Not Allowed"
