"""The fault campaign at scale (issue: reliability): BENCH_MESSAGES messages (10,000) of mixed services (MIX below:
pings, CUREL Search, Validate and Submit, CUDTL Get, CUADDR and CUFI List, CC List and Get) through real rqworker
processes and the production scheduler (`rqcron portal.cron`, whose sweep runs every 10 s) to the stand-in ATO, while:
the stand-in injects random faults (500, 503, reset, timeout, malformed reply, bad signature) and one outage; a
worker is killed with SIGKILL several times; Redis is restarted (without persistence, so its queues, scheduled
retries and cached tokens are gone); PostgreSQL is stopped at once (pg_ctl -m immediate, a crash) and started;
and the stand-in ATO's processes are killed with SIGKILL and started again on the same port and data.

A supervisor loop stands in for the process manager (docker compose's `restart: unless-stopped`): any worker or
scheduler that exits is started again. The faults are spread over the run by progress (a share of messages
done), so each one lands while messages are in flight.

The business messages are asked as the apps ask, through `ato_gateway.api.ask_many` (a Question beside each outbox
row, with a purpose that has no handler, so nothing in the portal changes), of the clients of a register the
stand-in generates for the practice; the pings go through the outbox directly, as the connection test does. They
are recorded in rounds of ROUND messages, each round holding the mix, so every fault lands on every service.

Figures, for the whole run and for each service: messages lost (goal 0: a row missing, a row still unsettled at
the end, a row DONE that the stand-in never applied, or an answered CUREL Submit whose link is not in the register
exactly once), applied twice at the ATO by the stand-in's effect record (goal 0; the record holds every business
message it applied, a Get's too, though only a Submit changes its register), still unsettled one sweep after the
faults stop (goal 0), and wall time; and how each service's questions ended (answered, refused, failed).

Restarts only servers of its own: a redis-server and a PostgreSQL cluster on spare ports (BENCH_REDIS_PORT 6391,
BENCH_POSTGRES_PORT 5491, cluster in BENCH_POSTGRES_DIR /tmp/faults-pg).

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
from collections.abc import Callable, Iterator
from datetime import date
from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ato_sandbox.testing import free_port
from bench import _common
from bench._common import PY, ROOT, Figures, bench_database, bench_env, note, point_at_sandbox, production_env
from bench._servers import OwnPostgres, OwnRedis, own_servers

if TYPE_CHECKING:
    from ato_gateway.wire.documents.codec import Document
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
# The share of each service in every round: the connection test, relationships (a search and a link checked and
# added for clients not yet linked), demographics' questions and communications, as a practice's day asks them.
MIX: dict[str, float] = {
    "PING.Ping.001.00": 0.30,
    "CUREL.Search.004.00": 0.10,
    "CUREL.Validate.004.00": 0.05,
    "CUREL.Submit.004.00": 0.05,
    "CUDTL.Get.003.00": 0.15,
    "CUADDR.List.003.00": 0.10,
    "CUFI.List.003.00": 0.10,
    "CC.List.001.00": 0.075,
    "CC.Get.001.00": 0.075,
}
ROUND = 500  # messages recorded together, in the mix's shares
AGENT_TAN = "25123456"  # the practice's agent number in the register the stand-in generates (as tests/ato_fixtures)
DEMO_ABN = "53004085616"  # the ABN of the stand-in's demo machine credential, and so of the practice
TODAY = date(2026, 11, 30)  # the stand-in's business date, fixed so that the register and CC's range agree
SINCE = date(2021, 12, 1)  # CC List's longest range, five years to TODAY
PURPOSE = "bench.fault_campaign"  # no handler is registered for it: the questions are answered, nothing else


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


def register_for(sandbox: Sandbox, messages: int) -> dict[str, list[dict[str, Any]]]:
    """Generate a register in which the practice (agent AGENT_TAN) has clients to ask about and taxpayers it is not
    yet linked to, enough for one Submit each; returns the rows the questions are made from."""
    submits = int(messages * MIX["CUREL.Submit.004.00"]) + ROUND
    sandbox.control("POST", "today", json={"today": TODAY.isoformat()})
    sandbox.control(
        "POST",
        "register",
        json={
            "seed": 7,
            "taxpayers": 400 + 2 * submits,
            "agents": [
                {"tan": AGENT_TAN, "abn": DEMO_ABN, "name": "Bench Campaign", "kind": "TAX", "clients": 300},
                {"tan": "25987654", "abn": "51824753556", "name": "Other Agents", "kind": "TAX", "clients": 100},
            ],
        },
    )

    def query(sql: str, *params: object) -> list[dict[str, Any]]:
        return sandbox.control("POST", "query", json={"sql": sql, "params": list(params)})["rows"]

    mine = (
        "EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id "
        "AND a.tan = ? AND l.end_date IS NULL{})"
    )
    linked, client_level = mine.format(""), mine.format(" AND l.level = 'CLIENT'")
    taxpayers = "SELECT t.* FROM reg_taxpayers t WHERE t.death_date IS NULL AND "
    rows = {
        "clients": query(f"{taxpayers}{client_level} ORDER BY t.id", AGENT_TAN),
        "strangers": query(f"{taxpayers}NOT {linked} ORDER BY t.id", AGENT_TAN),
        "letters": query(
            "SELECT c.id FROM reg_communications c JOIN reg_taxpayers t ON t.id = c.taxpayer_id "  # noqa: S608
            f"WHERE {client_level} AND c.issued_date >= ? ORDER BY c.id",
            AGENT_TAN,
            SINCE.isoformat(),
        ),
    }
    if len(rows["strangers"]) < submits or not rows["clients"] or not rows["letters"]:
        raise SystemExit(f"the register has too few rows for the mix: { ({k: len(v) for k, v in rows.items()}) }")
    return rows


def links_in_register(sandbox: Sandbox, taxpayers: list[dict[str, Any]]) -> dict[str, int]:
    """How many client-level links of the practice started on TODAY each taxpayer has in the register (ended ones
    too), by TFN: an answered Submit must have added exactly one."""
    found = sandbox.control(
        "POST",
        "query",
        json={
            "sql": "SELECT t.tfn, count(*) AS n FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id JOIN "
            "reg_taxpayers t ON t.id = l.taxpayer_id WHERE a.tan = ? AND l.level = 'CLIENT' AND l.start_date = ? "
            "GROUP BY t.tfn",
            "params": [AGENT_TAN, TODAY.isoformat()],
        },
    )["rows"]
    wanted = {t["tfn"] for t in taxpayers}
    return {row["tfn"]: int(row["n"]) for row in found if row["tfn"] in wanted}


def _identity(taxpayer: dict[str, Any]) -> dict[str, Any]:
    """How a Search, Validate or Submit names the client: the TFN and the name (and a person's date of birth)."""
    from ato_gateway.wire.documents.common import ClientIdentifier, PersonName

    client = ClientIdentifier.of(tfn=taxpayer["tfn"])
    if taxpayer["entity"] == "IND":
        return {
            "client": client,
            "person_name": PersonName(taxpayer["family_name"]),
            "birth_date": date.fromisoformat(taxpayer["birth_date"]),
        }
    return {"client": client, "organisation_name": taxpayer["organisation_name"]}


def documents_for(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Iterator[Document]]:
    """An endless supply of each service's documents: Gets and Lists go round the clients and their letters; each
    Submit adds a client-level link for a taxpayer of its own, so that the register shows whether it took effect
    once; Search and Validate ask about the same taxpayers (they change nothing)."""
    from ato_gateway.wire.documents import cc, cuaddr, cudtl, cufi, curel
    from ato_gateway.wire.documents.common import ClientIdentifier

    def tfn(t: dict[str, Any]) -> ClientIdentifier:
        return ClientIdentifier.of(tfn=t["tfn"])

    clients, strangers = rows["clients"], rows["strangers"]
    link = [curel.Relationship.client()]
    return {
        "CUREL.Search.004.00": (curel.SearchRequest(**_identity(t)) for t in cycle(strangers)),
        "CUREL.Validate.004.00": (curel.ValidateRequest(relationships=link, **_identity(t)) for t in cycle(strangers)),
        "CUREL.Submit.004.00": (curel.SubmitRequest(relationships=link, **_identity(t)) for t in strangers),
        "CUDTL.Get.003.00": (cudtl.GetRequest(client=tfn(t)) for t in cycle(clients)),
        "CUADDR.List.003.00": (cuaddr.ListRequest(client=tfn(t)) for t in cycle(clients)),
        "CUFI.List.003.00": (cufi.ListRequest(client=tfn(t)) for t in cycle(clients)),
        "CC.List.001.00": (
            cc.ListRequest(clients=[tfn(t)], issued_from=SINCE, issued_to=TODAY) for t in cycle(clients)
        ),
        "CC.Get.001.00": (cc.GetRequest(id=str(letter["id"])) for letter in cycle(rows["letters"])),
    }


def round_counts(size: int) -> dict[str, int]:
    """How many messages of each service one round of ``size`` holds: the mix's shares, the rest as pings."""
    counts = {label: int(size * share) for label, share in MIX.items() if not label.startswith("PING.")}
    counts["PING.Ping.001.00"] = size - sum(counts.values())
    return counts


def record_round(
    practice: Practice, size: int, documents: dict[str, Iterator[Document]], number: int
) -> dict[str, list[int]]:
    """One round of the mix in one transaction: the questions through ``ask_many`` as the apps ask, the pings as
    the connection test records them. Returns the outbox rows' ids by service."""
    from django.db import transaction

    from ato_gateway import api, services

    ping = '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>campaign {}</Text></PingRequest>'
    ids: dict[str, list[int]] = {}
    with transaction.atomic():
        for label, count in round_counts(size).items():
            if not count:
                continue
            if label.startswith("PING."):
                rows = services.outbox_enqueue_many(
                    practice=practice,
                    service="PING",
                    action="Ping.001.00",
                    batch=[([("PingRequest", ping.format(f"{number}.{i}"))], None) for i in range(count)],
                )
                ids[label] = [r.pk for r in rows]
                continue
            batch = [(next(documents[label]), None) for _ in range(count)]
            questions = api.ask_many(batch, practice=practice, by=None, purpose=PURPOSE)
            ids[label] = [q.message_id for q in questions]
    return ids


def campaign(figures: Figures, redis: OwnRedis, postgres: OwnPostgres, data_dir: Path) -> None:
    from ato_gateway import services
    from ato_gateway.models import TERMINAL, MessageStatus, OutboxMessage, Question, QuestionState
    from portal.models import Practice

    sandbox = Sandbox(data_dir)
    sandbox.start()
    ato = point_at_sandbox(sandbox.url, data_dir)
    practice = Practice.objects.create(name="Bench Campaign", abn=DEMO_ABN, agent_number=AGENT_TAN)
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
    rows = register_for(sandbox, MESSAGES)
    documents = documents_for(rows)
    note(
        f"register: {len(rows['clients'])} clients linked at client level, {len(rows['strangers'])} taxpayers not "
        f"linked, {len(rows['letters'])} letters of the clients since {SINCE}"
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
        by_service: dict[str, list[int]] = {label: [] for label in MIX}
        for number, start in enumerate(range(0, MESSAGES, ROUND)):
            for label, recorded in record_round(practice, min(ROUND, MESSAGES - start), documents, number).items():
                by_service[label] += recorded
        ids = [pk for recorded in by_service.values() for pk in recorded]
        mix = ", ".join(f"{label} {len(recorded)}" for label, recorded in by_service.items())
        note(f"{len(ids)} messages recorded and enqueued in {time.perf_counter() - started:.1f} s: {mix}")
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
        unsettled_pks = list(pending.values_list("pk", flat=True))
        unsettled_after_sweep = len(unsettled_pks)
        note(f"{time.perf_counter() - started:6.1f} s: {unsettled_after_sweep} unsettled one sweep after the faults")
        while pending.exists() and time.perf_counter() < stopped + 600:
            supervisor.check()
            time.sleep(0.5)
        wall = time.perf_counter() - started
    finally:
        supervisor.stop_all()

    applied = sandbox.control("GET", "stats")["applied"]
    submitted_links = links_in_register(sandbox, rows["strangers"])
    sandbox.kill()
    table = list(
        OutboxMessage.objects.filter(pk__in=ids).values_list("pk", "message_id", "status", "attempts", "error_code")
    )
    service_of = {pk: label for label, recorded in by_service.items() for pk in recorded}
    answered = set(
        Question.objects.filter(message_id__in=by_service["CUREL.Submit.004.00"], state=QuestionState.ANSWERED)
        .values_list("message_id", flat=True)
    )  # fmt: skip
    submit_tfns = dict(zip(by_service["CUREL.Submit.004.00"], (t["tfn"] for t in rows["strangers"]), strict=False))
    per: dict[str, Counter[str]] = {label: Counter() for label in MIX}
    # How the questions ended: answered from the register, or refused by its rules (a sign the mix asks about
    # the wrong taxpayers), or failed with the message.
    for pk, state in Question.objects.filter(message_id__in=ids).values_list("message_id", "state"):
        per[service_of[pk]][f"question_{state}"] += 1
    statuses: Counter[str] = Counter()
    for pk, mid, status, tries, _code in table:
        counts = per[service_of[pk]]
        statuses[status] += 1
        counts["attempts"] += tries
        counts["applied_twice"] += applied.get(mid, 0) > 1
        counts["unsettled"] += status not in TERMINAL
        counts["failed"] += status in (MessageStatus.FAILED, MessageStatus.DEAD)
        # Lost: DONE though the stand-in never applied it; an answered Submit whose link is not in the register
        # exactly once (the register, not only the effect record, shows the link was added once).
        counts["done_unapplied"] += status == MessageStatus.DONE and mid not in applied
        counts["link_not_once"] += pk in answered and submitted_links.get(submit_tfns[pk], 0) != 1
        # Given up on (a reply whose signature did not verify is refused for good) though the ATO applied it:
        # neither lost nor doubled, but the portal does not know it was answered.
        counts["failed_but_applied"] += status != MessageStatus.DONE and mid in applied
    missing = {label: len(recorded) for label, recorded in by_service.items()}
    for pk, *_rest in table:
        missing[service_of[pk]] -= 1
    for label, counts in per.items():
        counts["lost"] = missing[label] + counts["done_unapplied"] + counts["unsettled"] + counts["link_not_once"]
        note(
            f"{label:24} {len(by_service[label]):6} sent: lost {counts['lost']}, applied twice "
            f"{counts['applied_twice']}, unsettled at the end {counts['unsettled']}, failed {counts['failed']} "
            f"(of them applied at the ATO {counts['failed_but_applied']}), attempts {counts['attempts']}"
            + "".join(f", {key[9:]} {n}" for key, n in sorted(counts.items()) if key.startswith("question_"))
            + (
                f"; answered Submits {len(answered)}, of them without exactly one new link in the register "
                f"{counts['link_not_once']}"
                if label == "CUREL.Submit.004.00"
                else ""
            )
        )
    unsettled_by_service = Counter(service_of[pk] for pk in unsettled_pks)
    total = sum(per.values(), Counter())
    lost, twice, failed_applied = total["lost"], total["applied_twice"], total["failed_but_applied"]
    attempts = total["attempts"]
    failures = Counter(
        code for _pk, _mid, status, _tries, code in table if status in (MessageStatus.FAILED, MessageStatus.DEAD)
    )
    for code, count in failures.most_common(5):
        example = OutboxMessage.objects.filter(pk__in=ids, error_code=code).values_list("error_text", flat=True)[0]
        note(f"failed with {code}: {count}, for example {example[:300]!r}")
    note(
        f"statuses {dict(statuses)}; attempts {attempts}; restarts by the supervisor {dict(supervisor.restarts)}; "
        f"{WORKERS} workers; machine shared with other work, so the wall time is this hour's"
    )
    for label, counts in per.items():
        name = label.split(".")[0].lower() + "_" + label.split(".")[1].lower()
        figures.add(f"campaign_{name}_lost", counts["lost"], "msg", 0)
        figures.add(f"campaign_{name}_applied_twice", counts["applied_twice"], "msg", 0)
        figures.add(f"campaign_{name}_unsettled_one_sweep_after", unsettled_by_service[label], "msg", 0)
    figures.add("campaign_messages", len(ids), "msg", 0)
    figures.add("campaign_lost", lost, "msg", 0)
    figures.add("campaign_applied_twice", twice, "msg", 0)
    figures.add("campaign_unsettled_one_sweep_after", unsettled_after_sweep, "msg", 0)
    figures.add("campaign_failed", total["failed"], "msg", 0)
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
