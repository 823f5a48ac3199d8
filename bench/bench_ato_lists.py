"""The long lists' figures (issue 4): a relationships list of 50,000 clients and a CC list of ~200,000 letters
page through in bounded memory.

The stand-in ATO gets a register in which the bench practice's agent has BENCH_LIST_CLIENTS clients with
BENCH_LETTERS_PER_CLIENT letters each on average. Each list is then paged through the real gateway, entirely
inside one RQ worker process (RQ's forking Worker with its scheduler, as production runs it): the first page's
request goes into the outbox, and the handler registered for the list's purpose (bench/_list_worker.py) reads each
page as a stream and asks for the next page while the answer carries a continuation.

Figures:
1. Pages per second for each list, from the first request recorded to the last page's handler committing.
2. Peak memory of the worker while paging: the sum of VmRSS over the worker's process tree (the worker, which
   runs each page's job itself, and RQ's scheduler process), polled every ~50 ms. Goal: <= 300 MB. A forked
   child shares its parent's pages, so the RSS sum counts them twice; the PSS sum (shared pages split between
   the processes) is printed next to it.
Totals are verified: every client and every letter the register says the agent sees is counted exactly once
(item count and an order-independent digest of the items' keys, against `/_control/query`).

Environment: BENCH_LIST_CLIENTS (50000), BENCH_LETTERS_PER_CLIENT (4.3), BENCH_LIST_PAGE_SIZE (500, the stand-in
ATO's maximum), BENCH_LIST_TIMEOUT (3600 s per list), BENCH_KEEP_DB=1, BENCH_ENFORCE_GOALS=1. Its own database
(portal_bench_lists) and its own redis-server on a free port (DB 10 of the local Redis without redis-server),
unless BENCH_DATABASE_URL / BENCH_REDIS_URL say otherwise."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _private_redis() -> subprocess.Popen[bytes] | None:
    """A Redis server of this run's own on a free port, when none is named and redis-server is installed. The
    results of a list of several hundred pages live in Redis for a quarter of an hour; on a shared Redis a
    FLUSHALL or flushdb from anyone else's tests in that time loses them (it happened)."""
    if os.environ.get("BENCH_REDIS_URL") or not shutil.which("redis-server"):
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=tempfile.gettempdir(),
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    os.environ["BENCH_REDIS_URL"] = url
    return server


# Before bench._common reads them: a database and a Redis of this benchmark's own, so that it can run while other
# benchmarks or tests use theirs. Without redis-server, DB 10 of the local Redis (it has 16; 10 is otherwise unused).
REDIS_SERVER = _private_redis() if __name__ == "__main__" else None
os.environ.setdefault("BENCH_DATABASE_URL", "postgres:///portal_bench_lists")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")

import requests  # noqa: E402 - after the environment above, with the imports that read it

from ato_sandbox.testing import running_sandbox  # noqa: E402
from bench._common import PY, ROOT, Figures, bench_database, bench_env, load_average, note, point_at_sandbox  # noqa: E402
from bench._list_worker import CC, CUREL, MASK, PREFIX, PURPOSES, key_digest, totals  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_LIST_CLIENTS", "50000"))
# 4.3 rather than 4: an account-level link sees only its account's letters, so the agent sees ~94% of the letters
# its clients get, and the list should hold 200,000.
LETTERS_PER_CLIENT = float(os.environ.get("BENCH_LETTERS_PER_CLIENT", "4.3"))
PAGE_SIZE = int(os.environ.get("BENCH_LIST_PAGE_SIZE", "500"))
LIST_TIMEOUT = float(os.environ.get("BENCH_LIST_TIMEOUT", "3600"))
GOAL_MB = 300.0

AGENT_TAN = "25123456"  # the agent number tests/ato_fixtures.py gives its practice
DEMO_ABN = "53004085616"  # the ABN of the stand-in ATO's demo machine credential
TODAY = date(2026, 11, 30)  # the sandbox's business date: letters are issued within the three years before it
ISSUED_FROM = date(TODAY.year - 4, 1, 1)  # covers every letter, within the five years one CC request may span
SAMPLE_SECONDS = 0.05


# --- The worker's memory -------------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc/*/stat (this kernel has no /proc/<pid>/task/*/children)."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:  # the process has gone since the listing
            continue
        # The command name may hold spaces and parentheses: the fields after its closing parenthesis are fixed.
        ppid = int(text[text.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(*roots: int) -> list[int]:
    """The roots and every process descended from them."""
    tree = _children()
    pids, index = list(roots), 0
    while index < len(pids):
        pids.extend(tree.get(pids[index], []))
        index += 1
    return pids


def _kb(path: str, label: bytes) -> int:
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(label):
                    return int(line.split()[1])
    except (OSError, ValueError):  # gone between the listing and the read: it no longer uses memory
        pass
    return 0


@dataclass
class Peak:
    rss_sum_kb: int = 0
    pss_sum_kb: int = 0
    largest_rss_kb: int = 0
    processes: int = 0
    samples: int = 0


class TreeMemory(threading.Thread):
    """Samples the worker's process tree (or, given several roots, the trees of several workers, summed) every
    SAMPLE_SECONDS and keeps the peaks of the phase being measured."""

    def __init__(self, *roots: int) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.phase = "idle"
        self.peaks: dict[str, Peak] = {}
        self.stopping = threading.Event()

    def sample(self) -> None:
        pids = process_tree(*self.roots)
        rss = [_kb(f"/proc/{pid}/status", b"VmRSS:") for pid in pids]
        pss = sum(_kb(f"/proc/{pid}/smaps_rollup", b"Pss:") for pid in pids)
        peak = self.peaks.setdefault(self.phase, Peak())
        peak.rss_sum_kb = max(peak.rss_sum_kb, sum(rss))
        peak.pss_sum_kb = max(peak.pss_sum_kb, pss)
        peak.largest_rss_kb = max(peak.largest_rss_kb, max(rss))
        peak.processes = max(peak.processes, sum(1 for kb in rss if kb))
        peak.samples += 1

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(SAMPLE_SECONDS)


# --- The stand-in ATO ----------------------------------------------------------------------------------------------


class Control:
    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, name: str, body: dict[str, Any], timeout: float = 120) -> Any:
        response = requests.post(f"{self.url}/_control/{name}", json=body, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return list(self.post("query", {"sql": sql, "params": list(params)}, timeout=300)["rows"])


@dataclass
class Expected:
    count: int
    digest: int
    extra: dict[str, int] = field(default_factory=dict)


def _digest(keys: list[str]) -> int:
    total = 0
    for key in keys:
        total = (total + key_digest(key)) & MASK
    return total


class Register(Protocol):
    """A read-only look into the stand-in ATO's register: `Control` here, `tests.ato_fixtures.Ato` in a test."""

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]: ...


def expected_lists(control: Register, tan: str = AGENT_TAN) -> dict[str, Expected]:
    """What the lists must hold, read from the register with the stand-in ATO's own selection: the agent's
    current clients, and the letters in the date range that its current links cover (a client-level link covers
    every letter of the client, an account-level one the letters about its account)."""
    agent_id = control.query("SELECT id FROM reg_agents WHERE tan = ?", tan)[0]["id"]
    current = "SELECT taxpayer_id FROM reg_links WHERE agent_id = ? AND end_date IS NULL"
    tfns = [r["tfn"] for r in control.query(f"SELECT tfn FROM reg_taxpayers WHERE id IN ({current})", agent_id)]  # noqa: S608
    covered = (
        "EXISTS (SELECT 1 FROM reg_links l WHERE l.agent_id = ? AND l.taxpayer_id = c.taxpayer_id "
        "AND l.end_date IS NULL AND (l.level = 'CLIENT' OR (l.level = 'ACCOUNT' AND l.account_id = c.account_id)))"
    )
    letters = [
        str(r["id"])
        for r in control.query(
            f"SELECT c.id FROM reg_communications c WHERE c.taxpayer_id IN ({current}) "  # noqa: S608
            f"AND c.issued_date BETWEEN ? AND ? AND {covered}",
            agent_id,
            ISSUED_FROM.isoformat(),
            TODAY.isoformat(),
            agent_id,
        )
    ]
    all_letters = control.query(
        f"SELECT count(*) AS n FROM reg_communications WHERE taxpayer_id IN ({current})",  # noqa: S608
        agent_id,
    )[0]["n"]
    return {
        CUREL: Expected(len(tfns), _digest(tfns)),
        CC: Expected(len(letters), _digest(letters), {"letters_of_clients": int(all_letters)}),
    }


# --- Paging --------------------------------------------------------------------------------------------------------


@dataclass
class Paged:
    pages: int
    items: int
    digest: int
    seconds: float


def page_through(name: str, start: Any, memory: TreeMemory, redis: Any) -> Paged:
    """Record the first page's request and wait until the worker's handler has committed the last page."""
    from django.db import transaction

    from ato_gateway.models import MessageStatus, OutboxMessage

    memory.phase = name
    started = time.time()
    with transaction.atomic():  # the send job is enqueued when this commits, as for any domain app
        first = start()
    deadline = time.monotonic() + LIST_TIMEOUT
    while True:
        done = redis.get(f"{PREFIX}:{name}:done")
        if done is not None:
            break
        error = redis.get(f"{PREFIX}:{name}:error")
        if error is not None:
            raise SystemExit(f"{name} list refused: {error.decode()}")
        failed = OutboxMessage.objects.filter(
            service=first.service, action=first.action, status__in=[MessageStatus.FAILED, MessageStatus.DEAD]
        ).first()
        if failed is not None:
            raise SystemExit(
                f"{name} list: message {failed.pk} {failed.status}: {failed.error_code} {failed.error_text}"
            )
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} list: not finished in {LIST_TIMEOUT:.0f} s")
        time.sleep(0.2)
    seconds = float(done) - started
    # One more sample after the last page, so a short run's peak is not missed between two samples.
    memory.sample()
    memory.phase = "idle"
    where_the_time_goes(name, first.service, first.action)
    return Paged(*totals(redis, name), seconds)


def where_the_time_goes(name: str, service: str, action: str) -> None:
    """Per page, on average: from the row's creation (in the previous page's handler) to its claim, which is the
    rest of that handler, the recording, RQ's hand-over and the fork of the next work horse; and the attempt as
    the gateway times it (token, signing, the stand-in ATO's answer and its verification, not the handler)."""
    from django.db.models import Avg, F

    from ato_gateway.models import MessageAttempt, OutboxMessage

    rows = OutboxMessage.objects.filter(service=service, action=action)
    handover = rows.aggregate(avg=Avg(F("claimed_at") - F("created_at")))["avg"]
    attempt = MessageAttempt.objects.filter(message__in=rows).aggregate(avg=Avg("duration_ms"))["avg"]
    attempts = MessageAttempt.objects.filter(message__in=rows).count()
    note(
        f"{name}: per page {handover.total_seconds() * 1000 if handover else 0:.0f} ms from the row's creation to "
        f"its claim, {attempt or 0:.0f} ms attempt; {attempts} attempts for {rows.count()} pages"
    )


def wait_for_worker(process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the worker has registered with Redis: the clock of the first list must not include its start-up."""
    import django_rq
    from rq import Worker

    queue = django_rq.get_queue("high")
    deadline = time.monotonic() + 120
    while Worker.count(queue=queue) == 0:
        if process.poll() is not None:
            raise SystemExit(f"the list worker exited:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the list worker did not start in 120 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def check(name: str, paged: Paged, expected: Expected, what: str) -> None:
    pages = max(1, -(-expected.count // PAGE_SIZE))
    note(
        f"{name}: {paged.items} {what} in {paged.pages} pages in {paged.seconds:.1f} s "
        f"(register: {expected.count}, {pages} pages of {PAGE_SIZE})"
    )
    if paged.items != expected.count or paged.digest != expected.digest:
        raise SystemExit(
            f"{name}: counted {paged.items} {what} (digest {paged.digest:016x}), the register has {expected.count} "
            f"(digest {expected.digest:016x}): some were missed or seen twice"
        )
    if paged.pages != pages:
        raise SystemExit(f"{name}: {paged.pages} pages, expected {pages}")


def lists(figures: Figures, data_dir: str) -> None:
    import django_rq

    from ato_gateway import api, services
    from ato_gateway.wire.documents import cc, curel
    from portal.models import Practice

    # One gunicorn worker: the pager has one request in flight at a time, so a second would add no speed, and
    # it would risk the register generation below. Each worker takes the register's write lock as it boots (its
    # storage initialises), waiting at most 30 s; a second worker still booting while a generation of more than
    # 30 s holds the lock fails to boot, and gunicorn then stops the whole stand-in ATO ("Worker failed to boot").
    with running_sandbox(Path(data_dir), env=bench_env(), python=PY, workers=1) as url:
        ato = point_at_sandbox(url, data_dir)
        control = Control(url)
        control.post("today", {"today": TODAY.isoformat()})
        started = time.perf_counter()
        generated = control.post(
            "register",
            {
                "seed": 7,
                # A few taxpayers that are not the agent's clients, so its list is a selection from the register.
                "taxpayers": CLIENTS + CLIENTS // 20,
                "agents": [
                    {
                        "tan": AGENT_TAN,
                        "abn": DEMO_ABN,
                        "name": "Bench Lists Tax",
                        "kind": "TAX",
                        "clients": CLIENTS,
                        "letters_per_client": LETTERS_PER_CLIENT,
                    }
                ],
            },
            timeout=1800,  # generating a large register takes minutes on a busy machine
        )
        counts = generated.get("counts", {})
        note(
            f"register generated in {time.perf_counter() - started:.1f} s: "
            f"{counts.get('reg_taxpayers')} taxpayers, {counts.get('reg_links')} links, "
            f"{counts.get('reg_communications')} letters"
        )
        expected = expected_lists(control)
        note(
            f"the agent sees {expected[CUREL].count} clients and {expected[CC].count} letters "
            f"({expected[CC].extra['letters_of_clients']} letters to its clients in all)"
        )

        practice = Practice.objects.create(name="Bench Lists Tax", abn=DEMO_ABN, agent_number=AGENT_TAN)
        services.credential_import(
            practice=practice,
            data=Path(data_dir, "demo-keystore.xml").read_bytes(),
            filename="demo-keystore.xml",
            password="demo-keystore-password",
            actor=None,
        )

        log = Path(data_dir, "list-worker.log")
        with open(log, "wb") as output:
            worker = subprocess.Popen(
                [PY, "-m", "bench._list_worker"],
                cwd=ROOT,
                env=bench_env(**ato),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        memory = TreeMemory(worker.pid)
        try:
            wait_for_worker(worker, log)
            memory.start()
            time.sleep(1)  # an idle baseline, for comparison with the peaks
            redis = django_rq.get_connection("high")
            every_client = curel.ListRequest(page_size=PAGE_SIZE)
            curel_paged = page_through(
                CUREL,
                lambda: api.ask(every_client, practice=practice, by=None, purpose=PURPOSES[CUREL]).message,
                memory,
                redis,
            )
            every_letter = cc.ListRequest(issued_from=ISSUED_FROM, issued_to=TODAY, page_size=PAGE_SIZE)
            cc_paged = page_through(
                CC,
                lambda: api.ask(every_letter, practice=practice, by=None, purpose=PURPOSES[CC]).message,
                memory,
                redis,
            )
        except BaseException:
            note(f"list worker log (last lines):\n{log.read_text()[-3000:]}")
            raise
        finally:
            memory.stopping.set()
            if memory.is_alive():
                memory.join(timeout=5)
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait(timeout=5)

    idle, on_curel, on_cc = (memory.peaks.get(phase, Peak()) for phase in ("idle", CUREL, CC))
    for phase, peak in (("idle", idle), (CUREL, on_curel), (CC, on_cc)):
        note(
            f"worker memory, {phase}: RSS sum {peak.rss_sum_kb / 1024:.1f} MB, "
            f"PSS sum {peak.pss_sum_kb / 1024:.1f} MB, "
            f"largest process {peak.largest_rss_kb / 1024:.1f} MB, up to {peak.processes} processes, "
            f"{peak.samples} samples"
        )
    check(CUREL, curel_paged, expected[CUREL], "clients")
    check(CC, cc_paged, expected[CC], "letters")
    peak_mb = max(on_curel.rss_sum_kb, on_cc.rss_sum_kb) / 1024
    figures.add("curel_list_pages_per_second", curel_paged.pages / curel_paged.seconds, "pages/s", 2)
    figures.add("curel_list_clients", curel_paged.items, "clients", 0)
    figures.add("curel_list_seconds", curel_paged.seconds, "s")
    figures.add("cc_list_pages_per_second", cc_paged.pages / cc_paged.seconds, "pages/s", 2)
    figures.add("cc_list_letters", cc_paged.items, "letters", 0)
    figures.add("cc_list_seconds", cc_paged.seconds, "s")
    figures.add("curel_list_worker_peak_rss_mb", on_curel.rss_sum_kb / 1024, "MB")
    figures.add("cc_list_worker_peak_rss_mb", on_cc.rss_sum_kb / 1024, "MB")
    figures.add("list_worker_idle_rss_mb", idle.rss_sum_kb / 1024, "MB")
    figures.add("list_worker_peak_pss_mb", max(on_curel.pss_sum_kb, on_cc.pss_sum_kb) / 1024, "MB")
    figures.add("list_worker_peak_rss_mb", peak_mb, "MB")
    figures.goal(f"worker peak RSS <= {GOAL_MB:.0f} MB while paging both lists", peak_mb <= GOAL_MB)


def main() -> int:
    figures = Figures()
    note(f"{CLIENTS} clients, {LETTERS_PER_CLIENT:g} letters per client, pages of {PAGE_SIZE}")
    note(f"load average at the start: {load_average()}")
    try:
        with bench_database(), tempfile.TemporaryDirectory() as data_dir:
            lists(figures, data_dir)
    finally:
        if REDIS_SERVER is not None:
            REDIS_SERVER.terminate()
            REDIS_SERVER.wait(timeout=10)
    note(f"load average at the end: {load_average()}")
    return figures.emit()


if __name__ == "__main__":
    raise SystemExit(main())
