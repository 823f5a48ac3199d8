"""Accessibility in real Chromium: the main flows with the keyboard alone, asserting where focus lands after every
update and what the live region says; every main page at 320 px wide without sideways scrolling; form errors and
help texts tied to their fields; the warning before the idle sign-out. (axe-core itself runs on every page state of
every browser test: tests/browser_support.py.)"""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
import time
from typing import Any

import pytest
from django.db import transaction
from playwright.sync_api import Locator, Page, expect

from ato_gateway import services as gateway_services
from clients.models import Client, ClientGroup
from clients.tfn import tfn_lookup_hash
from portal.capabilities import Role
from portal.models import Practice, User
from tests.ato_fixtures import AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import A11yLog, sign_in
from tests.conftest import PASSWORD, add_clients, current_code, make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser

ANSWER_MS = 60_000  # the worker subprocess asks the stand-in ATO; generous for a busy machine


def live_region(page: Page) -> Locator:
    return page.locator("#live-region")


def tab_to(page: Page, target: Locator, most: int) -> int:
    """Presses Tab until `target` has focus, at most `most` times; returns how many it took."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return presses
    focused = page.evaluate("document.activeElement && document.activeElement.outerHTML.slice(0, 200)")
    raise AssertionError(f"{most} Tabs did not reach the target; focus is on {focused}")


def skip_to_content(page: Page) -> None:
    """From a freshly loaded page: the first Tab reaches the skip link, and it puts focus on the content."""
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()


# --- the accessibility check itself -----------------------------------------------------------------------------


def test_the_page_check_reports_axe_violations_and_broken_references(new_context: Any) -> None:
    context = new_context()
    page: Page = context.new_page()
    log: A11yLog = new_context.a11y[-1][1]
    html = (
        "<!doctype html><html lang='en'><head><title>t</title></head><body><main><h1>x</h1>"
        "<img src='data:,'><input aria-describedby='nowhere' aria-label='a'></main></body></html>"
    )
    context.route("http://a11y.test/", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto("http://a11y.test/")
    deadline = time.monotonic() + 10
    while not log.snapshots and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    [finding] = log.check(context)
    assert "image-alt" in [v["id"] for v in finding.violations]
    assert finding.broken == ['aria-describedby="nowhere" on <input aria-describedby="nowhere" aria-label="a">']
    log.checked.clear()  # seen: this page is meant to fail


# --- keyboard-only flows ----------------------------------------------------------------------------------------


def test_keyboard_sign_in_with_errors_summarised_and_focused(page: Page, base_url: str, firm: Practice) -> None:
    user = make_user(firm, "kim", Role.AGENT)
    page.goto(f"{base_url}/login/")
    expect(page).to_have_title("Sign in — Practice Portal")
    practice = page.get_by_label("Practice code")
    expect(practice).to_be_focused()
    expect(page.get_by_label("Username")).to_have_attribute("autocomplete", "username")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("autocomplete", "current-password")
    page.keyboard.type(firm.code)
    page.keyboard.press("Tab")
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    page.keyboard.type("not-the-password")
    page.keyboard.press("Enter")

    # The failure: its summary is announced (role=alert) and has focus; the next Tab goes back to the fields.
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("The practice code, username or password is not right.")
    tab_to(page, page.get_by_label("Password", exact=True), 3)
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    expect(page).to_have_title("Enter your code — Sign in — Practice Portal")
    code = page.get_by_label("Code", exact=True)
    expect(code).to_be_focused()
    page.keyboard.type("000000" if current_code(user) != "000000" else "111111")
    page.keyboard.press("Enter")
    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_be_focused()
    # The summary links to the field, which says why it is wrong (its error is its description).
    link = summary.get_by_role("link", name=re.compile("^Code: "))
    tab_to(page, link, 1)
    page.keyboard.press("Enter")
    expect(code).to_be_focused()
    expect(code).to_have_accessible_description(re.compile(r"\S"))
    page.keyboard.press("Control+A")
    page.wait_for_timeout(2_000)  # django-otp refuses any code for a second after a wrong one
    page.keyboard.type(current_code(user))
    page.keyboard.press("Enter")
    expect(page).to_have_title("Dashboard — Practice Portal")

    # On the dashboard the skip link passes the header in one step.
    skip_to_content(page)


def test_keyboard_search_and_open_a_client(page: Page, base_url: str, firm: Practice) -> None:
    make_user(firm, "kim", Role.AGENT)
    clients = add_clients(firm, 12)
    target = next(
        c for c in clients if c.organisation_name and sum(c.organisation_name in o.display_name for o in clients) == 1
    )
    sign_in(page, base_url, "kim")
    page.goto(f"{base_url}/clients/")
    expect(page).to_have_title("Clients — Practice Portal")
    skip_to_content(page)
    search = page.get_by_label("Search")
    tab_to(page, search, 4)
    page.keyboard.type(target.organisation_name)

    # The results arrive in place: their count is announced and focus stays in the search box.
    expect(page.locator("#client-rows tbody tr")).to_have_count(1)
    expect(live_region(page)).to_have_text("1 client found.")
    expect(search).to_be_focused()
    result = page.get_by_role("link", name=target.organisation_name)
    tab_to(page, result, 4)
    page.keyboard.press("Enter")
    expect(page).to_have_title(f"Overview — {target.display_name} — Clients — Practice Portal")
    expect(page.get_by_role("heading", level=1)).to_have_text(target.display_name)


def test_keyboard_reveal_a_tfn(page: Page, base_url: str, firm: Practice) -> None:
    make_user(firm, "kim", Role.AGENT)
    client = add_clients(firm, 1)[0]
    sign_in(page, base_url, "kim")
    page.goto(f"{base_url}/clients/{client.pk}/")
    skip_to_content(page)
    reveal = page.get_by_role("button", name=re.compile("^Reveal"))
    tab_to(page, reveal, 12)
    page.keyboard.press("Enter")

    # The button is gone: focus is on the number it revealed, and the live region says so.
    full = client.reveal_tfn()
    revealed = page.get_by_test_id("tfn-full")
    expect(revealed).to_have_text(f"{full[:3]} {full[3:6]} {full[6:]}")
    expect(revealed).to_be_focused()
    expect(live_region(page)).to_have_text("TFN revealed; this view is recorded in the audit trail.")


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    return agent_practice_at_sandbox(sandbox, firm, admin)


def test_keyboard_add_a_client_from_the_ato_through_validate_and_link(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    [taxpayer] = world.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM reg_links l WHERE l.taxpayer_id = t.id AND l.end_date IS NULL) ORDER BY t.id LIMIT 1"
    )
    rq_worker(env_extra=world.sandbox.env(), scheduler=True)
    sign_in(page, base_url, "bob")
    page.goto(f"{base_url}/relationships/add/")
    expect(page).to_have_title("Search — Add a client from the ATO — Practice Portal")
    skip_to_content(page)

    # The form by keyboard: the question "The client is" (a group of radios), the identifier, name and birth date.
    expect(page.get_by_role("group", name="The client is")).to_be_visible()
    individual = page.get_by_role("radio", name="An individual")
    tab_to(page, individual, 6)
    expect(individual).to_be_checked()
    tab_to(page, page.get_by_label("Number"), 2)
    page.keyboard.type(taxpayer["tfn"])
    tab_to(page, page.get_by_label("Family name"), 1)
    page.keyboard.type(taxpayer["family_name"])
    tab_to(page, page.get_by_label("Date of birth"), 2)
    page.keyboard.type(taxpayer["birth_date"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/relationships/requests/\d+/$"))
    expect(page).to_have_title("Search — Add a client from the ATO — Practice Portal")

    step = page.get_by_test_id("ato-request")
    heading = step.get_by_role("heading", level=2)
    # The ATO's answer replaces "Asking the ATO…": focus, which had nowhere to be, goes to the answer's heading.
    expect(step).to_have_attribute("data-status", "answered", timeout=ANSWER_MS)
    expect(heading).to_be_focused()
    whole = page.get_by_role("checkbox", name="The whole client: every account and role")
    expect(page.get_by_role("group", name="Link the practice to")).to_be_visible()
    tab_to(page, whole, 6)
    page.keyboard.press("Space")
    expect(whole).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Check with the ATO"), 20)
    page.keyboard.press("Enter")

    # Validate: focus follows the step while it waits and when the answer comes, which is announced.
    expect(step).to_have_attribute("data-kind", "validate")
    expect(heading).to_be_focused()
    expect(step).to_have_attribute("data-status", "answered", timeout=ANSWER_MS)
    expect(heading).to_be_focused()
    expect(live_region(page)).to_contain_text("The ATO raised no warnings")
    expect(page).to_have_title("Validate — Add a client from the ATO — Practice Portal")
    link = page.get_by_role("button", name="Link the whole client")
    assert tab_to(page, link, 12) <= 12

    page.keyboard.press("Enter")
    expect(step).to_have_attribute("data-kind", "submit")
    expect(heading).to_be_focused()
    expect(page.get_by_test_id("result")).to_contain_text("Linked.", timeout=ANSWER_MS)
    expect(heading).to_be_focused()
    expect(live_region(page)).to_contain_text("Linked.")
    expect(page).to_have_title("Link — Add a client from the ATO — Practice Portal")
    client = Client.objects.get(practice=world.practice, tfn_hash=tfn_lookup_hash(taxpayer["tfn"]))
    tab_to(page, page.get_by_role("link", name=f"Open {client}"), 6)
    page.keyboard.press("Enter")
    expect(page).to_have_title(f"Relationships — {client} — Clients — Practice Portal")
    # The tab's section loads by itself after the page: it is not a reason to pull focus down to it.
    expect(page.get_by_test_id("relationships-tab")).to_be_visible()
    page.wait_for_timeout(300)
    assert page.evaluate("document.activeElement === document.body")
    assert world.query(
        "SELECT count(*) AS n FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id WHERE l.taxpayer_id = ? "
        "AND g.tan = ? AND l.end_date IS NULL",
        taxpayer["id"],
        AGENT_TAN,
    ) == [{"n": 1}]


# --- forms: errors and help tied to their fields ----------------------------------------------------------------


def test_form_errors_and_help_texts_describe_their_fields(page: Page, base_url: str, firm: Practice) -> None:
    make_user(firm, "alice", Role.PRACTICE_ADMIN)
    client = add_clients(firm, 1)[0]
    sign_in(page, base_url, "alice")
    page.goto(f"{base_url}/clients/add/")
    expect(page).to_have_title("Add a client — Clients — Practice Portal")
    page.get_by_label("Kind").select_option("individual")
    page.get_by_role("button", name="Save").click()
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    family = page.get_by_label("Family name")
    expect(family).to_have_attribute("aria-invalid", "true")
    error = page.locator("#id_family_name_error")
    expect(error).to_be_visible()
    expect(family).to_have_accessible_description(re.compile(re.escape(error.inner_text().strip())))
    # No reference anywhere on the page points at an element that is missing.
    missing = page.evaluate(
        """() => [...document.querySelectorAll('[aria-describedby]')].flatMap(el =>
            el.getAttribute('aria-describedby').split(/\\s+/).filter(id => id && !document.getElementById(id)))"""
    )
    assert missing == []
    described = page.evaluate("document.querySelectorAll('[aria-describedby]').length")
    assert described >= 2

    # Choice groups are groups named by their question.
    ClientGroup.objects.create(practice=firm, name="Payroll")
    page.goto(f"{base_url}/clients/{client.pk}/groups/")
    expect(page.get_by_role("group", name="Groups")).to_be_visible()
    page.goto(f"{base_url}/clients/{client.pk}/")
    page.get_by_text("Add an account").click()
    expect(page.get_by_role("group", name="Roles")).to_be_visible()


# --- narrow screens ---------------------------------------------------------------------------------------------

MAIN_PAGES = [
    "/",
    "/clients/",
    "/clients/{client}/",
    "/clients/{client}/?tab=relationships",
    "/clients/groups/",
    "/clients/import/",
    "/relationships/",
    "/relationships/bulk/",
    "/relationships/reconcile/",
    "/staff/",
    "/access-review/",
    "/audit/",
    "/gateway/",
    "/gateway/messages/{message}/",
    "/account/",
    "/super/",
    "/super/add/",
    "/super/worklist/",
    "/communications/",
    "/communications/preferences/",
]


def test_every_main_page_fits_320_px_and_200_percent_zoom_without_scrolling_sideways(
    page: Page, base_url: str, firm: Practice
) -> None:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    client = add_clients(firm, 30)[0]
    with transaction.atomic():
        message = gateway_services.outbox_enqueue(
            practice=firm,
            service="PING",
            action="Ping.001.00",
            documents=[
                ("PingRequest", '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>x</Text></PingRequest>')
            ],
            created_by=admin,
        )
    sign_in(page, base_url, "alice")
    # 320 px, and 640 px: a 1280 px screen at 200% zoom.
    for width, path in [(width, path) for width in (320, 640) for path in MAIN_PAGES]:
        page.set_viewport_size({"width": width, "height": 640})
        url = base_url + path.format(client=client.pk, message=message.pk)
        page.goto(url)
        if "tab=" in path:  # the tab's content is fetched after the page
            expect(page.get_by_test_id("relationships-tab")).to_be_visible()
        sizes = page.evaluate(
            "({scroll: document.scrollingElement.scrollWidth, client: document.scrollingElement.clientWidth})"
        )
        # What sticks out, outside the boxes that scroll by design: for the message when it fails.
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => !e.closest('.table-scroll') && "
            "e.getBoundingClientRect().right > document.scrollingElement.clientWidth + 0.5)"
            ".slice(-3).map(e => e.outerHTML.slice(0, 120))"
        )
        assert sizes["scroll"] <= sizes["client"], f"{path} scrolls sideways at {width} px: {sizes}, {wide}"
    # At 320 px the header folds behind its Menu button, which opens it.
    page.set_viewport_size({"width": 320, "height": 640})
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


# --- the idle sign-out ------------------------------------------------------------------------------------------


def test_a_warning_comes_before_the_idle_sign_out_and_staying_keeps_the_session(
    page: Page, base_url: str, firm: Practice, settings: Any
) -> None:
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 20
    settings.SESSION_IDLE_WARNING_SECONDS = 15
    make_user(firm, "kim", Role.AGENT)
    sign_in(page, base_url, "kim")
    signed_in_at = time.monotonic()
    warning = page.get_by_role("region", name=re.compile("You will be signed out"))
    expect(warning).to_be_hidden()
    expect(warning).to_be_visible(timeout=15_000)
    expect(live_region(page)).to_contain_text("You will be signed out in")
    stay = warning.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()  # nothing else had focus: the button has it, one key away
    page.keyboard.press("Enter")
    expect(warning).to_be_hidden()
    expect(live_region(page)).to_have_text("You are still signed in.")

    # Past the 20 s that the sign-in alone would have allowed, the session is still there.
    page.wait_for_timeout(max(0, (signed_in_at + 22 - time.monotonic()) * 1000))
    page.goto(f"{base_url}/clients/")
    expect(page).to_have_title("Clients — Practice Portal")
    assert User.objects.get(username="kim").is_active
