"""A real stand-in ATO process for the gateway's tests. The portal reaches it only over HTTP, as it would the ATO;
only this fixture imports it, to start it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from ato_sandbox.testing import running_sandbox


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
        response = requests.request(method, f"{self.url}/_control/{path}", timeout=10, **kwargs)  # type: ignore[arg-type]
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
