"""A real stand-in ATO process for the gateway's tests. The portal reaches it only over HTTP, as it would the ATO;
only this fixture imports it, to start it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from ato_gateway import services, tokens
from ato_gateway.models import MachineCredential, MessageStatus, OutboxMessage
from ato_sandbox.testing import running_sandbox
from portal.models import Practice
from tests.conftest import run_worker_burst


@dataclass
class Sandbox:
    url: str
    data_dir: Path

    @property
    def signing_cert(self) -> Path:
        return self.data_dir / "ato-signing.pem"

    @property
    def demo_keystore(self) -> Path:
        return self.data_dir / "demo-keystore.xml"

    def control(self, method: str, path: str, **kwargs: object) -> dict:
        # Generous: regenerating a register or a busy 2-core machine can take a while; a hang still ends.
        response = requests.request(method, f"{self.url}/_control/{path}", timeout=120, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json() if response.content else {}

    def faults(self, **faults: object) -> None:
        self.control("POST", "faults", json=faults)

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def stats(self) -> dict:
        return self.control("GET", "stats")

    def env(self) -> dict[str, str]:
        """What a worker process needs to reach this sandbox."""
        return {
            "ATO_STS_URL": f"{self.url}/sts",
            "ATO_EBMS_URL": f"{self.url}/ebms",
            "ATO_SIGNING_CERT_FILE": str(self.signing_cert),
        }


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp("ato_sandbox")
    with running_sandbox(data_dir) as url:
        yield Sandbox(url, data_dir)


def pump(until: Callable[[], bool], timeout: float = 30) -> None:
    """Stand in for RQ's scheduler and the cron sweeper: enqueue what is due, then let a real worker (in this
    process, on the real test Redis) run the queues empty; repeat until `until()` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "messages did not settle in time"
        due = list(
            OutboxMessage.objects.filter(
                phase="send",
                status__in=[MessageStatus.PENDING, MessageStatus.RETRY],
                next_attempt_at__lte=datetime.now(UTC),
            ).values_list("pk", flat=True)
        )
        if due:
            services.outbox_dispatch(due)
        run_worker_burst()
        time.sleep(0.05)


def settled(*messages: OutboxMessage) -> Callable[[], bool]:
    return lambda: all(OutboxMessage.objects.get(pk=m.pk).is_terminal for m in messages)


DEMO_PASSWORD = "demo-keystore-password"


@pytest.fixture
def gateway(settings, sandbox: Sandbox) -> Iterator[Sandbox]:
    for name, value in sandbox.env().items():
        setattr(settings, name, value)
    settings.GATEWAY_BACKOFF_BASE_SECONDS = 0.05
    settings.GATEWAY_BACKOFF_CAP_SECONDS = 0.2
    settings.GATEWAY_MAX_ATTEMPTS = 6
    settings.ATO_READ_TIMEOUT_SECONDS = 2
    tokens.forget_tokens()
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture
def credentialed(practice: Practice, admin, gateway: Sandbox) -> Practice:
    services.credential_import(
        practice=practice,
        data=gateway.demo_keystore.read_bytes(),
        filename="demo-keystore.xml",
        password=DEMO_PASSWORD,
        actor=admin,
    )
    assert MachineCredential.objects.get(practice=practice).is_selected
    return practice
