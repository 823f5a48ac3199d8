"""The inbox's first sync (issue 12): every letter of a practice's clients read from the stand-in ATO (CC List,
500 letters a page) and stored, beside the same list paged without storing anything, in the same run.

The stand-in ATO gets a register in which the bench practice's agent has BENCH_COMMS_CLIENTS clients with about
BENCH_COMMS_LETTERS letters each; the portal's register holds the same clients, so the letters are matched. One
worker process (the project's worker class on the "high", "default" and "low" queues with its scheduler, as
production runs it, with bench/_list_worker.py's reference pager registered beside the apps' handlers: this
script with --worker) does everything:

1. the reference: CC List paged through the real gateway by a handler that keeps nothing of a letter;
2. the sync: ``communications.services.sync_start`` to the run's last page applied (the letters' metadata), then
   the documents (CC Get, one a letter, sealed and read by pypdf) until all are stored or BENCH_COMMS_DOC_SECONDS
   have passed: the document-fetch rate.

Goals: the first sync of 10,000 clients with 200,000 letters (metadata) in at most 120 s and at most 1.25 times the
reference; worker RSS (its process tree) at most 300 MB. BENCH_PROFILE=path writes the worker's cProfile there.

Environment: BENCH_COMMS_CLIENTS (10000), BENCH_COMMS_LETTERS (20 a client), BENCH_COMMS_DOC_SECONDS (60),
BENCH_KEEP_DB=1, BENCH_ENFORCE_GOALS=1."""

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
from bench._common import PY, ROOT, Figures, bench_database, bench_env, make_practice_admin, note, point_at_sandbox
from bench._list_worker import CC, PURPOSES
from bench.bench_ato_lists import AGENT_TAN, DEMO_ABN, Control, TreeMemory, expected_lists, page_through
from bench.bench_ato_lists import wait_for_worker as worker_ready

if TYPE_CHECKING:
    from portal.models import Practice

CLIENTS = int(os.environ.get("BENCH_COMMS_CLIENTS", "10000"))
LETTERS = float(os.environ.get("BENCH_COMMS_LETTERS", "20"))
DOC_SECONDS = float(os.environ.get("BENCH_COMMS_DOC_SECONDS", "60"))
PROFILE = os.environ.get("BENCH_PROFILE", "")
TODAY = date(2026, 11, 30)  # the stand-in ATO's business date
GOAL_SECONDS, GOAL_RATIO, GOAL_MB = 120.0, 1.25, 300.0
GOAL_LETTERS = 200_000


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

        log = Path(data_dir, "worker.log")
        command = [PY, __file__, "--worker"]
        if PROFILE:
            command = [PY, "-m", "cProfile", "-o", PROFILE, __file__, "--worker"]
        with open(log, "wb") as output:
            worker = subprocess.Popen(
                command, cwd=ROOT, env=bench_env(**ato), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        memory = TreeMemory(worker.pid)
        try:
            worker_ready(worker, log)
            memory.start()
            redis = django_rq.get_connection("high")
            first = cc.ListRequest(
                issued_from=communications._five_years_before(TODAY),
                issued_to=TODAY,
                page_size=communications.PAGE_SIZE,
            )
            reference = page_through(
                CC, lambda: api.ask(first, practice=practice, by=None, purpose=PURPOSES[CC]).message, memory, redis
            )
            note(f"reference: {reference.items} letters paged without storing in {reference.seconds:.1f} s")

            memory.phase = "sync"
            started = time.perf_counter()
            run = communications.sync_start(practice=practice, actor=admin, today=TODAY)
            while SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).exists():
                if worker.poll() is not None:
                    raise SystemExit(f"the worker died:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            synced = time.perf_counter() - started
            run.refresh_from_db()
            if run.status != SyncStatus.DONE or run.letters_new != expected.count:
                raise SystemExit(f"the sync stopped ({run.status}: {run.error}) with {run.letters_new} letters")
            stored_at_sync = Letter.objects.filter(document_state=DocumentState.STORED).count()
            note(f"sync: {run.letters_new} letters in {run.pages} pages in {synced:.1f} s")

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
            note(f"worker log (last lines):\n{log.read_text()[-3000:]}")
            raise
        finally:
            memory.stopping.set()
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=60)

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
    figures.add("comms_documents_per_s", (stored - stored_at_sync) / fetched if fetched else 0, "documents/s")
    figures.add("comms_documents_stored_during_sync", stored_at_sync, "documents", 0)
    figures.goal(
        f"the sync at {rate:.0f} letters/s would take {GOAL_LETTERS / rate:.0f} s for {GOAL_LETTERS} letters "
        f"(<= {GOAL_SECONDS:.0f} s needs {GOAL_LETTERS / GOAL_SECONDS:.0f} letters/s)",
        GOAL_LETTERS / rate <= GOAL_SECONDS,
    )
    figures.goal(f"sync <= {GOAL_RATIO} x the reference", synced / reference.seconds <= GOAL_RATIO)
    figures.goal(f"worker RSS <= {GOAL_MB:.0f} MB", peak_mb <= GOAL_MB)


def worker_main() -> None:
    import django

    django.setup()
    from django.db import connections

    from bench._list_worker import register_handlers

    register_handlers()
    import django_rq

    worker = django_rq.get_worker("high", "default", "low")  # the settings' worker class, as in production
    connections.close_all()
    worker.work(with_scheduler=True, logging_level="WARNING")


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
