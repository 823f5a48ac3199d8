"""Demographics' figures (issue: demographics).

1. The gateway's own reference, measured first in the same run with the same processes: signed pings per second
   (outbox rows -> rqworker -> stand-in ATO -> reply verified -> outcome recorded).
2. The drift watch of BENCH_CLIENTS clients (10,000), four services each (CUDTL Get, CUADDR List twice for the
   addresses and the authorised contacts, CUFI List): from starting the run to the last answer recorded and
   compared. Run twice: the first watch finds no snapshot before (a practice's first night), the second compares
   every answer with the first's (every night after). Goal: each <= 300 s, worker RSS <= 300 MB. Printed beside
   the ping rate as a ratio of round trips per second.
3. A bulk postal-address change of BENCH_BULK clients (1,000): each client validated, then submitted by the
   handler of its Validate's answer. Goal: <= 60 s.

Layout as the gateway benchmark's: BENCH_WORKERS rqworker processes (3) on every queue with the scheduler, the
stand-in ATO as BENCH_SANDBOX_WORKERS gunicorn processes (3) of one thread. The workers are up before each clock
starts.

Environment: BENCH_CLIENTS, BENCH_BULK, BENCH_PINGS (2000), BENCH_PARTS (watch,bulk), the layout above,
BENCH_KEEP_DB=1, BENCH_ENFORCE_GOALS=1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from ato_sandbox.testing import running_sandbox
from bench._common import (
    PY,
    ROOT,
    Figures,
    bench_database,
    bench_env,
    make_practice_admin,
    note,
    point_at_sandbox,
    production_env,
)

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "10000"))
BULK = int(os.environ.get("BENCH_BULK", "1000"))
PINGS = int(os.environ.get("BENCH_PINGS", "2000"))
PARTS = set(os.environ.get("BENCH_PARTS", "watch,bulk").split(","))
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
SANDBOX_WORKERS = int(os.environ.get("BENCH_SANDBOX_WORKERS", "3"))
AGENT_TAN = "25123456"
DEMO_ABN = "53004085616"
WATCH_GOAL_S = 300.0
RSS_GOAL_MB = 300.0
BULK_GOAL_S = 60.0
STALL_S = 30.0
WATCHES = int(os.environ.get("BENCH_WATCHES", "2"))


def control(url: str, path: str, body: dict[str, Any]) -> Any:
    response = requests.post(f"{url}/_control/{path}", json=body, timeout=600)
    response.raise_for_status()
    return response.json()


def register(url: str, practice: Any) -> list[Any]:
    """The stand-in ATO's register of CLIENTS clients of the practice, and the same clients in the portal's."""
    from clients.models import Client, ClientKind

    control(url, "today", {"today": "2026-11-30"})
    spec = {"tan": AGENT_TAN, "abn": DEMO_ABN, "name": practice.name, "kind": "TAX", "clients": CLIENTS}
    control(url, "register", {"seed": 13, "taxpayers": CLIENTS, "agents": [{**spec, "letters_per_client": 0}]})
    rows = control(
        url,
        "query",
        {
            "sql": "SELECT DISTINCT t.id, t.tfn, t.abn, t.entity, t.family_name, t.given_name, t.organisation_name "
            "FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id JOIN reg_taxpayers t ON t.id = l.taxpayer_id "
            "WHERE g.tan = ? AND l.end_date IS NULL ORDER BY t.id",
            "params": [AGENT_TAN],
        },
    )["rows"]
    kinds = {"IND": ClientKind.INDIVIDUAL, "COY": ClientKind.COMPANY, "TRT": ClientKind.TRUST}
    clients = []
    for row in rows:
        client = Client(
            practice=practice,
            kind=kinds.get(row["entity"], ClientKind.OTHER),
            family_name=row["family_name"] or "",
            given_names=row["given_name"] or "",
            organisation_name=row["organisation_name"] or "",
            abn=row["abn"] or "",
        )
        client.set_tfn(row["tfn"])
        client.set_names()
        clients.append(client)
    return Client.objects.bulk_create(clients, batch_size=2000)


class Workers:
    """BENCH_WORKERS rqworker processes on every queue, as production runs them: with RQ's scheduler, without which
    a retry's delayed job (a connection the stand-in ATO reset) never ran and its question stayed waiting; their
    peak RSS from /proc."""

    def __init__(self, ato: dict[str, str]) -> None:
        from django.conf import settings

        # The software's registration, which production takes from its environment and never defaults.
        registration = {name: getattr(settings, name) for name in ("SBR_PRODUCT_ID", "SBR_BMS_VENDOR", "SBR_BMS_NAME")}
        self.processes = [
            subprocess.Popen(
                [PY, "manage.py", "rqworker", "high", "default", "low", "--with-scheduler"],
                cwd=ROOT,
                env=production_env(**ato, **registration),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for _ in range(WORKERS)
        ]
        import django_rq
        from rq import Worker

        redis = django_rq.get_connection("high")
        deadline = time.monotonic() + 120
        while Worker.count(connection=redis) < WORKERS:
            if time.monotonic() > deadline:
                raise SystemExit(f"{WORKERS} workers did not start in 2 minutes")
            time.sleep(0.1)

    def alive(self) -> None:
        if any(p.poll() is not None for p in self.processes):
            raise SystemExit("a worker died")

    def peak_rss_mb(self) -> float:
        peaks = []
        for process in self.processes:
            status = Path(f"/proc/{process.pid}/status").read_text()
            [line] = [x for x in status.splitlines() if x.startswith("VmHWM:")]
            peaks.append(int(line.split()[1]) / 1024)
        return max(peaks)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def wait(
    started: float, done: Callable[[], bool], workers: Workers, progress: Callable[[], object], limit: float = 3600
) -> tuple[float, bool]:
    """Until done, or until nothing has moved for STALL_S: a batch stranded in "sending" (its job died) is the
    sweeper's after the claim lease (20 minutes), which no clock here should include; the caller says how many.
    Returns the seconds since ``started`` and whether it stalled (then the goal is not met, whatever the clock)."""
    seen, moved = progress(), time.perf_counter()
    while not done():
        workers.alive()
        if time.perf_counter() - started > limit:
            raise SystemExit(f"not finished in {limit:.0f} s")
        if (now := progress()) != seen:
            seen, moved = now, time.perf_counter()
        elif time.perf_counter() - moved > STALL_S:
            note(f"nothing moved for {STALL_S:.0f} s: stopped the clock at the last movement")
            return moved - started, True
        time.sleep(0.25)
    return time.perf_counter() - started, False


def pings(figures: Figures, practice: Any, workers: Workers) -> float:
    from django.db import transaction

    from ato_gateway import services
    from ato_gateway.models import TERMINAL, OutboxMessage

    document = '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>bench {}</Text></PingRequest>'
    started = time.perf_counter()
    with transaction.atomic():
        services.outbox_enqueue_many(
            practice=practice,
            service="PING",
            action="Ping.001.00",
            batch=[([("PingRequest", document.format(i))], None) for i in range(PINGS)],
        )
    pending = OutboxMessage.objects.filter(practice=practice, service="PING").exclude(status__in=TERMINAL)
    elapsed, _ = wait(started, lambda: not pending.exists(), workers, pending.count)
    stranded = pending.count()
    rate = (PINGS - stranded) / elapsed
    figures.add("reference_ping_round_trips_per_s", rate, "msg/s")
    return rate


def watch(figures: Figures, practice: Any, workers: Workers, ping_rate: float, name: str) -> None:
    from ato_gateway import api
    from demographics import drift
    from demographics.models import DriftAlert, DriftRun

    waiting = api.Question.objects.filter(practice=practice, state=api.QuestionState.WAITING)
    started = time.perf_counter()
    run = drift.drift_watch_start(practice=practice)
    drift.drift_watch_enqueue(run.pk)

    def settled() -> bool:
        finished = DriftRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists()
        return finished and not waiting.exists()

    elapsed, stalled = wait(started, settled, workers, waiting.count)
    run.refresh_from_db()
    stranded = waiting.count()
    questions = run.clients_asked * len(drift.WATCHED) - stranded
    failed = api.Question.objects.filter(practice=practice, state=api.QuestionState.FAILED).count()
    alerts = DriftAlert.objects.filter(practice=practice).count()
    note(f"{name}: {run.clients_asked} clients, {questions} answered, {stranded} stranded, {failed} failed")
    note(f"{name}: {alerts} drift alerts so far")
    figures.add(f"{name}_stranded", stranded, "questions", 0)
    rate = questions / elapsed
    figures.add(f"{name}_total", elapsed, "s")
    figures.add(f"{name}_round_trips_per_s", rate, "msg/s")
    figures.add(f"{name}_ratio_to_ping", rate / ping_rate, "x", 2)
    goal = f"{name} of {run.clients_asked} clients <= {WATCH_GOAL_S:.0f} s"
    figures.goal(goal, elapsed <= WATCH_GOAL_S and not stalled)


def bulk(figures: Figures, practice: Any, admin: Any, workers: Workers, ping_rate: float) -> None:
    from clients.models import Client
    from demographics import addresses
    from demographics.models import AddressChange, AddressChangeStatus

    clients = Client.objects.filter(practice=practice).order_by("pk")[:BULK]
    address = {"usage": "POS", "line1": "PO Box 13", "line2": "", "locality": "Sydney", "state": "NSW"}
    started = time.perf_counter()
    change = addresses.address_bulk_start(
        user=admin, clients=clients.iterator(), address={**address, "postcode": "2000"}
    )
    open_ = (AddressChangeStatus.VALIDATING, AddressChangeStatus.VALIDATED, AddressChangeStatus.SUBMITTING)
    pending = AddressChange.objects.filter(bulk=change, status__in=open_)
    # Progress is any row moving on (validated, submitting, settled), not only the open rows' count: every Validate
    # is queued before the first Submit, so the first row to settle comes only after them all.
    elapsed, stalled = wait(started, lambda: not pending.exists(), workers, lambda: tuple(change.counts().values()))
    counts = change.counts()
    note(f"bulk address change: {counts}")
    rate = 2 * counts["accepted"] / elapsed  # a Validate and a Submit each
    figures.add("bulk_address_total", elapsed, "s")
    figures.add("bulk_address_round_trips_per_s", rate, "msg/s")
    figures.add("bulk_address_ratio_to_ping", rate / ping_rate, "x", 2)
    done = counts["accepted"] + counts["refused"] + counts["failed"]
    met = elapsed <= BULK_GOAL_S and done == BULK and not stalled
    figures.goal(f"bulk address change of {BULK} clients <= {BULK_GOAL_S:.0f} s", met)


def run(figures: Figures, data_dir: str) -> None:
    from ato_gateway import services

    with running_sandbox(Path(data_dir), env=bench_env(), python=PY, workers=SANDBOX_WORKERS, threads=1) as url:
        ato = point_at_sandbox(url, data_dir)
        practice, admin, _ = make_practice_admin()
        practice.agent_number = AGENT_TAN
        practice.save(update_fields=["agent_number"])
        services.credential_import(
            practice=practice,
            data=Path(data_dir, "demo-keystore.xml").read_bytes(),
            filename="demo-keystore.xml",
            password="demo-keystore-password",
            actor=admin,
        )
        started = time.perf_counter()
        clients = register(url, practice)
        note(f"{len(clients)} clients in both registers in {time.perf_counter() - started:.1f} s")
        workers = Workers(ato)
        try:
            ping_rate = pings(figures, practice, workers)
            if "watch" in PARTS:
                for name in ("first_watch", "second_watch")[:WATCHES]:
                    watch(figures, practice, workers, ping_rate, name)
                rss = workers.peak_rss_mb()
                figures.add("watch_worker_peak_rss", rss, "MB")
                figures.goal(f"worker RSS <= {RSS_GOAL_MB:.0f} MB", rss <= RSS_GOAL_MB)
            if "bulk" in PARTS:
                bulk(figures, practice, admin, workers, ping_rate)
        finally:
            workers.stop()


def main() -> int:
    # Stopped by a signal, the benchmark still stops its workers and the stand-in ATO (each in its own session).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = Figures()
    with bench_database(), tempfile.TemporaryDirectory() as data_dir:
        run(figures, data_dir)
    return figures.emit()


if __name__ == "__main__":
    raise SystemExit(main())
