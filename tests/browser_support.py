"""Browser support shared by every Playwright test: Debian's Chromium, isolated contexts, signing in with a TOTP
code, and a real `manage.py rqworker` subprocess on the test database (optionally with the stand-in ATO's
settings and RQ's scheduler, for flows that go to the ATO).

Every page state a browser test reaches is checked for accessibility: axe-core (WCAG 2.1 A and AA rules) and a
check that every aria-describedby, aria-labelledby and aria-controls names an element that exists. Each page load
and each htmx swap hands its document to the test, which checks them all at teardown; a serious or critical
finding, or a broken reference, fails the test."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from django.conf import settings
from django.db import connection
from django_otp.oath import totp
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from portal.models import Practice, User
from tests.conftest import PASSWORD, current_code, make_practice

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BASE_DIR = Path(settings.BASE_DIR)
TOTP_STEP = 30

# --- accessibility checks of every page state -------------------------------------------------------------------

A11Y_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
A11Y_FAILING_IMPACTS = ("serious", "critical")

# Runs in every page (top frame only): after DOMContentLoaded (and the page's own scripts' handlers of it) and after
# every htmx swap, the page hands its document as it then is, with its viewport, to the test. The test checks each
# state afterwards in a page of its own, because a page that is navigating away can neither be evaluated nor report
# back: checked in place, every state a test leaves at once would be lost or would hold the test up.
_A11Y_SNAPSHOT = """
(() => {
  if (window.top !== window || window.__a11yInstalled) return;
  window.__a11yInstalled = true;
  function snapshot() {
    window.__a11ySnapshot({
      url: location.href, width: window.innerWidth, height: window.innerHeight,
      html: "<!doctype html>" + document.documentElement.outerHTML,
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    setTimeout(snapshot, 0);
    document.body.addEventListener("htmx:afterSettle", () => setTimeout(snapshot, 0));
  });
})();
"""

# Checks the document in the checker page: axe-core's rules, and that every idref names an element that exists.
_A11Y_CHECK = """
async () => {
  const broken = [];
  for (const attr of ["aria-describedby", "aria-labelledby", "aria-controls"]) {
    for (const el of document.querySelectorAll("[" + attr + "]")) {
      for (const id of el.getAttribute(attr).split(/\\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) broken.push(attr + '="' + id + '" on ' + el.outerHTML.slice(0, 160));
      }
    }
  }
  const results = await axe.run(document, {runOnly: {type: "tag", values: __TAGS__}, resultTypes: ["violations"]});
  const violations = results.violations.filter(v => __IMPACTS__.includes(v.impact)).map(v => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.html.slice(0, 200)),
  }));
  return {title: document.title, violations, broken};
}
""".replace("__TAGS__", str(A11Y_TAGS)).replace("__IMPACTS__", str(list(A11Y_FAILING_IMPACTS)))

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)


@dataclass
class A11yFinding:
    url: str
    title: str
    violations: list[dict[str, Any]]
    broken: list[str]

    def describe(self) -> str:
        lines = [f"{self.url} ({self.title!r}):"]
        for v in self.violations:
            lines.append(f"  {v['impact']} {v['id']}: {v['help']}")
            lines += [f"    {node}" for node in v["nodes"]]
        lines += [f"  broken reference: {ref}" for ref in self.broken]
        return "\n".join(lines)


@dataclass
class A11yLog:
    """The page states one browser context went through, and what checking them found (`check`)."""

    snapshots: list[dict[str, Any]] = field(default_factory=list)
    checked: list[A11yFinding] = field(default_factory=list)

    def take(self, source: dict[str, Any], snapshot: dict[str, Any]) -> None:
        if not self.snapshots or self.snapshots[-1]["html"] != snapshot["html"]:  # a poll that brought nothing new
            self.snapshots.append(snapshot)

    def check(self, context: BrowserContext) -> list[A11yFinding]:
        """Checks every state not checked yet, in a page of the same context (its cookies fetch the stylesheet),
        the state's scripts taken out so that it only sits there to be looked at. Returns the failing ones."""
        pending, self.snapshots = self.snapshots, []
        if pending:
            checker = context.new_page()
            try:
                for snap in pending:
                    checker.set_viewport_size({"width": snap["width"], "height": snap["height"]})
                    html = _SCRIPT.sub("", snap["html"]).replace("<head>", f'<head><base href="{snap["url"]}">', 1)
                    checker.set_content(html, wait_until="load")
                    checker.evaluate(AXE_SCRIPT)
                    result = checker.evaluate(_A11Y_CHECK)
                    self.checked.append(
                        A11yFinding(snap["url"], result["title"], result["violations"], result["broken"])
                    )
            finally:
                checker.close()
        return self.failures

    @property
    def failures(self) -> list[A11yFinding]:
        return [f for f in self.checked if f.violations or f.broken]


def watch_accessibility(context: BrowserContext) -> A11yLog:
    log = A11yLog()
    context.expose_binding("__a11ySnapshot", log.take)
    context.add_init_script(_A11Y_SNAPSHOT)
    return log


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed: apt-get install chromium (.ci/run does this).")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    """Makes isolated browser contexts (separate cookie jars); all are closed at teardown."""
    made: list[tuple[BrowserContext, A11yLog]] = []

    def make() -> BrowserContext:
        context = browser.new_context(locale="en-AU", timezone_id="Australia/Sydney")
        context.set_default_timeout(10_000)
        made.append((context, watch_accessibility(context)))
        return context

    make.a11y = made  # type: ignore[attr-defined]  # for tests that look at what was checked
    yield make
    failures: list[A11yFinding] = []
    for context, log in made:
        failures += log.check(context)
        context.close()
    if failures:
        pytest.fail("Accessibility: serious or critical findings\n" + "\n".join(f.describe() for f in failures))


@pytest.fixture
def page(new_context: Any) -> Page:
    page: Page = new_context().new_page()
    return page


@pytest.fixture
def base_url(live_server: Any) -> str:
    return str(live_server.url)


@pytest.fixture
def firm(live_server: Any) -> Practice:
    """A practice created once the live server is up (committed: the tests are transactional)."""
    return make_practice()


@pytest.fixture
def rq_worker(live_server: Any, tmp_path: Path) -> Iterator[Any]:
    """Returns a function that starts a real `manage.py rqworker` subprocess on the *test* database and the
    test Redis. Killed (by its own pid) at teardown, before the test database is flushed."""
    if connection.vendor != "postgresql":
        pytest.fail("The worker subprocess needs a database it can share: run the suite on PostgreSQL (make test).")
    log_path = tmp_path / "rqworker.log"
    procs: list[subprocess.Popen[bytes]] = []

    def start(env_extra: dict[str, str] | None = None, scheduler: bool = False) -> subprocess.Popen[bytes]:
        test_db = settings.DATABASES["default"]["NAME"]
        assert str(test_db).startswith("test_"), test_db
        url = urlsplit(os.environ.get("DATABASE_URL", "postgres:///"))._replace(path=f"/{test_db}").geturl()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_DEBUG": "1",
            "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            **(env_extra or {}),
        }
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "high", "default", "low"]
                + (["--with-scheduler"] if scheduler else []),
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        return proc

    start.log_path = log_path  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


# --- helpers ----------------------------------------------------------------------------------------------------


def at_dashboard(page: Page, base_url: str) -> None:
    expect(page).to_have_url(f"{base_url}/")
    expect(page).to_have_title("Dashboard — Practice Portal")
    expect(nav(page).get_by_role("link", name="Dashboard")).to_be_visible()


def sign_in(page: Page, base_url: str, username: str, code: str | None = None, password: str = PASSWORD) -> None:
    """Practice code and password, then the second factor at /mfa/verify/ (the current TOTP code of the user's
    device unless `code` is given), ending at the dashboard."""
    page.goto(f"{base_url}/login/")
    page.get_by_label("Practice code").fill(practice_code_of(username))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{base_url}/mfa/verify/")
    if code is None:
        code = current_code(User.objects.get(username=username))
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Verify").click()
    at_dashboard(page, base_url)


def practice_code_of(username: str) -> str:
    """The practice code to sign in with, for a test's user (tests give each username to one practice)."""
    return User.objects.select_related("practice").get(username=username).tenant.code


def sign_out(page: Page, base_url: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base_url}/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def enrol_authenticator(page: Page, base_url: str) -> tuple[str, list[str]]:
    """On /mfa/enrol/: read the hand-entry key, answer with its current code, collect the backup codes and
    continue to the dashboard. Returns the secret (as hex, as the device stores it) and the backup codes."""
    expect(page).to_have_url(f"{base_url}/mfa/enrol/")
    qr = page.get_by_label("QR code for your authenticator app")
    expect(qr.locator("svg")).to_be_visible()  # drawn inline, not fetched from anywhere
    assert "otpauth" not in page.content()  # the provisioning URI itself is not in the HTML
    page.get_by_text("Can't scan? Enter the key by hand").click()
    secret_box = page.locator("code.secret")
    expect(secret_box).to_be_visible()
    typed = secret_box.inner_text().strip()
    # Shown in base32, groups of four, as authenticator apps expect a key typed by hand.
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{4})*", typed), typed
    key = base64.b32decode(typed.replace(" ", ""))
    assert len(key) == 20, typed
    secret = key.hex()
    page.get_by_label("Code", exact=True).fill(f"{totp(key):06d}")
    page.get_by_role("button", name="Confirm").click()
    items = page.locator("[data-testid=backup-codes] li")
    expect(items).to_have_count(10)
    codes = [c.strip() for c in items.all_inner_texts()]
    assert len(set(codes)) == 10 and all(codes), codes
    page.get_by_role("link", name="I have saved them, continue").click()
    at_dashboard(page, base_url)
    return secret, codes
