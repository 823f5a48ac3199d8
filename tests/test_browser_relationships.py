"""The agent's relationship flows in real Chromium against the live server, a real worker subprocess and the
stand-in ATO: search, validate (with the warning that another agent's link will end) and link; then remove, with
Validate-remove first. Each answer appears without a reload, the page polling while the worker asks the ATO."""

from __future__ import annotations

import os

from ato_gateway.api import in_plain_words

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from clients.models import Client
from clients.tfn import tfn_lookup_hash
from portal.capabilities import Role
from portal.models import Practice
from relationships.models import Link, LinkChange
from tests.ato_fixtures import AGENT_TAN, OTHER_AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import nav, sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser

ANSWER_MS = 60_000  # the worker subprocess asks the stand-in ATO; generous for a busy machine


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    """The live server's practice as an agent at the stand-in ATO (its worker is started by the test)."""
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    return agent_practice_at_sandbox(sandbox, firm, admin)


@pytest.fixture
def worker(world: Ato, rq_worker: Any) -> Any:
    """Starts a real worker subprocess that reaches the stand-in ATO, with RQ's scheduler (retries)."""
    return lambda: rq_worker(env_extra=world.sandbox.env(), scheduler=True)


def _search(page: Page, base_url: str, taxpayer: dict[str, Any]) -> None:
    """From the Relationships page, look the taxpayer up at the ATO by TFN and name (and date of birth)."""
    nav(page).get_by_role("link", name="Relationships", exact=True).click()
    page.get_by_role("link", name="Add a client from the ATO").click()
    expect(page).to_have_url(f"{base_url}/relationships/add/")
    page.get_by_label("Number").fill(taxpayer["tfn"])
    if taxpayer["entity"] == "IND":
        page.get_by_role("radio", name="An individual").check()
        page.get_by_label("Family name").fill(taxpayer["family_name"])
        page.get_by_label("Date of birth").fill(taxpayer["birth_date"])
    else:
        page.get_by_role("radio", name=re.compile("An organisation")).check()
        page.get_by_label("Organisation name").fill(taxpayer["organisation_name"])
    page.get_by_role("button", name="Search the ATO").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/relationships/requests/\d+/$"))


def _step(page: Page) -> Any:
    return page.get_by_test_id("ato-request")


def test_agent_searches_validates_sees_the_other_agents_link_end_and_links_a_role(
    page: Page, base_url: str, world: Ato, worker: Any
) -> None:
    # One of our clients at the ATO on which another practice holds a role link (the second agent's if any).
    [taxpayer] = world.query(
        "SELECT t.*, l.role, a.branch, g.tan AS other_tan, g.name AS other_name FROM reg_links l "
        "JOIN reg_taxpayers t ON t.id = l.taxpayer_id JOIN reg_accounts a ON a.id = l.account_id "
        "JOIN reg_agents g ON g.id = l.agent_id WHERE l.level = 'ROLE' AND l.end_date IS NULL AND g.tan <> ? "
        "AND t.death_date IS NULL AND EXISTS (SELECT 1 FROM reg_links m JOIN reg_agents ma ON ma.id = m.agent_id "
        "WHERE m.taxpayer_id = t.id AND ma.tan = ? AND m.end_date IS NULL) "
        "AND NOT EXISTS (SELECT 1 FROM reg_links o JOIN reg_agents oa ON oa.id = o.agent_id WHERE o.taxpayer_id = t.id "
        "AND oa.tan = ? AND o.level = 'ROLE' AND o.role = l.role AND o.end_date IS NULL) "
        "ORDER BY g.tan = ? DESC, t.id LIMIT 1",
        AGENT_TAN,
        AGENT_TAN,
        AGENT_TAN,
        OTHER_AGENT_TAN,
    )
    other = f"{taxpayer['other_name']} ({taxpayer['other_tan']})"
    role_label = {"GST": "GST", "PAYGW": "PAYG withholding", "PAYGI": "PAYG instalments"}.get(
        taxpayer["role"], taxpayer["role"]
    )
    covers = f"{role_label} on the activity statement account {taxpayer['branch']}"

    sign_in(page, base_url, "bob")
    _search(page, base_url, taxpayer)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.headers.get("x-poll") == "1" else None)
    # No worker yet: the request waits, and the page says so and polls.
    expect(_step(page)).to_contain_text("Asking the ATO…")
    expect(_step(page)).to_have_attribute("hx-trigger", "every 1s")
    page.evaluate("window.notReloaded = true")
    worker()

    # What the ATO found, marked as already a client of the practice, and the levels it can be linked at.
    expect(_step(page)).to_have_attribute("data-status", "answered", timeout=ANSWER_MS)
    assert polls, "the request never polled"
    expect(page.get_by_test_id("found")).to_contain_text("Already your client")
    expect(page.get_by_label("The whole client: every account and role")).to_be_visible()
    page.get_by_label(covers, exact=True).check()
    page.get_by_role("button", name="Check with the ATO").click()

    # Validate: the warning names the other agent and what they lose; only then is Link offered.
    expect(_step(page)).to_have_attribute("data-kind", "validate")
    warnings = page.get_by_test_id("warnings")
    expect(warnings).to_contain_text(f"This will end {other}'s link for {covers}.", timeout=ANSWER_MS)
    expect(page).to_have_url(re.compile(r"/relationships/requests/\d+/$"))
    page.get_by_role("button", name=f"Link {covers}").click()

    result = page.get_by_test_id("result")
    expect(result).to_contain_text("Linked.", timeout=ANSWER_MS)
    expect(_step(page)).to_contain_text(f"The link {other} had for ")
    assert page.evaluate("window.notReloaded === true")  # every answer appeared in place

    # The client is in the register now, with the role link and its history.
    client = Client.objects.get(practice=world.practice, tfn_hash=tfn_lookup_hash(taxpayer["tfn"]))
    [link] = Link.objects.current().filter(client=client)
    assert (link.level, link.role, link.branch) == ("ROLE", taxpayer["role"], taxpayer["branch"])
    page.get_by_role("link", name=f"Open {client}").click()
    tab = page.get_by_test_id("relationships-tab")
    expect(tab.get_by_test_id("links")).to_contain_text(covers[0].upper() + covers[1:])
    expect(page.get_by_test_id("history")).to_contain_text("Ended another agent's link")
    expect(page.get_by_test_id("history")).to_contain_text("Bob Tester")
    assert taxpayer["tfn"] not in page.content()


def test_agent_removes_a_link_after_seeing_the_validate_remove_warning(
    page: Page, base_url: str, world: Ato, worker: Any
) -> None:
    # Someone not yet our client, linked here at client level through the pages, then removed again.
    [taxpayer] = world.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id WHERE l.taxpayer_id = t.id "
        "AND g.tan = ? AND l.end_date IS NULL) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )
    worker()
    sign_in(page, base_url, "bob")
    _search(page, base_url, taxpayer)
    expect(_step(page)).to_have_attribute("data-status", "answered", timeout=ANSWER_MS)
    page.get_by_label("The whole client: every account and role").check()
    page.get_by_role("button", name="Check with the ATO").click()
    expect(_step(page)).to_have_attribute("data-kind", "validate")
    page.get_by_role("button", name="Link the whole client").click(timeout=ANSWER_MS)
    expect(page.get_by_test_id("result")).to_contain_text("Linked.", timeout=ANSWER_MS)
    client = Client.objects.get(practice=world.practice, tfn_hash=tfn_lookup_hash(taxpayer["tfn"]))
    page.get_by_role("link", name=f"Open {client}").click()

    links = page.get_by_test_id("links")
    expect(links).to_contain_text("The whole client")
    links.get_by_role("button", name="Remove the whole client").click()

    # Validate-remove first: what would end, and that no access would remain. Nothing has ended yet.
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove a link")
    warnings = page.get_by_test_id("warnings")
    expect(warnings).to_contain_text(in_plain_words("CMN.ATO.CUREL.REM02"), timeout=ANSWER_MS)
    assert Link.objects.current().filter(client=client).count() == 1
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Remove the whole client").click()
    expect(page.get_by_test_id("result")).to_contain_text("Removed.", timeout=ANSWER_MS)
    expect(_step(page)).to_contain_text(in_plain_words("CMN.ATO.CUREL.REM03"))
    assert page.evaluate("window.notReloaded === true")

    page.get_by_role("link", name=f"Back to {client}").click()
    expect(page.get_by_test_id("no-links")).to_contain_text("no current link with the ATO")
    expect(page.get_by_role("link", name="Link this client at the ATO")).to_be_visible()
    expect(page.get_by_test_id("history")).to_contain_text("Removed")
    assert not Link.objects.current().filter(client=client).exists()
    assert LinkChange.objects.filter(client=client, kind="removed").count() == 1
    left = world.query(
        "SELECT count(*) AS n FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id WHERE l.taxpayer_id = ? "
        "AND g.tan = ? AND l.end_date IS NULL",
        taxpayer["id"],
        AGENT_TAN,
    )
    assert left == [{"n": 0}]
