"""A real stand-in ATO process on a free loopback port, and a client that speaks to it over HTTP the way the
gateway does (with ``ato_gateway.wire``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
from cryptography import x509

from ato_gateway import wire
from ato_gateway.wire import keystore, registry
from ato_gateway.wire.keystore import Credential
from ato_sandbox.testing import running_sandbox

REPO = Path(__file__).resolve().parents[2]
PROPERTIES = {"ProductID": "SANDBOX-TESTS", "BMS Vendor": "Tests", "BMS Name": "sandbox tests", "BMS Version": "1"}
DEMO_PASSWORD = "demo-keystore-password"  # noqa: S105 - the documented demo password


@dataclass
class Sandbox:
    url: str
    data_dir: Path

    def control(self, method: str, name: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/_control/{name}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def faults(self, **settings: Any) -> Any:
        return self.control("POST", "faults", json=settings)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "stats")
        return result

    @property
    def ato_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.data_dir / "ato-signing.pem").read_bytes())


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp("ato-sandbox")
    # Signing every answer, so that these tests check the stand-in's signatures on all of them (the ATO signs only
    # pulled responses; the gateway's tests run the stand-in that way).
    env = {"DJANGO_DEBUG": "1", "ATO_SANDBOX_TIMEOUT_SECONDS": "1.5", "ATO_SANDBOX_SIGN_ALL": "1"}
    with running_sandbox(data_dir, env=env) as url:
        yield Sandbox(url, data_dir)


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    """Every sandbox test starts with no faults, no remembered messages and zeroed statistics."""
    if "sandbox" in request.fixturenames:
        box: Sandbox = request.getfixturevalue("sandbox")
        box.control("DELETE", "faults")
        box.control("POST", "reset")


@pytest.fixture(scope="session")
def demo(sandbox: Sandbox) -> Credential:
    return keystore.load_credential((sandbox.data_dir / "demo-keystore.xml").read_bytes(), DEMO_PASSWORD)


@dataclass
class Client:
    """What the gateway does, minus the outbox: get a token, build, sign, POST, verify the reply."""

    sandbox: Sandbox
    credential: Credential
    token: bytes

    def post(self, endpoint: str, body: bytes, content_type: str, *, timeout: float = 10) -> requests.Response:
        return requests.post(
            f"{self.sandbox.url}/ebms/{endpoint}", data=body, headers={"Content-Type": content_type}, timeout=timeout
        )

    def ping_request(
        self, text: str = "hello", *, message_id: str | None = None, from_abn: str | None = None, compress: bool = False
    ) -> tuple[str, bytes, str]:
        message_id = message_id or wire.new_message_id("sandbox-tests.invalid")
        document = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>{escape(text)}</Text></PingRequest>'.encode()
        body, content_type = wire.build_signed_request(
            service_action=registry.PING,
            message_id=message_id,
            # Derived from the MessageId, as the outbox keeps both: a retry is the same conversation.
            conversation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, message_id)),
            from_abn=from_abn or self.credential.info.abn,
            payloads=[("PingRequest", document)],
            compress=compress,
            key=self.credential.private_key,
            certificate=self.credential.certificate,
            saml_assertion=self.token,
            properties=PROPERTIES,
        )
        return message_id, body, content_type

    def read(self, response: requests.Response) -> wire.InboundMessage:
        # 500 for an ebMS error signal, as the ATO sends them; the reply says what happened, not the status.
        assert response.status_code in (200, 500), response.text[:500]
        return wire.parse_response(
            response.content, response.headers["Content-Type"], ato_certificate=self.sandbox.ato_certificate
        )

    def ping(self, text: str = "hello", **kwargs: Any) -> tuple[str, requests.Response]:
        message_id, body, content_type = self.ping_request(text, **kwargs)
        return message_id, self.post("single-sync", body, content_type)


def issue_token(sandbox: Sandbox, credential: Credential) -> requests.Response:
    body, content_type = wire.sts_build_issue_request(
        abn=credential.info.abn, key=credential.private_key, certificate=credential.certificate
    )
    return requests.post(f"{sandbox.url}/sts", data=body, headers={"Content-Type": content_type}, timeout=10)


@pytest.fixture(scope="session")
def client(sandbox: Sandbox, demo: Credential) -> Client:
    response = issue_token(sandbox, demo)
    assert response.status_code == 200, response.text
    token = wire.sts_parse_issue_response(response.content, sts_certificate=sandbox.ato_certificate)
    return Client(sandbox, demo, token.assertion)
