"""The inbox's first sync (issue 12): every letter of a practice's clients read from the stand-in ATO (CC List,
500 letters a page) and stored, beside the same list paged without storing anything, in the same run.

The stand-in ATO gets a register in which the bench practice's agent has BENCH_COMMS_CLIENTS clients with about
BENCH_COMMS_LETTERS letters each; the portal's register holds the same clients, so the letters are matched. Two
worker processes, as production runs them (the project's worker class on the "high", "default" and "low" queues,
one of them with the scheduler), with bench/_list_worker.py's reference pager registered beside the apps' handlers
(this script with --worker), do everything, the same pool for both measurements:

1. the reference: CC List paged through the real gateway by a handler that keeps nothing of a letter. It is paging
   the same list, so it stays sequential: one page in flight, the next asked by the handler of the one before, so
   the second worker has nothing to do but take the next page's send job;
2. the sync: ``communications.services.sync_start`` to the run finished (every page read and its letters'
   metadata stored: each page's handler asks for the next page and leaves the storing to a job, which the other
   worker runs while the next page is fetched), then the documents (CC Get, one a letter, sealed and read by pypdf)
   until all are stored or BENCH_COMMS_DOC_SECONDS have passed: the document-fetch rate.

Goals: the first sync of 10,000 clients with 200,000 letters (metadata) in at most 120 s and at most 1.25 times the
reference; the workers' RSS (both process trees together, the first one's RQ scheduler included) at most 300 MB.
Printed beside them: the load average, the CPU the workers and the whole machine spent in each phase (on a shared
machine of two cores both phases can be short of CPU, and the sync needs more of it), and where a page's time goes.
BENCH_PROFILE=path writes each worker's cProfile to path.1 and path.2.

Environment: BENCH_COMMS_CLIENTS (10000), BENCH_COMMS_LETTERS (20 a client), BENCH_COMMS_DOC_SECONDS (60),
BENCH_COMMS_WORKERS (2), BENCH_KEEP_DB=1, BENCH_ENFORCE_GOALS=1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ato_sandbox.testing import running_sandbox
from bench._common import (
    PY,
    ROOT,
    Figures,
    bench_database,
    bench_env,
    load_average,
    make_practice_admin,
    note,
    point_at_sandbox,
    production_env,
)
from bench._list_worker import CC, PURPOSES
from bench.bench_ato_lists import (
    AGENT_TAN,
    DEMO_ABN,
    Control,
    TreeMemory,
    expected_lists,
    page_through,
    process_tree,
)

if TYPE_CHECKING:
    from communications.models import SyncRun
    from portal.models import Practice

CLIENTS = int(os.environ.get("BENCH_COMMS_CLIENTS", "10000"))
LETTERS = float(os.environ.get("BENCH_COMMS_LETTERS", "20"))
DOC_SECONDS = float(os.environ.get("BENCH_COMMS_DOC_SECONDS", "60"))
PROFILE = os.environ.get("BENCH_PROFILE", "")
WORKERS = int(os.environ.get("BENCH_COMMS_WORKERS", "2"))
CORES = os.cpu_count() or 1
TODAY = date(2026, 11, 30)  # the stand-in ATO's business date
GOAL_SECONDS, GOAL_RATIO, GOAL_MB = 120.0, 1.25, 300.0
GOAL_LETTERS = 200_000


class Cpu:
    """CPU seconds used by the workers' process trees, and by the whole machine (theirs, the stand-in ATO's, the
    database's and anyone else's): what a phase cost beside its wall-clock time."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots

    @staticmethod
    def _seconds(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            return 0.0
        fields = text[text.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def now(self) -> tuple[float, float]:
        pids = process_tree(*self.roots)
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
        busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # all but idle and waiting for I/O
        return sum(self._seconds(pid) for pid in pids), busy / os.sysconf("SC_CLK_TCK")

    def spent(self, name: str, before: tuple[float, float], seconds: float, pages: int) -> None:
        workers, machine = (a - b for a, b in zip(self.now(), before, strict=True))
        note(
            f"{name}: CPU {workers:.1f} s in the workers, {machine:.1f} s on the whole machine (of "
            f"{CORES * seconds:.0f} s of its {CORES} cores) in {seconds:.1f} s: per page "
            f"{1000 * workers / pages:.0f} ms and {1000 * machine / pages:.0f} ms"
        )


def start_workers(data_dir: str, env: dict[str, str]) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """WORKERS worker processes, the first with the scheduler (one is enough; a second would wait on its lock)."""
    workers = []
    for number in range(1, WORKERS + 1):
        log = Path(data_dir, f"worker-{number}.log")
        command = [PY, __file__, "--worker", *(["--with-scheduler"] if number == 1 else [])]
        if PROFILE:
            command = [PY, "-m", "cProfile", "-o", f"{PROFILE}.{number}", *command[1:]]
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        workers.append((process, log))
    return workers


def workers_ready(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Until every worker has registered with Redis: the clock of the reference must not include their start-up."""
    import django_rq
    from rq import Worker

    queue = django_rq.get_queue("high")
    deadline = time.monotonic() + 120
    while Worker.count(queue=queue) < len(workers):
        workers_alive(workers)
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start in 120 s:\n{workers_log(workers)}")
        time.sleep(0.1)


def workers_alive(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for process, log in workers:
        if process.poll() is not None:
            raise SystemExit(f"a worker died:\n{log.read_text()[-3000:]}")


def workers_log(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> str:
    return "\n".join(f"{log.name} (last lines):\n{log.read_text()[-3000:]}" for _, log in workers)


def register_clients(control: Control, practice: Practice) -> int:
    """The portal's register: every client the agent is linked to at the ATO, with its TFN (the letters' key)."""
    from clients.models import Client, ClientKind

    rows = control.query(
        "SELECT DISTINCT t.tfn, t.entity, t.family_name, t.given_name, t.organisation_name FROM reg_links l "
        "JOIN reg_agents g ON g.id = l.agent_id JOIN reg_taxpayers t ON t.id = l.taxpayer_id "
        "WHERE g.tan = ? AND l.end_date IS NULL",
        AGENT_TAN,
    )
    kinds = {"IND": ClientKind.INDIVIDUAL, "COY": ClientKind.COMPANY, "TRT": ClientKind.TRUST}
    clients = []
    for row in rows:
        client = Client(
            practice=practice,
            kind=kinds.get(row["entity"], ClientKind.OTHER),
            family_name=row["family_name"] or "",
            given_names=row["given_name"] or "",
            organisation_name=row["organisation_name"] or "",
        )
        client.set_tfn(row["tfn"])
        client.set_names()
        clients.append(client)
    Client.objects.bulk_create(clients, batch_size=2000)
    return len(clients)


def sync(figures: Figures, data_dir: str) -> None:
    import django_rq

    from ato_gateway import api, services
    from ato_gateway.wire.documents import cc
    from communications import services as communications
    from communications.models import DocumentState, Letter, SyncRun, SyncStatus

    with running_sandbox(Path(data_dir), env=bench_env(), python=PY, workers=1) as url:
        ato = point_at_sandbox(url, data_dir)
        control = Control(url)
        control.post("today", {"today": TODAY.isoformat()})
        started = time.perf_counter()
        agent = {"tan": AGENT_TAN, "abn": DEMO_ABN, "name": "Bench Harbour Tax", "kind": "TAX", "clients": CLIENTS}
        control.post(
            "register",
            {"seed": 7, "taxpayers": CLIENTS + CLIENTS // 20, "agents": [{**agent, "letters_per_client": LETTERS}]},
            timeout=1800,
        )
        expected = expected_lists(control)[CC]
        note(f"register generated in {time.perf_counter() - started:.1f} s: the agent sees {expected.count} letters")
        practice, admin, _ = make_practice_admin()
        practice.agent_number, practice.abn = AGENT_TAN, DEMO_ABN
        practice.save(update_fields=["agent_number", "abn"])
        services.credential_import(
            practice=practice,
            data=Path(data_dir, "demo-keystore.xml").read_bytes(),
            filename="demo-keystore.xml",
            password="demo-keystore-password",
            actor=admin,
        )
        note(f"portal register: {register_clients(control, practice)} clients")

        workers = start_workers(data_dir, production_env(**ato))
        memory = TreeMemory(*(process.pid for process, _ in workers))
        cpu = Cpu([process.pid for process, _ in workers])
        try:
            workers_ready(workers)
            note(f"{len(workers)} workers")
            memory.start()
            redis = django_rq.get_connection("high")
            first = cc.ListRequest(
                issued_from=communications._five_years_before(TODAY),
                issued_to=TODAY,
                page_size=communications.PAGE_SIZE,
            )
            note(f"load average before the reference: {load_average()}")
            before = cpu.now()
            reference = page_through(
                CC, lambda: api.ask(first, practice=practice, by=None, purpose=PURPOSES[CC]).message, memory, redis
            )
            cpu.spent("reference", before, reference.seconds, reference.pages)
            note(f"reference: {reference.items} letters paged without storing in {reference.seconds:.1f} s")

            memory.phase = "sync"
            note(f"load average before the sync: {load_average()}")
            started, before = time.perf_counter(), cpu.now()
            run = communications.sync_start(practice=practice, actor=admin, today=TODAY)
            while SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).exists():
                workers_alive(workers)
                time.sleep(0.2)
            synced = time.perf_counter() - started
            run.refresh_from_db()
            cpu.spent("sync", before, synced, max(run.pages, 1))
            if run.status != SyncStatus.DONE or run.letters_new != expected.count:
                raise SystemExit(f"the sync stopped ({run.status}: {run.error}) with {run.letters_new} letters")
            stored_at_sync = Letter.objects.filter(document_state=DocumentState.STORED).count()
            note(f"sync: {run.letters_new} letters in {run.pages} pages in {synced:.1f} s")
            note(f"load average after the sync: {load_average()}")
            sync_time_goes(run)

            memory.phase = "documents"
            started = time.perf_counter()
            waiting = Letter.objects.filter(document_state=DocumentState.WAITING)
            while waiting.exists() and time.perf_counter() - started < DOC_SECONDS:
                time.sleep(0.5)
            fetched = time.perf_counter() - started
            stored = Letter.objects.filter(document_state=DocumentState.STORED).count()
            failed = Letter.objects.filter(document_state=DocumentState.FAILED).count()
            note(f"documents: {stored_at_sync} stored during the sync, {stored} after {fetched:.0f} s more")
            if failed:
                note(f"{failed} documents failed: {Letter.objects.exclude(document_error='').first()}")
        except BaseException:
            note(workers_log(workers))
            raise
        finally:
            memory.stopping.set()
            for process, _ in workers:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process, _ in workers:
                process.wait(timeout=60)

    for phase in (CC, "sync"):
        peak = memory.peaks.get(phase)
        if peak is not None:
            note(
                f"{phase}: workers' RSS at most {peak.rss_sum_kb / 1024:.0f} MB together (PSS "
                f"{peak.pss_sum_kb / 1024:.0f} MB), the largest process {peak.largest_rss_kb / 1024:.0f} MB"
            )
    sync_peak = memory.peaks.get("sync")
    peak_mb = (sync_peak.rss_sum_kb if sync_peak else 0) / 1024
    rate, reference_rate = run.letters_new / synced, reference.items / reference.seconds
    figures.add("comms_sync_letters", run.letters_new, "letters", 0)
    figures.add("comms_sync_seconds", synced, "s")
    figures.add("comms_sync_letters_per_s", rate, "letters/s")
    figures.add("comms_reference_seconds", reference.seconds, "s")
    figures.add("comms_reference_letters_per_s", reference_rate, "letters/s")
    figures.add("comms_sync_over_reference", synced / reference.seconds, "x", 2)
    figures.add("comms_sync_worker_peak_rss_mb", peak_mb, "MB")
    figures.add("comms_sync_largest_worker_rss_mb", (sync_peak.largest_rss_kb if sync_peak else 0) / 1024, "MB")
    figures.add("comms_documents_per_s", (stored - stored_at_sync) / fetched if fetched else 0, "documents/s")
    figures.add("comms_documents_stored_during_sync", stored_at_sync, "documents", 0)
    figures.goal(
        f"the sync at {rate:.0f} letters/s would take {GOAL_LETTERS / rate:.0f} s for {GOAL_LETTERS} letters "
        f"(<= {GOAL_SECONDS:.0f} s needs {GOAL_LETTERS / GOAL_SECONDS:.0f} letters/s)",
        GOAL_LETTERS / rate <= GOAL_SECONDS,
    )
    figures.goal(f"sync <= {GOAL_RATIO} x the reference", synced / reference.seconds <= GOAL_RATIO)
    figures.goal(f"worker RSS <= {GOAL_MB:.0f} MB", peak_mb <= GOAL_MB)


def sync_time_goes(run: SyncRun) -> None:
    """Per page, on average, as the reference's where_the_time_goes says it: from the page's row's creation to its
    claim, and the attempt; and how long a page read waited for its letters to be stored (its storing job queued,
    then run beside the next page's fetch)."""
    from django.db.models import Avg, F

    from ato_gateway.models import MessageAttempt, OutboxMessage
    from communications.models import SyncPage
    from communications.services import LIST_PURPOSE

    rows = OutboxMessage.objects.filter(question__purpose=LIST_PURPOSE, subject_id=str(run.pk))
    handover = rows.aggregate(avg=Avg(F("claimed_at") - F("created_at")))["avg"]
    attempt = MessageAttempt.objects.filter(message__in=rows).aggregate(avg=Avg("duration_ms"))["avg"]
    stored = SyncPage.objects.filter(run=run).aggregate(avg=Avg(F("stored_at") - F("read_at")))["avg"]
    note(
        f"sync: per page {handover.total_seconds() * 1000 if handover else 0:.0f} ms from the row's creation to its "
        f"claim, {attempt or 0:.0f} ms attempt, {stored.total_seconds() * 1000 if stored else 0:.0f} ms from read "
        "to stored"
    )


def worker_main() -> None:
    import django

    django.setup()
    from django.db import connections

    from bench._list_worker import register_handlers

    register_handlers()
    import django_rq

    worker = django_rq.get_worker("high", "default", "low")  # the settings' worker class, as in production
    connections.close_all()
    worker.work(with_scheduler="--with-scheduler" in sys.argv, logging_level="WARNING")


def main() -> int:
    if "--worker" in sys.argv:
        worker_main()
        return 0
    figures = Figures()
    with bench_database(), tempfile.TemporaryDirectory() as data_dir:
        sync(figures, data_dir)
    return figures.emit()


if __name__ == "__main__":
    raise SystemExit(main())
