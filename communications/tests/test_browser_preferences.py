"""Preferences in real Chromium against the live server, a real worker subprocess and the stand-in ATO: an admin
changes where the ATO sends the activity statement letters of 60 clients in one go, and watches the bar until each
client's outcome is shown, one refused (a client the practice is not linked to at the ATO)."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from communications.models import PreferenceChange, PreferenceChangeStatus
from communications.tests.support import client_from_ato
from portal.capabilities import Role
from portal.models import Practice
from tests.ato_fixtures import AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import nav, sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser
RUN_MS = 90_000  # every client goes through the worker subprocess to the stand-in ATO, twice


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    """59 clients linked to the practice at the ATO (at client level: a link to one account does not cover a
    client's letters) and one that is not, all in the register."""
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    ato = agent_practice_at_sandbox(sandbox, firm, admin, clients=75, taxpayers=200)
    linked = ato.query(
        "SELECT DISTINCT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a "
        "ON a.id = l.agent_id WHERE a.tan = ? AND l.level = 'CLIENT' AND l.end_date IS NULL ORDER BY t.id LIMIT 59",
        AGENT_TAN,
    )
    [stranger] = ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE NOT EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON "
        "a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ?) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )
    for row in [*linked, stranger]:
        client_from_ato(firm, row)
    return ato


def test_an_admin_bulk_changes_preferences_for_60_clients_with_one_refused(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    rq_worker(env_extra=world.sandbox.env())
    sign_in(page, base_url, "alice")
    nav(page).get_by_role("link", name="Inbox").click()
    page.get_by_role("link", name="Where the ATO sends the letters").click()
    page.get_by_test_id("bulk-change").click()
    expect(page).to_have_title(re.compile("^Change where the ATO sends many clients' letters"))
    page.get_by_label("Where the ATO sends the letters").select_option("POST")
    page.get_by_label("Activity statements").check()
    page.get_by_label("Which clients").select_option("all")
    page.get_by_role("button", name="Check and change with the ATO").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/communications/preferences/bulk/\d+/$"))
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(page.get_by_test_id("bulk-progress")).to_have_attribute("data-finished", "true", timeout=RUN_MS)
    expect(page.get_by_test_id("bulk-counts")).to_have_text("59 changed · 1 refused · 0 could not be completed")
    expect(page.get_by_text("60 of 60 clients done")).to_be_visible()
    refused = page.locator('[data-testid="bulk-rows"] tr[data-status="refused"]')
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("Refused by the ATO")
    assert PreferenceChange.objects.filter(status=PreferenceChangeStatus.ACCEPTED).count() == 59
    changed = world.query(
        "SELECT count(*) AS n FROM reg_category_preferences p JOIN reg_agents a ON a.id = p.agent_id "
        "WHERE a.tan = ? AND p.category = 'AS' AND p.channel = 'POST'",
        AGENT_TAN,
    )
    assert changed == [{"n": 59}]
    # Each client's outcome opens its change, with the ATO's reason for the refusal in words.
    refused.get_by_role("link").click()
    expect(page.get_by_test_id("refusal")).to_contain_text("Nothing was changed")
