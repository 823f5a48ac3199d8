"""A real stand-in ATO process for tests, and a practice whose machine credential it trusts. The portal reaches
the stand-in only over HTTP, as it would the ATO; nothing here imports it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.conf import settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]

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
    port = free_port()
    log = open(data_dir / "sandbox.log", "wb")  # noqa: SIM115 - kept open for the process's life
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_ato_sandbox",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            "2",
            "--threads",
            "8",
        ],
        cwd=settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok and (data_dir / "ato-signing.pem").exists():
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the stand-in ATO exited: {(data_dir / 'sandbox.log').read_text()[-2000:]}")
        time.sleep(0.2)
    else:
        raise RuntimeError("the stand-in ATO did not start in 60 s")
    yield Sandbox(url, data_dir, process)
    os.killpg(process.pid, 15)
    process.wait(timeout=30)
    log.close()
