"""Client list under load: 50,000 clients in one practice, served by gunicorn with 2 sync workers on PostgreSQL
and Redis, driven from a separate process (wrk, else a Python generator) over 127.0.0.1.

Scenarios, ~10 s each at BENCH_CONNECTIONS (8) concurrent connections: the first page of /clients/, pages 2-11
through the `after=` cursor of each page's next link, a page half-way down the register (cursor of client
25,000), name search (q=smi), TFN search and ABN search, and a mix of them (35% first page, 20% paging, 5% deep
page, 20% name, 10% TFN, 10% ABN search). Searches post the list's search form (q + CSRF token) as the portal does,
so that a TFN never lands in a URL; each answers the full page. Every request must answer 200, and each
scenario's page is checked once beforehand (rows listed, the client searched for shown). Goal (issue): >= 300 req/s
and p99 <= 100 ms on 2 workers.

Each scenario's throughput is printed beside a trivial view's served by the same gunicorn in the same run, and the
ratio: /healthz, one `SELECT 1` answered by the first middleware, measures what this machine, gunicorn and the
WSGI path give at this hour, which varies here by a factor of two or more.

Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (8), BENCH_CLIENTS (50000), BENCH_LOADGEN=python to skip wrk,
BENCH_SERVER_DEBUG=1 to serve with Django DEBUG on (by default it is off, as in production, with the development
secrets passed explicitly),
BENCH_KEEP_DB=1 to keep the portal_bench database, BENCH_ENFORCE_GOALS=1 to exit non-zero on a missed goal."""

from __future__ import annotations

import html
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BENCH_PASSWORD,
    ROOT,
    Figures,
    bench_database,
    bench_env,
    free_port,
    make_practice_admin,
    note,
    production_env,
)
from bench._load import HOST, LoadResult, Req, load_tool, run_load

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
SERVER_DEBUG = os.environ.get("BENCH_SERVER_DEBUG", "0") == "1"
GOAL_RPS, GOAL_P99_MS = 300.0, 100.0
GROUPS = ["Payroll", "BAS quarterly", "BAS monthly", "Individuals", "Trusts", "SMSF", "Property", "Partner review"]
ROW_LINK = re.compile(r'<tr><td><a href="/clients/\d+/">')
NEXT_LINK = re.compile(r'<a href="([^"]*after=[^"]*)" rel="next">')


# --- data ------------------------------------------------------------------------------------------------------


def build_register(count: int) -> dict[str, str]:
    """The practice, its admin, `count` clients (some in groups); returns identifiers to search for."""
    from django.db import connection

    from clients.csv_io import validate_row
    from clients.models import Client, ClientGroup
    from clients.services import _client_from_row
    from clients.testdata import make_client_rows

    started = time.perf_counter()
    practice, user, _device = make_practice_admin(password=BENCH_PASSWORD)
    rows = make_client_rows(count, seed=20260)
    built = []
    for i, raw in enumerate(rows):
        row, errors = validate_row(i + 2, raw)
        if row is None:
            raise SystemExit(f"generated row {i + 2} is invalid: {errors}")
        built.append(_client_from_row(practice, row, user))
    Client.objects.bulk_create(built, batch_size=2000)
    # Groups as a practice uses them: ~40% of clients in one group, ~10% in two.
    groups = [ClientGroup.objects.create(practice=practice, name=name) for name in GROUPS]
    through = ClientGroup.clients.through
    links = []
    for i, client in enumerate(built):
        first = i % len(groups)
        if i % 10 < 4:
            links.append(through(client_id=client.pk, clientgroup_id=groups[first].pk))
        if i % 10 == 0:
            second = (first + 1 + (i // 10) % (len(groups) - 1)) % len(groups)
            links.append(through(client_id=client.pk, clientgroup_id=groups[second].pk))
    through.objects.bulk_create(links, batch_size=5000)
    with connection.cursor() as cursor:
        # A register that has been in use has statistics; a freshly bulk-loaded one would not yet.
        cursor.execute("VACUUM ANALYZE clients_client")
        cursor.execute("VACUUM ANALYZE clients_clientgroup_clients")
    assert Client.objects.filter(practice=practice).count() == count
    note(f"{count:,} clients and {len(links):,} group links created in {time.perf_counter() - started:.1f} s")

    from clients.views import _cursor

    middle = Client.objects.filter(practice=practice).order_by("sort_name", "pk")[count // 2]
    return {
        "username": user.username,
        "tfn": rows[count // 3]["tfn"],
        "tfn_name": built[count // 3].display_name,
        "abn": rows[(2 * count) // 3]["abn"],
        "abn_name": built[(2 * count) // 3].display_name,
        "deep_cursor": _cursor(middle),
    }


# --- the server ------------------------------------------------------------------------------------------------


def server_env() -> dict[str, str]:
    if SERVER_DEBUG:
        return bench_env()
    return production_env(DJANGO_ALLOWED_HOSTS=HOST)


def start_gunicorn(port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "portal.wsgi",
        "-w",
        "2",
        "-b",
        f"{HOST}:{port}",
        "--chdir",
        str(ROOT),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if get(port, "/healthz")[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"gunicorn did not answer /healthz within 30 s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- HTTP helpers ----------------------------------------------------------------------------------------------


def get(port: int, path: str, cookies: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    return request(port, "GET", path, cookies=cookies)


def request(
    port: int, method: str, path: str, *, cookies: dict[str, str] | None = None, form: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"User-Agent": "portal-bench"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        if cookies is not None:
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    cookies[key.strip()] = rest.split(";", 1)[0]
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text
    finally:
        conn.close()


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not found:
        raise SystemExit("no CSRF token on the page")
    return found.group(1)


def sign_in(port: int, username: str) -> dict[str, str]:
    """Sign in over HTTP as a person does: password, then the current TOTP code. Returns the cookies (the
    session and the CSRF cookie)."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    cookies: dict[str, str] = {}
    status, _, page = get(port, "/login/", cookies)
    assert status == 200, f"GET /login/ answered {status}"
    from portal.models import User

    practice = User.objects.select_related("practice").get(username=username).tenant.code
    form = {
        "practice": practice,
        "username": username,
        "password": BENCH_PASSWORD,
        "csrfmiddlewaretoken": csrf_token(page),
    }
    status, headers, _ = request(port, "POST", "/login/", cookies=cookies, form=form)
    assert status == 302 and headers["location"] == "/mfa/verify/", f"password step answered {status}"
    status, _, page = get(port, "/mfa/verify/", cookies)
    assert status == 200, f"GET /mfa/verify/ answered {status}"
    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    form = {"token": code, "csrfmiddlewaretoken": csrf_token(page)}
    status, headers, page = request(port, "POST", "/mfa/verify/", cookies=cookies, form=form)
    if status != 302 or headers.get("location") != "/":
        errors = re.findall(r'<ul class="errorlist[^"]*">(.*?)</ul>', page, re.S)
        raise SystemExit(f"the MFA step answered {status}: {html.unescape(' '.join(errors)) or page[:300]}")
    return cookies


def check_page(port: int, cookies: dict[str, str], req: Req, *, rows: int, contains: str = "") -> str:
    """One request before the load: the page must be a 200 with the expected rows, not a redirect or an error."""
    form = dict(parse_qsl(req.body)) if req.method == "POST" else None
    status, _, page = request(port, req.method, req.path, cookies=dict(cookies), form=form)
    what = f"{req.method} {req.path} {req.body.split('&csrf')[0]}"
    if status != 200:
        raise SystemExit(f"{what} answered {status}, not 200")
    found = len(ROW_LINK.findall(page))
    if found != rows:
        raise SystemExit(f"{what} listed {found} clients, expected {rows}")
    if contains and contains.lower() not in page.lower():
        raise SystemExit(f"{what} does not show {contains!r}")
    return page


def next_link(page: str) -> str:
    found = NEXT_LINK.search(page)
    if not found:
        raise SystemExit("the client list has no next-page link")
    return "/clients/" + html.unescape(found.group(1))


# --- the run ---------------------------------------------------------------------------------------------------


def scenarios(port: int, cookies: dict[str, str], ids: dict[str, str]) -> dict[str, list[Req]]:
    """The requests of each scenario, each checked once. Paging follows the pages' own next links (GET with
    `after=`); searches post the page's search form, as the portal does so that a TFN never lands in a URL."""
    from django.conf import settings

    size = settings.CLIENT_LIST_PAGE_SIZE
    first = check_page(port, cookies, Req("/clients/"), rows=size)
    token = csrf_token(first)
    pages, page = [], first
    for _ in range(10):  # pages 2-11, each through the previous page's next link
        req = Req(next_link(page))
        page = check_page(port, cookies, req, rows=size)
        pages.append(req)
    deep = Req("/clients/?" + urlencode({"after": ids["deep_cursor"]}))
    check_page(port, cookies, deep, rows=size)

    def search(q: str) -> Req:
        return Req("/clients/", method="POST", body=urlencode({"q": q, "group": "", "csrfmiddlewaretoken": token}))

    name, tfn, abn = search("smi"), search(ids["tfn"]), search(ids["abn"])
    check_page(port, cookies, name, rows=size, contains="smith")
    check_page(port, cookies, tfn, rows=1, contains=html.escape(ids["tfn_name"]))
    check_page(port, cookies, abn, rows=1, contains=html.escape(ids["abn_name"]))
    weighted = [Req(r.path, w, r.method, r.body) for r, w in ((name, 20), (tfn, 10), (abn, 10), (deep, 5))]
    return {
        "client_list": [Req("/clients/")],
        "client_list_next_pages": pages,
        "client_list_deep_page": [deep],
        "client_search_name": [name],
        "client_search_tfn": [tfn],
        "client_search_abn": [abn],
        # A working day at the register: mostly the first page and searches, some paging.
        "client_list_mix": [Req("/clients/", 35), *(Req(r.path, 2) for r in pages), *weighted],
    }


def describe(name: str, result: LoadResult) -> None:
    note(
        f"{name}: {result.requests} requests in {result.seconds:.1f} s, {result.rps:.1f} req/s, "
        f"p50 {result.p50_ms:.1f} ms, p90 {result.p90_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"max {result.max_ms:.1f} ms, errors {result.errors}, non-200 {result.non200}"
    )


def main() -> int:
    figures = Figures()
    failed = []
    with bench_database(), tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        from django.db import connections

        ids = build_register(CLIENTS)
        connections.close_all()
        port = free_port()
        log = Path(tmp) / "gunicorn.log"
        server = start_gunicorn(port, log)
        try:
            note(
                f"gunicorn portal.wsgi -w 2 (sync) on {HOST}:{port}; Django DEBUG={'on' if SERVER_DEBUG else 'off'}"
                + (
                    " (DJANGO_DEBUG=1 for the development secrets; no debug toolbar is installed, but Django's DEBUG "
                    "also logs every SQL query and switches whitenoise to finders with autorefresh; "
                    "by default the server runs with DEBUG off)"
                    if SERVER_DEBUG
                    else ""
                )
            )
            note(f"load: {load_tool()}, {CONNECTIONS} connections, {SECONDS:.0f} s per scenario, {os.cpu_count()} CPUs")
            cookies = sign_in(port, ids["username"])
            cookie = "; ".join(f"{k}={v}" for k, v in cookies.items() if k in ("sessionid", "csrftoken"))
            plan = scenarios(port, cookies, ids)
            run_load(port, plan["client_list_mix"], cookie, seconds=3, connections=CONNECTIONS)  # warm-up
            trivial = run_load(port, [Req("/healthz")], cookie, seconds=SECONDS, connections=CONNECTIONS)
            describe("trivial_view", trivial)
            figures.add("trivial_view_rps", trivial.rps, "req/s")
            for name, reqs in plan.items():
                result = run_load(port, reqs, cookie, seconds=SECONDS, connections=CONNECTIONS)
                describe(name, result)
                if result.failed:
                    failed.append(f"{name}: {result.errors} socket errors, {result.non200} non-200 responses")
                figures.add(f"{name}_rps", result.rps, "req/s")
                figures.add(f"{name}_p99", result.p99_ms, "ms")
                figures.add(f"{name}_to_trivial_view_ratio", result.rps / trivial.rps, "x", 3)
                figures.goal(
                    f"{name} >= {GOAL_RPS:.0f} req/s and p99 <= {GOAL_P99_MS:.0f} ms "
                    f"({result.rps:.1f} req/s, p99 {result.p99_ms:.1f} ms)",
                    result.rps >= GOAL_RPS and result.p99_ms <= GOAL_P99_MS,
                )
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
