"""A benchmark's own Redis and PostgreSQL servers, which it may stop and start at will: restarting the shared ones
would pull the floor from under everyone else using this machine.

PostgreSQL refuses to run as root, so when the benchmark runs as root its cluster belongs to the `postgres` user
and every pg_ctl runs through `su postgres -c`."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def _wait_port(port: int, *, up: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            listening = sock.connect_ex(("127.0.0.1", port)) == 0
        if listening == up:
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} in {timeout:.0f} s")


class OwnRedis:
    """redis-server on 127.0.0.1:`port` with no persistence: a restart loses every queue, scheduled job and cached
    token, which is the harder case for the gateway (a persisted Redis gives some of them back)."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None
        _wait_port(self.port, up=False)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise SystemExit(f"{name} not found (looked under /usr/lib/postgresql/*/bin and on PATH)")
    return on_path


class OwnPostgres:
    """A throw-away cluster in `directory`, listening on 127.0.0.1:`port` only, trusting local connections."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/portal_faults"

    def _run(self, *command: str) -> None:
        line = shlex.join(command)
        if self.as_postgres:
            subprocess.run(["su", "postgres", "-c", line], check=True, stdout=subprocess.DEVNULL)
        else:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def init(self) -> None:
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        data = str(self.directory / "data")
        self._run(_pg_bin("initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c max_connections=200"
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-l", str(self.directory / "log"), "-o", options,
            "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def own_servers(directory: Path, *, redis_port: int, postgres_port: int) -> Iterator[tuple[OwnRedis, OwnPostgres]]:
    redis = OwnRedis(redis_port, directory.parent / f"{directory.name}-redis.log")
    postgres = OwnPostgres(directory, postgres_port)
    postgres.init()
    postgres.start()
    redis.start()
    try:
        yield redis, postgres
    finally:
        redis.stop()
        with suppress(subprocess.CalledProcessError):  # already down (a restart that failed half way)
            postgres.stop("immediate")
        postgres.remove()
