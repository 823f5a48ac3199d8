"""The ATO inbox at size (issue 12): 50,000 clients and 1,000,000 letters in one practice, served by gunicorn with 2
sync workers on PostgreSQL and Redis (DEBUG off, as in production), driven from a separate process over 127.0.0.1
by an agent signed in with password and TOTP (the practice admin, who sees every letter).

The letters are what five years of nightly syncs and a practice at work leave, COPYed in (setup, not timed): the
stand-in ATO's six types in its proportions and titles, issued over five years, due by the rules table (some by the
date the letter states), mostly done or no action needed once old, new and in progress when recent, some overdue;
owners as the sync gives them (the staff of the client's groups, else the admins) with some reassigned; about one
in a hundred unmatched; most sent to the practice by the client's preference, a few of those not yet passed on;
each letter's search vector from its title and, for a stored document, a sentence of its text.

Scenarios, BENCH_SECONDS (10) each at BENCH_CONNECTIONS (8) connections, every request a 200: the first page, each
filter the inbox offers (client, type, state, owner, due this week, overdue, an issue date range, unmatched, not
yet passed on, a common search word and a rare one), the next pages 2-11 through each page's own "Older letters"
link, the 200th page reached by following the links, a member of staff restricted to two client groups (first page,
50th page and dashboard), and the admin's dashboard with its letters panel (counts and the most overdue). Each
scenario's page is checked once beforehand (rows listed, what it filters on shown).
Goal (issue): p99 <= 100 ms, and throughput >= 0.25 of a trivial view's (/healthz, one `SELECT 1` answered by the
first middleware) served by the same gunicorn in the same run, measured for half as long right before each scenario
(this shared machine's speed drifts by a factor of several within a run); both figures and their ratio are printed.

Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (8), BENCH_CLIENTS (50000), BENCH_LETTERS (1000000),
BENCH_LOADGEN=python to skip wrk, BENCH_KEEP_DB=1 to keep the database, BENCH_INBOX_REUSE=1 to measure a kept
database again (migrated first, not reloaded), BENCH_EXPLAIN=1 to print EXPLAIN ANALYZE of each scenario's page
query, BENCH_ENFORCE_GOALS=1 to exit non-zero on a missed goal, BENCH_ONLY=search,first_page to measure only the
scenarios whose name contains one of the words given (each page is still checked). Set BENCH_DATABASE_URL and
BENCH_REDIS_URL."""

from __future__ import annotations

import html
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BENCH_PASSWORD,
    PY,
    ROOT,
    Figures,
    bench_database,
    bench_env,
    free_port,
    load_average,
    note,
)
from bench._load import HOST, LoadResult, Req, load_tool, run_load
from bench.bench_client_list import build_register, describe, get, sign_in, start_gunicorn, stop

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50000"))
LETTERS = int(os.environ.get("BENCH_LETTERS", "1000000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
REF_SECONDS = max(3.0, SECONDS / 2)  # the reference's run before each scenario
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
REUSE = os.environ.get("BENCH_INBOX_REUSE", "") == "1"
EXPLAIN = os.environ.get("BENCH_EXPLAIN", "") == "1"
ONLY = [word for word in os.environ.get("BENCH_ONLY", "").split(",") if word]
GOAL_RATIO, GOAL_P99_MS = 0.25, 100.0
AGENTS = 8  # one agent looking after each of the register's eight groups
RESTRICTED = "benchrestricted"
ROW = re.compile(r'<tr data-testid="letter-row">')
NEXT = re.compile(r'<a href="\?([^"]*)" data-testid="next-page">')

# The stand-in ATO's types, shares and titles (ato_sandbox/register.py), and a sentence of each type's text.
KINDS = [("ASR", 0.40), ("NOA", 0.30), ("DEBT", 0.12), ("PPA", 0.08), ("AUD", 0.05), ("REV", 0.05)]
TITLES = {
    "NOA": ["Notice of assessment {year}", "Notice of amended assessment {year}"],
    "DEBT": [
        "Overdue account: payment required",
        "Debt reminder: amount overdue",
        "Final notice: overdue account",
        "Statement of account",
    ],
    "PPA": ["Payment plan confirmation", "Payment plan varied", "Payment plan default: action required"],
    "AUD": [
        "Audit: request for information",
        "Audit: notice of commencement",
        "Audit: position paper",
        "Audit: finalisation letter",
    ],
    "REV": [
        "Review: request for information",
        "Review: notice of proposed adjustment",
        "Review finalised: no further action",
    ],
}
TEXTS = {
    "NOA": ["Your refund will be paid into your nominated account.", "The amount payable is shown below."],
    "ASR": ["Lodge your activity statement by the due date.", "Your activity statement is overdue; lodge now."],
    "DEBT": ["General interest charge accrues daily on the unpaid amount.", "Contact us to discuss your options."],
    "PPA": ["Instalments are payable fortnightly by direct debit.", "A missed instalment cancels the plan."],
    "AUD": ["Please provide bank statements and invoices within 28 days.", "An auditor has been assigned."],
    "REV": ["We propose to adjust the amounts reported.", "No adjustment is required following our review."],
}
DUE_DAYS = {"NOA": 21, "ASR": 28, "DEBT": 14, "PPA": 14, "AUD": 28, "REV": 28}
MONTHS = ["March", "June", "September", "December"]
ID_LIKE = r"(?<!\d)(?:\d{8,}|\d{2,3}(?:[ -]\d{3}){2,3})(?!\d)"  # communications.models._ID_LIKE
COLUMNS = [
    "practice_id", "ato_id", "tfn_hash", "tfn_last3", "name", "client_id", "kind", "title", "account", "issued",
    "due", "due_source", "state", "note", "owner_id", "escalated_at", "closed_by_id", "closed_at", "document_state",
    "document_error", "document_asked", "created_at", "to_practice", "told_on", "told_how", "told_by_id", "search",
]  # fmt: skip


# --- data ------------------------------------------------------------------------------------------------------


def make_staff(practice_id: int) -> dict[str, int]:
    """An agent for each group (its staff), and a member of staff restricted to the first two groups, each with a
    confirmed TOTP device."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from clients.models import ClientGroup
    from portal.capabilities import Role
    from portal.models import User

    groups = list(ClientGroup.objects.filter(practice_id=practice_id).order_by("pk"))
    staff: dict[str, int] = {}
    for i, group in enumerate(groups[:AGENTS]):
        agent = User.objects.create_user(
            username=f"benchagent{i + 1}",
            password=BENCH_PASSWORD,
            practice_id=practice_id,
            role=Role.AGENT,
            first_name="Agent",
            last_name=f"Number {i + 1}",
        )
        group.staff.add(agent)
        staff[f"group{group.pk}"] = agent.pk
    restricted = User.objects.create_user(
        username=RESTRICTED,
        password=BENCH_PASSWORD,
        practice_id=practice_id,
        role=Role.AGENT,
        first_name="Restricted",
        last_name="Agent",
        restricted_to_groups=True,
    )
    TOTPDevice.objects.create(user=restricted, name="phone", confirmed=True)
    for group in groups[:2]:
        group.staff.add(restricted)
    return staff


def search_vectors(cursor: object) -> dict[tuple[str, str], str]:
    """The tsvector (as text) of each title with each of its type's sentences, and alone: what the sync and the
    document's arrival write (communications.models.search_vector), made by PostgreSQL once per combination."""
    titles = {kind: [t.format(year=y) for t in TITLES[kind] for y in range(2019, 2028)] for kind in TITLES}
    titles["ASR"] = [
        f"Activity statement {w}: {m} {y} quarter"
        for w in ("reminder", "overdue")
        for m in MONTHS
        for y in range(2019, 2028)
    ]
    pairs = [(title, text) for kind, ts in titles.items() for title in ts for text in ["", *TEXTS[kind]]]
    vectors = {}
    for title, text in pairs:
        cursor.execute(  # type: ignore[attr-defined]
            "SELECT (setweight(to_tsvector('english', regexp_replace(%s, %s, ' ', 'g')), 'A') || "
            "setweight(to_tsvector('english', regexp_replace(%s, %s, ' ', 'g')), 'B'))::text",
            [title, ID_LIKE, text, ID_LIKE],
        )
        vectors[(title, text)] = cursor.fetchone()[0]  # type: ignore[attr-defined]
    return vectors


def letter_rows(practice_id: int, admin_id: int, staff: dict[str, int], count: int) -> Iterator[tuple[object, ...]]:
    """The letters' rows; everything read from the database is read before the first row is made, since the rows
    are made while the connection is busy with their COPY."""
    from django.db import connection

    from clients.models import Client, ClientGroup

    rng = random.Random(20261)
    today = date.today()
    now = datetime.now().astimezone()
    clients = list(Client.objects.filter(practice_id=practice_id).values_list("pk", "tfn_hash", "display_name"))
    through = ClientGroup.clients.through
    group_of: dict[int, int] = {}
    for client_id, group_id in through.objects.values_list("client_id", "clientgroup_id").order_by("pk"):
        group_of.setdefault(client_id, group_id)
    owners = list(staff.values())
    with connection.cursor() as cursor:
        vectors = search_vectors(cursor)
    return _rows(practice_id, admin_id, staff, count, rng, today, now, clients, group_of, owners, vectors)


def _rows(
    practice_id: int,
    admin_id: int,
    staff: dict[str, int],
    count: int,
    rng: random.Random,
    today: date,
    now: datetime,
    clients: list[tuple[int, str, str]],
    group_of: dict[int, int],
    owners: list[int],
    vectors: dict[tuple[str, str], str],
) -> Iterator[tuple[object, ...]]:
    kinds, weights = zip(*KINDS, strict=True)
    span = 5 * 365
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        issued = today - timedelta(days=rng.randrange(span))
        year = issued.year if issued.month >= 7 else issued.year - 1
        if kind == "ASR":
            due_words = "overdue" if rng.random() < 0.1 else "reminder"
            title = f"Activity statement {due_words}: {rng.choice(MONTHS)} {min(max(year, 2019), 2027)} quarter"
        else:
            title = rng.choice(TITLES[kind]).format(year=min(max(year, 2019), 2027))
        unmatched = rng.random() < 0.01
        if unmatched:
            client_id, tfn_hash, name = None, f"{rng.getrandbits(128):032x}", f"STRANGER, Sam {n % 977}"
        else:
            client_id, tfn_hash, name = rng.choice(clients)
        age = (today - issued).days
        stored = age > 2 or rng.random() < 0.5
        text = rng.choice(TEXTS[kind]) if stored and rng.random() < 0.8 else ""
        from_letter = stored and rng.random() < 0.1
        due = issued + timedelta(days=DUE_DAYS[kind] + (rng.randint(-5, 10) if from_letter else 0))
        roll = rng.random()
        if age > 60:
            state = "done" if roll < 0.8 else "no_action" if roll < 0.98 else "in_progress" if roll < 0.99 else "new"
        else:
            state = "new" if roll < 0.45 else "in_progress" if roll < 0.7 else "done" if roll < 0.9 else "no_action"
        group = group_of.get(client_id) if client_id else None
        owner = staff.get(f"group{group}") if group else None
        if rng.random() < 0.05:
            owner = rng.choice(owners)  # reassigned by hand
        closed = state in ("done", "no_action")
        closed_at = now - timedelta(days=max(0, age - rng.randint(1, 20))) if closed else None
        to_practice = client_id is not None and rng.random() < 0.7
        told = to_practice and (rng.random() < (0.97 if age > 30 else 0.4))
        told_on = issued + timedelta(days=rng.randint(0, min(age, 14))) if told else None
        yield (
            practice_id,
            f"CC{n:09d}",
            tfn_hash,
            "",
            name[:250],
            client_id,
            kind,
            title,
            rng.choice(["ITX", "AS 001", "AS 002"]) if kind != "REV" else "",
            issued,
            due,
            "letter" if from_letter else "rule",
            state,
            "Dealt with; client informed." if state == "done" else "",
            owner,
            now - timedelta(days=age - DUE_DAYS[kind]) if state in ("new", "in_progress") and due < today else None,
            (owner or admin_id) if closed else None,
            closed_at,
            "stored" if stored else "waiting",
            "",
            True,
            now - timedelta(days=age),
            to_practice,
            told_on,
            rng.choice(["email", "phone", "portal"]) if told else "",
            (owner or admin_id) if told else None,
            vectors[(title, text)],
        )


def load_letters(practice_id: int, admin_id: int, staff: dict[str, int], count: int) -> None:
    """COPY the letters with the table's secondary indexes dropped, then build them again (faster than keeping
    them up to date a row at a time) and VACUUM ANALYZE, as a table in use would have statistics."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'communications_letter' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        rows = letter_rows(practice_id, admin_id, staff, count)
        with cursor.copy(f"COPY communications_letter ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        loaded = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE communications_letter")
    note(
        f"{count:,} letters COPYed in {loaded - started:.1f} s, indexes built and analysed in "
        f"{time.perf_counter() - loaded:.1f} s"
    )


@contextmanager
def kept_database() -> Iterator[None]:
    """The database a previous run kept (BENCH_KEEP_DB=1), migrated to this tree's migrations."""
    os.environ.update(bench_env())
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=bench_env(), check=True)
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE communications_letter")
    yield


# --- what each scenario asks ----------------------------------------------------------------------------------


def targets() -> dict[str, str]:
    """What the filters ask for, read from the data: a busy client, an agent who owns letters, a month long ago."""
    from django.db.models import Count

    from communications.models import Letter
    from portal.models import User

    admin = User.objects.get(username="benchadmin")
    assert admin.practice_id is not None
    client_id, client_name = (
        Letter.objects.filter(practice_id=admin.practice_id, client__isnull=False)
        .values("client_id")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("client_id", "client__display_name")[0]
    )
    agent = User.objects.get(username="benchagent3")
    return {
        "admin": admin.username,
        "client": str(client_id),
        "client_name": client_name,
        "agent": str(agent.pk),
        "agent_name": agent.display_name,
    }


def check_page(port: int, cookies: dict[str, str], path: str, *, rows: int = 50, contains: str = "") -> str:
    status, _, page = get(port, path, dict(cookies))
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}, not 200")
    found = len(ROW.findall(page))
    if (found != rows) if rows >= 0 else found == 0:
        raise SystemExit(f"GET {path} listed {found} letters, expected {rows if rows >= 0 else 'some'}")
    if contains and contains.lower() not in html.unescape(page).lower():
        raise SystemExit(f"GET {path} does not show {contains!r}")
    return page


def follow(port: int, cookies: dict[str, str], page: str, times: int) -> tuple[list[str], str]:
    """The paths of the next `times` pages through each page's own link, and the last page."""
    paths: list[str] = []
    for _ in range(times):
        found = NEXT.search(page)
        if not found:
            raise SystemExit(f"page {len(paths) + 1} of the inbox has no link to older letters")
        paths.append("/communications/?" + html.unescape(found.group(1)))
        page = check_page(port, cookies, paths[-1])
    return paths, page


def scenarios(
    port: int, cookies: dict[str, str], restricted: dict[str, str], ids: dict[str, str]
) -> dict[str, list[Req]]:
    """Each scenario's requests, each checked once with the admin's session (the restricted one with its own)."""
    today = date.today()
    long_ago = today.replace(day=1) - timedelta(days=2 * 365)
    filters = {
        "inbox_client": ({"client": ids["client"]}, ids["client_name"]),
        "inbox_type_review": ({"kind": "REV"}, "Review"),
        "inbox_state_in_progress": ({"state": "in_progress"}, "In progress"),
        "inbox_owner_agent": ({"owner": ids["agent"]}, ids["agent_name"]),
        "inbox_owner_admins_open": ({"owner": "admins", "state": "open"}, "Practice admins"),
        "inbox_due_this_week": ({"due": "week"}, ""),
        "inbox_overdue": ({"due": "overdue"}, "overdue"),
        "inbox_issued_range": (
            {"issued_from": long_ago.isoformat(), "issued_to": (long_ago + timedelta(days=30)).isoformat()},
            "",
        ),
        "inbox_unmatched": ({"unmatched": "on"}, "Unmatched"),
        "inbox_not_passed_on": ({"told": "no"}, "To pass on"),
        "inbox_search_common": ({"q": "overdue"}, "overdue"),
        "inbox_search_rare": ({"q": "position paper"}, "position paper"),
        "inbox_search_text": ({"q": "instalment fortnightly"}, "Payment plan"),
    }
    first = check_page(port, cookies, "/communications/")
    plan: dict[str, list[Req]] = {"inbox_first_page": [Req("/communications/")]}
    for name, (query, shown) in filters.items():
        path = "/communications/?" + urlencode(query)
        rows = -1 if name == "inbox_client" else 50
        check_page(port, cookies, path, rows=rows, contains=shown)
        plan[name] = [Req(path)]
    pages, _ = follow(port, cookies, first, 10)
    plan["inbox_next_pages"] = [Req(p) for p in pages]
    deep, _ = follow(port, cookies, first, 199)
    plan["inbox_page_200"] = [Req(deep[-1])]
    overdue = check_page(port, cookies, plan["inbox_overdue"][0].path)
    plan["inbox_overdue_page_20"] = [Req(follow(port, cookies, overdue, 19)[0][-1])]
    own = check_page(port, restricted, "/communications/")
    plan["restricted_first_page"] = [Req("/communications/")]
    plan["restricted_page_50"] = [Req(follow(port, restricted, own, 49)[0][-1])]
    # The dashboard's letters panel counts and lists the letters due this week and overdue, the user's and the
    # practice's, out of the same million.
    check_page(port, cookies, "/", rows=0, contains="overdue")
    plan["dashboard"] = [Req("/")]
    check_page(port, restricted, "/", rows=0, contains="overdue")
    plan["restricted_dashboard"] = [Req("/")]
    return plan


def explain(plan: dict[str, list[Req]], ids: dict[str, str]) -> None:
    """EXPLAIN ANALYZE of each scenario's page query, built by the view's own code for the person who asks."""
    from urllib.parse import parse_qs, urlsplit

    from django.db import connection
    from django.http import QueryDict
    from django.test.utils import CaptureQueriesContext

    from communications import views
    from communications.models import Letter
    from portal.models import User

    for name, reqs in plan.items():
        if name.endswith("dashboard"):  # not the inbox's page query: its counts are its own
            continue
        user = User.objects.get(username=RESTRICTED if name.startswith("restricted") else ids["admin"])
        query = QueryDict(urlsplit(reqs[-1].path).query)
        form = views.FilterForm(query or None, owners=views._owners(user))
        letters = Letter.objects.visible_to(user).select_related("client", "owner").order_by("-issued", "-pk")
        if form.is_valid():
            letters = form.apply(letters, user)
        # Each query the page takes (a search takes several, communications.search), as the view asks them.
        with CaptureQueriesContext(connection) as asked:
            views._after(letters, query.get("after", "")).newest(views.PAGE + 1, views.ROW_FIELDS)
        lines = []
        for step in asked.captured_queries:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {step['sql']}")
                lines += ["--", *(r[0] for r in cursor.fetchall())]
        note(f"EXPLAIN {name} ({parse_qs(urlsplit(reqs[-1].path).query)}):\n#   " + "\n#   ".join(lines))


# --- the run ---------------------------------------------------------------------------------------------------


def main() -> int:
    figures = Figures()
    failed = []
    database = kept_database() if REUSE else bench_database()
    with database, tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        from django.db import connections

        from portal.models import User

        if not REUSE:
            build_register(CLIENTS)
            admin = User.objects.get(username="benchadmin")
            assert admin.practice_id is not None
            staff = make_staff(admin.practice_id)
            load_letters(admin.practice_id, admin.pk, staff, LETTERS)
        ids = targets()
        connections.close_all()
        port = free_port()
        log = Path(tmp) / "gunicorn.log"
        server = start_gunicorn(port, log)
        try:
            note(f"gunicorn portal.wsgi -w 2 (sync) on {HOST}:{port}; Django DEBUG off")
            note(f"load: {load_tool()}, {CONNECTIONS} connections, {SECONDS:.0f} s per scenario, {os.cpu_count()} CPUs")
            cookies = sign_in(port, ids["admin"])
            restricted = sign_in(port, RESTRICTED)
            every = scenarios(port, cookies, restricted, ids)
            plan = {name: reqs for name, reqs in every.items() if not ONLY or any(word in name for word in ONLY)}
            if EXPLAIN:
                explain(plan, ids)

            def cookie_of(jar: dict[str, str]) -> str:
                return "; ".join(f"{k}={v}" for k, v in jar.items() if k in ("sessionid", "csrftoken"))

            run_load(port, every["inbox_next_pages"], cookie_of(cookies), seconds=3, connections=CONNECTIONS)  # warm-up
            trivial = run_load(port, [Req("/healthz")], cookie_of(cookies), seconds=SECONDS, connections=CONNECTIONS)
            describe("trivial_view", trivial)
            figures.add("trivial_view_rps", trivial.rps, "req/s")
            results: dict[str, LoadResult] = {}
            for name, reqs in plan.items():
                jar = restricted if name.startswith("restricted") else cookies
                # The reference again right before each scenario: this machine's speed drifts within a run.
                healthz = [Req("/healthz")]
                reference = run_load(port, healthz, cookie_of(jar), seconds=REF_SECONDS, connections=CONNECTIONS)
                result = run_load(port, reqs, cookie_of(jar), seconds=SECONDS, connections=CONNECTIONS)
                results[name] = result
                describe(name, result)
                if result.failed:
                    failed.append(f"{name}: {result.errors} socket errors, {result.non200} non-200 responses")
                ratio = result.rps / reference.rps
                figures.add(f"{name}_rps", result.rps, "req/s")
                figures.add(f"{name}_p50", result.p50_ms, "ms")
                figures.add(f"{name}_p99", result.p99_ms, "ms")
                figures.add(f"{name}_trivial_view_rps", reference.rps, "req/s")
                figures.add(f"{name}_to_trivial_view_ratio", ratio, "x", 3)
                figures.goal(
                    f"{name} p99 <= {GOAL_P99_MS:.0f} ms and >= {GOAL_RATIO} of the trivial view's req/s "
                    f"(p99 {result.p99_ms:.1f} ms, {result.rps:.1f} req/s, {ratio:.3f} of {reference.rps:.1f} "
                    f"measured just before; load average {os.getloadavg()[0]:.2f})",
                    result.p99_ms <= GOAL_P99_MS and ratio >= GOAL_RATIO,
                )
            after = run_load(port, [Req("/healthz")], cookie_of(cookies), seconds=SECONDS, connections=CONNECTIONS)
            describe("trivial_view_again", after)
            figures.add("trivial_view_again_rps", after.rps, "req/s")
            note(f"load average at the end: {load_average()}")
        finally:
            stop(server)
            problems = [line for line in log.read_text().splitlines() if "Traceback" in line or "ERROR" in line]
            if problems:
                note(f"gunicorn log has {len(problems)} error line(s); first: {problems[0]}")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    status = figures.emit()
    return 1 if failed else status


if __name__ == "__main__":
    sys.exit(main())
