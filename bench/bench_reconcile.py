"""Reconciliation's figure (issue: relationships, nightly and on demand).

Reconciling a practice with 10,000 clients against the stand-in ATO, end to end: the run's first List request in the
outbox -> a real `manage.py rqworker` process -> signed request over HTTP -> the stand-in ATO process pages through
its register (500 clients a page) -> each page verified, streamed and compared with the register in PostgreSQL in
the transaction that settles it, which asks for the next page -> after the last page, the links the ATO no longer
lists are ended. The register mirrors the ATO's except for a few hundred differences of each kind, so the drift
report, the history and the alerts are written too. Goal: <= 120 s on this machine.

The clock runs from starting the run to its last page applied (the worker is already up, as it is at night).

Environment: BENCH_CLIENTS (10000), BENCH_DRIFT (50 per kind), BENCH_KEEP_DB=1, BENCH_ENFORCE_GOALS=1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from ato_sandbox.testing import running_sandbox
from bench._common import PY, ROOT, Figures, bench_database, bench_env, make_practice_admin, note, point_at_sandbox

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "10000"))
DRIFT = int(os.environ.get("BENCH_DRIFT", "50"))
AGENT_TAN = "25123456"
DEMO_ABN = "53004085616"  # the stand-in ATO's demo machine credential, and the bench practice's ABN
GOAL_SECONDS = 120.0


def control(url: str, path: str, body: dict[str, Any]) -> Any:
    response = requests.post(f"{url}/_control/{path}", json=body, timeout=600)
    response.raise_for_status()
    return response.json()


def mirror_register(url: str, practice: Any) -> dict[str, int]:
    """The practice's register as the ATO holds it, less DRIFT clients (not in the register), less DRIFT clients'
    links (not in the portal); then DRIFT links ended at the ATO behind the portal's back. Returns what each
    difference should come to."""
    from clients.models import Client, ClientKind
    from relationships.models import Link

    rows = control(
        url,
        "query",
        {
            "sql": "SELECT t.id AS taxpayer_id, t.tfn, t.abn, t.wpn, t.entity, t.family_name, t.given_name, "
            "t.organisation_name, l.level, l.role, a.kind AS account, a.branch FROM reg_links l "
            "JOIN reg_agents g ON g.id = l.agent_id JOIN reg_taxpayers t ON t.id = l.taxpayer_id "
            "LEFT JOIN reg_accounts a ON a.id = l.account_id WHERE g.tan = ? AND l.end_date IS NULL "
            "ORDER BY t.id, l.id",
            "params": [AGENT_TAN],
        },
    )["rows"]
    by_taxpayer: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_taxpayer.setdefault(row["taxpayer_id"], []).append(row)
    taxpayers = list(by_taxpayer)
    missing = set(taxpayers[:DRIFT])  # step through the list so the differences fall on many pages
    forgotten = set(taxpayers[DRIFT : 2 * DRIFT])
    ended = [t for t in taxpayers[2 * DRIFT :: max(1, len(taxpayers) // (DRIFT * 2))] if len(by_taxpayer[t]) == 1]
    ended = ended[:DRIFT]
    kinds = {"IND": ClientKind.INDIVIDUAL, "COY": ClientKind.COMPANY, "TRT": ClientKind.TRUST}
    clients = []
    for taxpayer in taxpayers:
        if taxpayer in missing:
            continue
        row = by_taxpayer[taxpayer][0]
        client = Client(
            practice=practice,
            kind=kinds.get(row["entity"], ClientKind.OTHER),
            family_name=row["family_name"] or "",
            given_names=row["given_name"] or "",
            organisation_name=row["organisation_name"] or "",
            abn=row["abn"] or "",
            wpn=row["wpn"] or "",
        )
        client.set_tfn(row["tfn"])
        client.set_names()
        clients.append((taxpayer, client))
    Client.objects.bulk_create([c for _, c in clients], batch_size=2000)
    links = [
        Link(
            practice=practice,
            client=client,
            level=r["level"],
            account_kind=r["account"] or "",
            branch=r["branch"] or "",
            role=r["role"] or "",
        )
        for taxpayer, client in clients
        if taxpayer not in forgotten
        for r in by_taxpayer[taxpayer]
    ]
    Link.objects.bulk_create(links, batch_size=5000)
    for taxpayer in ended:
        control(url, "end-link", {"tan": AGENT_TAN, "tfn": by_taxpayer[taxpayer][0]["tfn"]})
    note(f"register: {len(clients)} clients, {len(links)} links; ATO: {len(taxpayers)} clients, {len(rows)} links")
    return {"not_in_register": len(missing), "not_in_portal": len(forgotten), "lost_access": len(ended)}


def reconcile(figures: Figures, data_dir: str) -> None:

    from ato_gateway import services
    from relationships.reconcile.models import Drift, ReconcileRun, RunStatus
    from relationships.reconcile.services import reconcile_start

    with running_sandbox(Path(data_dir), env=bench_env(), python=PY) as url:
        ato = point_at_sandbox(url, data_dir)
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
        started = time.perf_counter()
        control(url, "today", {"today": "2026-11-30"})
        generated = control(
            url,
            "register",
            {
                "seed": 11,
                "taxpayers": int(CLIENTS * 1.25),
                "agents": [
                    {
                        "tan": AGENT_TAN,
                        "abn": DEMO_ABN,
                        "name": practice.name,
                        "kind": "TAX",
                        "clients": CLIENTS,
                        "letters_per_client": 0,
                    }
                ],
            },
        )
        note(f"stand-in ATO register generated in {time.perf_counter() - started:.1f} s: {generated}")
        started = time.perf_counter()
        expected = mirror_register(url, practice)
        note(f"portal register built in {time.perf_counter() - started:.1f} s")

        worker = subprocess.Popen(
            [PY, "manage.py", "rqworker", "high", "default", "low", "--with-scheduler"],
            cwd=ROOT,
            env=bench_env(**ato),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            time.sleep(3)  # the worker is up before the clock starts, as it is at night
            started = time.perf_counter()
            run = reconcile_start(practice=practice)
            while ReconcileRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists():
                if worker.poll() is not None:
                    raise SystemExit("the worker died")
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
        run.refresh_from_db()
        if run.status != RunStatus.DONE:
            raise SystemExit(f"the run stopped: {run.error}")
        found = {k: Drift.objects.filter(run=run, kind=k).count() for k in expected}
        note(f"{run.pages} pages, {run.clients_seen} clients listed (ended links included), drift {found}")
        if found != expected:
            raise SystemExit(f"drift {found}, expected {expected}")
        figures.add("reconcile_clients", run.clients_seen, "clients", 0)
        figures.add("reconcile_pages", run.pages, "pages", 0)
        figures.add("reconcile_total", elapsed, "s")
        figures.add("reconcile_clients_per_s", run.clients_seen / elapsed, "clients/s")
        figures.goal(f"reconciling {CLIENTS} clients <= {GOAL_SECONDS:.0f} s", elapsed <= GOAL_SECONDS)


def main() -> int:
    figures = Figures()
    with bench_database(), tempfile.TemporaryDirectory() as data_dir:
        reconcile(figures, data_dir)
    return figures.emit()


if __name__ == "__main__":
    raise SystemExit(main())
