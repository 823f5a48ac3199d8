"""A super fund's foundation data load (issue 14): every member account reported to the stand-in ATO through MAAS,
in batches of MAAS_BATCH_SIZE, every response pulled, classified by seed 003's table and the worklist opened; beside
a reference measured in the same run: the same number of accounts (another fund) pushed through the same gateway in
the same batches, their answers settled, and nothing applied.

The stand-in ATO gets a register of BENCH_SUPER_PEOPLE taxpayers; the fund's BENCH_SUPER_ACCOUNTS accounts are its
individuals in turn, one in twenty with a wrong TFN (matched and corrected: a work item each), one in twenty with a
name nobody has (unmatched: no action in a foundation load). One worker process (`manage.py rqworker high default
low --with-scheduler`, as production runs it, DEBUG off) builds the batches, sends, pulls and applies.

The clock stops once the practice's worklist has opened on its first page (the real view, through Django's test
client in this process). Then the worklist at that size: ``services.worklist`` (a page of 50 by days left, keyset)
timed over its first pages, p99; bench/bench_super_worklist.py times the pages over HTTP from gunicorn.

Goals: 100,000 accounts in at most 5 minutes; worker RSS (its process tree) at most 300 MB; the worklist's p99 at
most 100 ms. Environment: BENCH_SUPER_ACCOUNTS (100000), BENCH_SUPER_PEOPLE (5000), BENCH_KEEP_DB=1,
BENCH_ENFORCE_GOALS=1."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

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
from bench.bench_ato_lists import DEMO_ABN, Control, TreeMemory
from bench.bench_ato_lists import wait_for_worker as worker_ready

if TYPE_CHECKING:
    from django.test import Client

    from portal.models import Practice, User
    from superannuation.models import SuperFund

ACCOUNTS = int(os.environ.get("BENCH_SUPER_ACCOUNTS", "100000"))
PEOPLE = int(os.environ.get("BENCH_SUPER_PEOPLE", "5000"))
REFERENCE_ABN = "51824753556"  # a second fund, administered by the practice, for the reference
REFERENCE_PURPOSE = "bench.maas_reference"  # no handler: the answers settle and nothing is applied
GOAL_ACCOUNTS, GOAL_SECONDS, GOAL_MB, GOAL_P99_MS = 100_000, 300.0, 300.0, 100.0
# An ATO outage of this many seconds once a third of the load's batches are answered (0: none). The load must still
# end with every account reported and every batch applied exactly once by the stand-in ATO (its effect record).
OUTAGE_SECONDS = float(os.environ.get("BENCH_SUPER_OUTAGE_SECONDS", "0"))


def make_members(control: Control, fund: SuperFund, count: int) -> int:
    from superannuation.models import Member

    people = control.query(
        "SELECT tfn, family_name, given_name, birth_date FROM reg_taxpayers WHERE entity = 'IND' AND tfn IS NOT NULL "
        "ORDER BY id"
    )
    members = []
    for n in range(count):
        person = people[n % len(people)]
        member = Member(
            fund=fund,
            member_number=f"M{n:07d}",
            family_name=person["family_name"] if n % 20 != 1 else f"Nobody-{n}",
            given_names=person["given_name"] or "",
            date_of_birth=date.fromisoformat(person["birth_date"]),
            opened_on=date(2020, 7, 1),
        )
        tfn = person["tfn"]
        if n % 20 == 0:  # someone else's TFN, the name and date of birth this person's: the ATO corrects it
            tfn = people[(n + 1) % len(people)]["tfn"]
        member.set_tfn(tfn)
        members.append(member)
        if len(members) == 5000:
            Member.objects.bulk_create(members)
            members = []
    Member.objects.bulk_create(members)
    return count


def wait_settled(questions: list[int], worker: subprocess.Popen[bytes], log: Path) -> None:
    from ato_gateway.api import Question, QuestionState

    while Question.objects.filter(pk__in=questions, state=QuestionState.WAITING).exists():
        if worker.poll() is not None:
            raise SystemExit(f"the worker died:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def reference(practice: Practice, fund: SuperFund, worker: subprocess.Popen[bytes], log: Path) -> float:
    """The same accounts of another fund, asked in the same batches through the same gateway, with no handler."""
    from django.conf import settings
    from django.db import transaction

    from ato_gateway import api
    from ato_gateway.api import Question, QuestionState
    from ato_gateway.wire.documents import maas
    from superannuation.models import Member, Transaction
    from superannuation.reporting import _document

    started = time.perf_counter()
    asked, last = [], 0
    while True:
        members = list(Member.objects.filter(fund=fund, pk__gt=last).order_by("pk")[: settings.MAAS_BATCH_SIZE])
        if not members:
            break
        last = members[-1].pk
        documents = [
            _document(Transaction(member=m, transaction_id=f"R{m.pk}", event="opened", event_on=m.opened_on), fund)
            for m in members
        ]
        with transaction.atomic():
            asked.append(
                api.ask(
                    maas.SubmitRequest(transactions=documents), practice=practice, by=None, purpose=REFERENCE_PURPOSE
                ).pk
            )
    wait_settled(asked, worker, log)
    seconds = time.perf_counter() - started
    unanswered = Question.objects.filter(pk__in=asked).exclude(state=QuestionState.ANSWERED).first()
    if unanswered is not None:
        raise SystemExit(f"the reference's questions were not answered: {unanswered.failure}")
    return seconds


def signed_in(user: User) -> Client:
    """Django's test client signed in with both factors, its first page served (the web process is warm when a
    person opens the worklist)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    http = Client()
    http.force_login(user, backend="portal.backends.PracticeBackend")
    session = http.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    http.get("/super/worklist/")
    return http


def worklist_opened(http: Client) -> float:
    """The practice's worklist's first page through the real view, by a GET from the test client (the part of the
    load a person waits for last); returns its milliseconds."""
    started = time.perf_counter()
    response = http.get("/super/worklist/")
    elapsed = (time.perf_counter() - started) * 1000
    rows = response.content.count(b'data-testid="item-row"')
    if response.status_code != 200 or rows == 0:
        raise SystemExit(f"the worklist answered {response.status_code} with {rows} rows")
    return elapsed


def worklist_p99(user: User, pages: int = 200) -> tuple[float, float, int]:
    """The worklist's first pages, each timed: (median ms, p99 ms, open items)."""
    from superannuation import services
    from superannuation.models import WorkItem

    times, after = [], None
    for _ in range(pages):
        started = time.perf_counter()
        page = services.worklist(user=user, after=after, limit=50)
        [(i.member.display_name, i.fund.name, i.transaction.transaction_id, i.days_left()) for i in page.items]
        times.append((time.perf_counter() - started) * 1000)
        after = page.after  # None at the end: the first page again
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], WorkItem.objects.open().count()


def load(figures: Figures, data_dir: str) -> None:
    from django.conf import settings

    from ato_gateway import services as gateway
    from ato_gateway.models import MessageAttempt
    from superannuation import services
    from superannuation.models import Batch, BatchState, Meaning, Report, SuperFund, Transaction, WorkItem

    with running_sandbox(Path(data_dir), env=bench_env(), python=PY, workers=1) as url:
        ato = point_at_sandbox(url, data_dir)
        control = Control(url)
        control.post("today", {"today": "2026-11-30"})
        started = time.perf_counter()
        control.post("register", {"seed": 7, "taxpayers": PEOPLE, "agents": []}, timeout=1800)
        note(f"register of {PEOPLE} taxpayers generated in {time.perf_counter() - started:.1f} s")
        practice, admin, _ = make_practice_admin()
        gateway.credential_import(
            practice=practice,
            data=Path(data_dir, "demo-keystore.xml").read_bytes(),
            filename="demo-keystore.xml",
            password="demo-keystore-password",
            actor=admin,
        )
        usi = control.post("fund", {"abn": DEMO_ABN, "name": "Bench Members Super"})["usi"]
        fund = services.fund_create(user=admin, name="Bench Members Super", abn=DEMO_ABN, usi=usi)
        other = control.post("fund", {"abn": REFERENCE_ABN, "name": "Reference Super", "administrator_abn": DEMO_ABN})[
            "usi"
        ]
        reference_fund = SuperFund.objects.create(practice=practice, name="Reference", abn=REFERENCE_ABN, usi=other)
        started = time.perf_counter()
        make_members(control, fund, ACCOUNTS)
        make_members(control, reference_fund, ACCOUNTS)
        note(f"{ACCOUNTS} members in each of two funds written in {time.perf_counter() - started:.1f} s")

        # The software's registration with the ATO, which DEBUG off requires (development values here).
        registration = {name: getattr(settings, name) for name in ("SBR_PRODUCT_ID", "SBR_BMS_VENDOR", "SBR_BMS_NAME")}
        log = Path(data_dir, "worker.log")
        with open(log, "wb") as output:
            worker = subprocess.Popen(
                [PY, "manage.py", "rqworker", "high", "default", "low", "--with-scheduler"],
                cwd=ROOT,
                env=production_env(**ato, **registration),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        memory = TreeMemory(worker.pid)
        try:
            worker_ready(worker, log)
            memory.start()
            memory.phase = "reference"
            reference_seconds = reference(practice, reference_fund, worker, log)
            note(f"reference: {ACCOUNTS} accounts pushed, pulled and settled in {reference_seconds:.1f} s")

            http = signed_in(admin)
            memory.phase = "load"
            started = time.perf_counter()
            report = services.foundation_load_start(user=admin, fund=fund)
            outage_due = OUTAGE_SECONDS > 0
            while not Report.objects.filter(pk=report.pk, finished_at__isnull=False).exists():
                if worker.poll() is not None:
                    raise SystemExit(f"the worker died:\n{log.read_text()[-3000:]}")
                answered_batches = Batch.objects.filter(report=report, state=BatchState.ANSWERED).count()
                if outage_due and answered_batches * settings.MAAS_BATCH_SIZE * 3 >= ACCOUNTS:
                    control.post("faults", {"outage_seconds": OUTAGE_SECONDS})
                    note(f"an ATO outage of {OUTAGE_SECONDS:.0f} s begins after {answered_batches} batches answered")
                    outage_due = False
                time.sleep(0.2)
            opened_ms = worklist_opened(http)
            seconds = time.perf_counter() - started
            memory.phase = "idle"
        except BaseException:
            note(f"worker log (last lines):\n{log.read_text()[-3000:]}")
            raise
        finally:
            memory.stopping.set()
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=60)

        applied = requests.get(f"{url}/_control/stats", timeout=60).json()["applied"]

    batches = Batch.objects.filter(report=report)
    answered = batches.filter(state=BatchState.ANSWERED).count()
    message_ids = [m for m in batches.values_list("question__message__message_id", flat=True) if m]
    twice = sum(1 for m in message_ids if applied.get(m, 0) > 1)
    unapplied = sum(1 for m in message_ids if applied.get(m, 0) == 0)
    failed_attempts = MessageAttempt.objects.filter(message__question__in=batches.values("question")).exclude(
        outcome="ok"
    )
    note(f"stand-in ATO: {len(message_ids)} batches, {twice} applied twice, {unapplied} not applied")
    figures.add("super_load_attempts_not_ok", failed_attempts.count(), "attempts", 0)
    figures.add("super_load_batches_applied_twice", twice, "batches", 0)
    figures.goal("every batch applied exactly once at the ATO", twice == 0 and unapplied == 0)
    if OUTAGE_SECONDS > 0:
        figures.goal("the outage was met (attempts that failed)", failed_attempts.exists())
    counted = Transaction.objects.filter(batch__report=report).exclude(meaning="").count()
    corrected = Transaction.objects.filter(batch__report=report, meaning=Meaning.CORRECTED).count()
    items = WorkItem.objects.filter(fund=fund).count()
    note(f"load: {batches.count()} batches ({answered} answered), {counted} responses, {items} work items")
    for batch in batches.exclude(state=BatchState.ANSWERED)[:3]:
        note(f"batch {batch.pk}: {batch.state} {batch.refusal}")
    if counted != ACCOUNTS or answered != batches.count():
        raise SystemExit(f"the load ended with {counted} of {ACCOUNTS} responses applied")
    median_ms, p99_ms, open_items = worklist_p99(admin)

    peak = memory.peaks.get("load")
    peak_mb = (peak.rss_sum_kb if peak else 0) / 1024
    rate = ACCOUNTS / seconds
    figures.add("super_load_accounts", ACCOUNTS, "accounts", 0)
    figures.add("super_load_seconds", seconds, "s")
    figures.add("super_load_accounts_per_s", rate, "accounts/s")
    figures.add("super_reference_seconds", reference_seconds, "s")
    figures.add("super_load_over_reference", seconds / reference_seconds, "x", 2)
    figures.add("super_load_corrected_items", corrected, "items", 0)
    figures.add("super_load_worker_peak_rss_mb", peak_mb, "MB")
    figures.add("super_load_worklist_opened_ms", opened_ms, "ms")
    figures.add("super_worklist_open_items", open_items, "items", 0)
    figures.add("super_worklist_median_ms", median_ms, "ms", 2)
    figures.add("super_worklist_p99_ms", p99_ms, "ms", 2)
    figures.goal(
        f"the load at {rate:.0f} accounts/s would take {GOAL_ACCOUNTS / rate:.0f} s for {GOAL_ACCOUNTS} accounts "
        f"(<= {GOAL_SECONDS:.0f} s)",
        GOAL_ACCOUNTS / rate <= GOAL_SECONDS,
    )
    figures.goal(f"worker RSS <= {GOAL_MB:.0f} MB", peak_mb <= GOAL_MB)
    figures.goal(f"worklist p99 <= {GOAL_P99_MS:.0f} ms", p99_ms <= GOAL_P99_MS)


def main() -> int:
    figures = Figures()
    with bench_database(), tempfile.TemporaryDirectory() as data_dir:
        load(figures, data_dir)
    return figures.emit()


if __name__ == "__main__":
    raise SystemExit(main())
