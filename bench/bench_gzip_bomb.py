"""What a gzip bomb costs the stand-in ATO (issue 15): a signed request of BENCH_BOMB_PARTS gzip parts of 50 MiB of
zeros each (the most one part may inflate to), under 1 MB on the wire, sent over HTTP to a stand-in ATO process
(one worker). Once with the default total limit on what a message's parts inflate to (64 MiB), once with the
limit set out of reach (ATO_SANDBOX_MAX_INFLATED_BYTES=10**12), which is how the stand-in read it before.

Figures, for each: the HTTP status and seconds to the answer, and the worker's peak RSS growth during the request
(VmRSS polled every ~20 ms; growth over its RSS just before). Goal: with the limit, growth <= 128 MB.
Environment: BENCH_BOMB_PARTS (17), BENCH_ENFORCE_GOALS=1. Needs no database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ato_gateway import wire
from ato_gateway.wire import keystore, registry
from ato_sandbox.testing import running_sandbox
from bench._common import Figures, note

PARTS = int(os.environ.get("BENCH_BOMB_PARTS", "17"))
PROPERTIES = {"ProductID": "BENCH", "BMS Vendor": "bench", "BMS Name": "bench", "BMS Version": "1"}


def _worker_rss(pids: list[int]) -> dict[int, int]:
    """VmRSS in KB of each process."""
    out = subprocess.run(["ps", "-o", "pid=,rss=", "-p", ",".join(map(str, pids))], capture_output=True, text=True)
    return {int(pid): int(rss) for pid, rss in (line.split() for line in out.stdout.strip().splitlines())}


def _listeners(url: str) -> list[int]:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", out)})


def run(label: str, env: dict[str, str], figures: Figures) -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-bomb-"))
    with running_sandbox(data, env={"ATO_SANDBOX_SIGN_ALL": "1", **env}, workers=1, threads=2) as url:
        credential = keystore.load_credential((data / "demo-keystore.xml").read_bytes(), "demo-keystore-password")
        body, content_type = wire.sts_build_issue_request(
            abn=credential.info.abn, key=credential.private_key, certificate=credential.certificate
        )
        issued = requests.post(f"{url}/sts", data=body, headers={"Content-Type": content_type}, timeout=30)
        ato = x509.load_pem_x509_certificate((data / "ato-signing.pem").read_bytes())
        token = wire.sts_parse_issue_response(issued.content, sts_certificate=ato).assertion
        zeros = b"\0" * (50 * 1024 * 1024)  # one object for every part
        ping = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>bomb</Text></PingRequest>'.encode()
        body, content_type = wire.build_signed_request(
            service_action=registry.PING,
            message_id=wire.new_message_id("bench.invalid"),
            conversation_id=str(uuid.uuid4()),
            from_abn=credential.info.abn,
            payloads=[("PingRequest", ping), *((f"Bomb{n}", zeros) for n in range(PARTS))],
            compress=True,
            key=credential.private_key,
            certificate=credential.certificate,
            saml_assertion=token,
            properties=PROPERTIES,
        )
        note(f"{label}: a request of {len(body)} bytes, {PARTS} parts of 50 MiB once inflated")
        pids = _listeners(url)
        before = _worker_rss(pids)
        peak = dict(before)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for pid, rss in _worker_rss(pids).items():
                    peak[pid] = max(peak.get(pid, 0), rss)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        answer = requests.post(
            f"{url}/ebms/single-sync", data=body, headers={"Content-Type": content_type}, timeout=300
        )
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        growth = max(peak[pid] - before.get(pid, 0) for pid in peak) / 1024
        figures.add(f"{label}_status", answer.status_code, "http", 0)
        figures.add(f"{label}_seconds", seconds, "s", 2)
        figures.add(f"{label}_peak_rss_growth", growth, "MB")
        if label == "limited":
            figures.goal("with the limit, the worker grows by 128 MB at most", growth <= 128)


def main() -> int:
    figures = Figures()
    run("limited", {}, figures)
    run("unlimited", {"ATO_SANDBOX_MAX_INFLATED_BYTES": str(10**12)}, figures)
    return figures.emit()


if __name__ == "__main__":
    raise SystemExit(main())
