"""The fault campaign at scale (issue: reliability): BENCH_MESSAGES pings (10,000) through real rqworker processes
and the production scheduler (`rqcron portal.cron`, whose sweep runs every 10 s) to the stand-in ATO, while:
the stand-in injects random faults (500, 503, reset, timeout, malformed reply, bad signature) and one outage; a
worker is killed with SIGKILL several times; Redis is restarted (without persistence, so its queues, scheduled
retries and cached tokens are gone); PostgreSQL is stopped at once (pg_ctl -m immediate, a crash) and started;
and the stand-in ATO's processes are killed with SIGKILL and started again on the same port and data.

A supervisor loop stands in for the process manager (docker compose's `restart: unless-stopped`): any worker or
scheduler that exits is started again. The faults are spread over the run by progress (a share of messages
done), so each one lands while messages are in flight.

Figures: messages lost (goal 0: a row missing, a row still unsettled at the end, or a row DONE that the stand-in
never applied), applied twice at the ATO by the stand-in's effect record (goal 0), still unsettled one sweep after
the faults stop (goal 0), and wall time. Restarts only servers of its own: a redis-server and a PostgreSQL cluster
on spare ports (BENCH_REDIS_PORT 6391, BENCH_POSTGRES_PORT 5491, cluster in BENCH_POSTGRES_DIR /tmp/faults-pg).

Environment: BENCH_MESSAGES (10000), BENCH_WORKERS (3), BENCH_KEEP_LOGS=1 (the directory is named first),
BENCH_ENFORCE_GOALS=1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ato_sandbox.testing import free_port
from bench import _common
from bench._common import PY, ROOT, Figures, bench_database, bench_env, note, point_at_sandbox, production_env
from bench._servers import OwnPostgres, OwnRedis, own_servers

if TYPE_CHECKING:
    from portal.models import Practice

T = TypeVar("T")

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "10000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6391"))
POSTGRES_PORT = int(os.environ.get("BENCH_POSTGRES_PORT", "5491"))
POSTGRES_DIR = Path(os.environ.get("BENCH_POSTGRES_DIR", "/tmp/faults-pg"))
LEASE = 25  # claims older than this are a dead worker's: above the job timeout below, as production's are
RANDOM_FAULTS = {
    "http_500": 0.04,
    "http_503": 0.04,
    "reset": 0.04,
    "timeout": 0.01,
    "malformed": 0.03,
    "bad_signature": 0.005,
    "latency_ms": 0,
    "seed": 20261202,
}
WORKER_QUEUES = ["high", "default", "low"]  # as docker-compose.yml's worker listens
SWEEP_INTERVAL = 10  # ato_gateway/apps.py registers the sweep with rqcron every 10 s
KEEP_LOGS = os.environ.get("BENCH_KEEP_LOGS", "") == "1"  # the workers', scheduler's and stand-in's logs


class Sandbox:
    """The stand-in ATO on a fixed port, so that it can be killed and started again where the workers look."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import requests

        command = [PY, "manage.py", "run_ato_sandbox", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        with open(self.data_dir / "sandbox.log", "ab") as log:
            self.process = subprocess.Popen(
                [*command, "--workers", "3", "--threads", "1"],
                cwd=ROOT,
                env=bench_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the stand-in ATO did not start")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def control(self, method: str, path: str, **kwargs: object) -> dict:
        import requests

        response = requests.request(method, f"{self.url}/_control/{path}", timeout=120, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json() if response.content else {}


class Supervisor:
    """Starts each process and starts it again whenever it exits, as the process manager does in production."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.commands: dict[str, list[str]] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: Counter[str] = Counter()
        self.started_at: dict[str, float] = {}

    def add(self, name: str, command: list[str]) -> None:
        self.commands[name] = command
        self._start(name)

    def _start(self, name: str) -> None:
        self.started_at[name] = time.monotonic()
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                self.commands[name], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def check(self) -> None:
        for name, process in list(self.processes.items()):
            # Not more than once in 3 s, as a process manager backs off: a worker that cannot reach Redis exits.
            if process.poll() is not None and time.monotonic() - self.started_at[name] > 3:
                self.restarts[name] += 1
                self._start(name)

    def kill(self, name: str) -> None:
        """SIGKILL to the process and anything it started; the next check() starts it again."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _quietly(fn: Callable[[], T]) -> T | None:
    """Reads the bench makes while a server is down fail; they are only progress checks, asked again soon."""
    from django.db import connections

    try:
        return fn()
    except Exception:  # noqa: BLE001 - any database or Redis error while a server is down
        connections.close_all()
        return None


def workers_idle(practice: Practice) -> bool:
    import django_rq

    from ato_gateway.models import MessageStatus, OutboxMessage

    queue = django_rq.get_queue("high")
    return (
        queue.count == 0
        and queue.scheduled_job_registry.count == 0
        and not OutboxMessage.objects.filter(practice=practice, status=MessageStatus.SENDING).exists()
    )


def campaign(figures: Figures, redis: OwnRedis, postgres: OwnPostgres, data_dir: Path) -> None:
    from django.db import transaction

    from ato_gateway import services
    from ato_gateway.models import TERMINAL, MessageStatus, OutboxMessage
    from portal.models import Practice

    sandbox = Sandbox(data_dir)
    sandbox.start()
    ato = point_at_sandbox(sandbox.url, data_dir)
    practice = Practice.objects.create(name="Bench Campaign", abn="53004085616")
    services.credential_import(
        practice=practice,
        data=Path(data_dir, "demo-keystore.xml").read_bytes(),
        filename="demo-keystore.xml",
        password="demo-keystore-password",
        actor=None,
    )
    env = production_env(
        **ato,
        GATEWAY_BACKOFF_BASE_SECONDS="0.5",
        GATEWAY_BACKOFF_CAP_SECONDS="8",
        GATEWAY_JOB_TIMEOUT_SECONDS="20",
        GATEWAY_CLAIM_LEASE_SECONDS=str(LEASE),
        ATO_READ_TIMEOUT_SECONDS="3",
    )
    supervisor = Supervisor(data_dir, env)
    pending = OutboxMessage.objects.filter(practice=practice).exclude(status__in=TERMINAL)

    def done_share() -> float:
        done = _quietly(lambda: OutboxMessage.objects.filter(practice=practice, status__in=TERMINAL).count())
        return (done or 0) / MESSAGES

    def kill_worker() -> str:
        busy = _quietly(lambda: OutboxMessage.objects.filter(practice=practice, status=MessageStatus.SENDING).count())
        name = f"worker-{1 + sum(supervisor.restarts.values()) % WORKERS}"
        supervisor.kill(name)
        return f"SIGKILL {name} ({busy} rows sending)"

    def restart_redis() -> str:
        redis.stop()
        time.sleep(5)
        redis.start()
        return "Redis stopped for 5 s, started empty"

    def restart_postgres() -> str:
        postgres.stop("immediate")
        time.sleep(3)
        postgres.start()
        return "PostgreSQL crashed (immediate stop), 3 s down, started"

    def restart_sandbox() -> str:
        sandbox.kill()
        time.sleep(5)
        sandbox.start()
        return "stand-in ATO SIGKILLed, 5 s down, started"

    def outage() -> str:
        sandbox.control("POST", "faults", json={"outage_seconds": 5})
        return "stand-in ATO outage for 5 s"

    # (share of messages settled, fault): each lands once the run has got that far.
    plan: list[tuple[float, Callable[[], str]]] = [
        (0.08, kill_worker),
        (0.15, restart_redis),
        (0.25, kill_worker),
        (0.35, restart_postgres),
        (0.45, restart_sandbox),
        (0.55, kill_worker),
        (0.62, outage),
        (0.70, kill_worker),
    ]
    started = time.perf_counter()
    try:
        sandbox.control("POST", "faults", json=RANDOM_FAULTS)
        for number in range(1, WORKERS + 1):
            supervisor.add(
                f"worker-{number}", [PY, "manage.py", "rqworker", "high", "default", "low", "--with-scheduler"]
            )
        supervisor.add("scheduler", [PY, "manage.py", "rqcron", "portal.cron"])
        document = '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>campaign {}</Text></PingRequest>'
        with transaction.atomic():
            rows = services.outbox_enqueue_many(
                practice=practice,
                service="PING",
                action="Ping.001.00",
                batch=[([("PingRequest", document.format(i))], None) for i in range(MESSAGES)],
            )
        ids = [r.pk for r in rows]
        note(f"{MESSAGES} pings recorded and enqueued in {time.perf_counter() - started:.1f} s")
        while plan:
            share = done_share()
            if share >= plan[0][0]:
                _share, fault = plan.pop(0)
                note(f"{time.perf_counter() - started:6.1f} s, {share:.0%} settled: {fault()}")
            supervisor.check()
            if time.perf_counter() - started > 1800:
                raise SystemExit(f"the campaign stalled at {share:.0%} settled")
            time.sleep(0.2)
        sandbox.control("DELETE", "faults")
        stopped = time.perf_counter()
        note(f"{stopped - started:6.1f} s: faults stopped")

        # One sweep after the faults stop: long enough for the claims the last fault stranded to pass their lease
        # and for a lost job's rows to pass the sweep's 30 s re-enqueue age, then one more sweep interval; and the
        # workers out of work (no job queued or scheduled, no row being sent, twice a second apart). What is still
        # unsettled then is in no queue: it would wait for another sweep, or for ever.
        deadline = stopped + LEASE + 30 + SWEEP_INTERVAL
        idle_checks = 0
        while idle_checks < 2 and time.perf_counter() < stopped + 600:
            supervisor.check()
            time.sleep(1)
            if not _quietly(pending.exists):
                break
            idle = time.perf_counter() >= deadline and _quietly(lambda: workers_idle(practice))
            idle_checks = idle_checks + 1 if idle else 0
        unsettled_after_sweep = pending.count()
        note(f"{time.perf_counter() - started:6.1f} s: {unsettled_after_sweep} unsettled one sweep after the faults")
        while pending.exists() and time.perf_counter() < stopped + 600:
            supervisor.check()
            time.sleep(0.5)
        wall = time.perf_counter() - started
    finally:
        supervisor.stop_all()

    statuses = Counter(OutboxMessage.objects.filter(pk__in=ids).values_list("status", flat=True))
    applied = sandbox.control("GET", "stats")["applied"]
    sandbox.kill()
    mine = dict(OutboxMessage.objects.filter(pk__in=ids).values_list("message_id", "status"))
    twice = sum(1 for mid, n in applied.items() if mid in mine and n > 1)
    done_unapplied = sum(1 for mid, status in mine.items() if status == MessageStatus.DONE and mid not in applied)
    unsettled = sum(n for status, n in statuses.items() if status not in TERMINAL)
    # Given up on (a reply whose signature did not verify is refused for good) though the ATO applied it: neither
    # lost nor doubled, but the portal does not know it took effect.
    failed_applied = sum(1 for mid, status in mine.items() if status != MessageStatus.DONE and mid in applied)
    lost = (MESSAGES - len(mine)) + done_unapplied + unsettled
    attempts = sum(OutboxMessage.objects.filter(pk__in=ids).values_list("attempts", flat=True))
    failures = Counter(
        OutboxMessage.objects.filter(pk__in=ids, status__in=[MessageStatus.FAILED, MessageStatus.DEAD]).values_list(
            "error_code", flat=True
        )
    )
    for code, count in failures.most_common(5):
        example = OutboxMessage.objects.filter(pk__in=ids, error_code=code).values_list("error_text", flat=True)[0]
        note(f"failed with {code}: {count}, for example {example[:300]!r}")
    note(
        f"statuses {dict(statuses)}; attempts {attempts}; restarts by the supervisor {dict(supervisor.restarts)}; "
        f"{WORKERS} workers; machine shared with other work, so the wall time is this hour's"
    )
    figures.add("campaign_messages", MESSAGES, "msg", 0)
    figures.add("campaign_lost", lost, "msg", 0)
    figures.add("campaign_applied_twice", twice, "msg", 0)
    figures.add("campaign_unsettled_one_sweep_after", unsettled_after_sweep, "msg", 0)
    figures.add("campaign_failed", statuses[MessageStatus.FAILED] + statuses[MessageStatus.DEAD], "msg", 0)
    figures.add("campaign_failed_but_applied_at_the_ato", failed_applied, "msg", 0)
    figures.add("campaign_wall_time", wall, "s")
    figures.goal("no message lost", lost == 0)
    figures.goal("no message applied twice at the ATO", twice == 0)
    figures.goal("none unsettled one sweep after the faults stop", unsettled_after_sweep == 0)


def main() -> int:
    figures = Figures()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    note(f"logs and the stand-in's data in {data_dir}")
    try:
        with own_servers(POSTGRES_DIR, redis_port=REDIS_PORT, postgres_port=POSTGRES_PORT) as (redis, postgres):
            _common.BENCH_DATABASE_URL = postgres.url
            _common.BENCH_REDIS_URL = redis.url
            with bench_database():
                campaign(figures, redis, postgres, data_dir)
    finally:
        if not KEEP_LOGS:
            shutil.rmtree(data_dir, ignore_errors=True)
    return figures.emit()


if __name__ == "__main__":
    raise SystemExit(main())
