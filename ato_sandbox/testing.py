"""Starting the stand-in ATO as a real process, for tests and benchmarks (never for the portal, which reaches it
only over HTTP): one launcher, so that every caller waits for it and stops it the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_sandbox(
    data_dir: Path, *, env: dict[str, str] | None = None, workers: int = 2, threads: int = 8, python: str = ""
) -> Iterator[str]:
    """Run `manage.py run_ato_sandbox` on a free 127.0.0.1 port with `data_dir` as its storage; yield its base URL
    once it answers and its PKI (ato-signing.pem, demo-keystore.xml) is written; stop its process group after."""
    port = free_port()
    log_path = data_dir / "sandbox.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                python or sys.executable,
                "manage.py",
                "run_ato_sandbox",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the stand-in ATO exited:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok and (data_dir / "demo-keystore.xml").exists():
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy machine: ask again
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stand-in ATO did not start in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        # The command exec'd gunicorn in its own session: signal the whole group, then make sure it is gone.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
