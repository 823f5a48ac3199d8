"""A bulk postal-address change for 30 clients in real Chromium against the live server, a real worker subprocess
and the stand-in ATO, one of them refused (not a client of the practice at the ATO): the progress bar moves without
a reload and each client's outcome is listed."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from clients.models import Client
from portal.capabilities import Role
from portal.models import Practice
from tests.ato_fixtures import AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser

ANSWER_MS = 90_000
_LINK = (
    "EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id "
    "AND a.tan = ? AND l.level = 'CLIENT' AND l.end_date IS NULL)"
)


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    return agent_practice_at_sandbox(sandbox, firm, admin)


def test_a_bulk_postal_address_change_for_30_clients_with_one_refused(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    ours = world.query(f"SELECT * FROM reg_taxpayers t WHERE {_LINK} ORDER BY t.id LIMIT 29", AGENT_TAN)  # noqa: S608
    [stranger] = world.query(f"SELECT * FROM reg_taxpayers t WHERE NOT {_LINK} ORDER BY t.id LIMIT 1", AGENT_TAN)  # noqa: S608
    for person in [*ours, stranger]:
        client = Client(practice=world.practice, kind="company", organisation_name=person["organisation_name"] or "")
        if person["entity"] == "IND":
            client = Client(practice=world.practice, kind="individual", family_name=person["family_name"])
        client.set_tfn(person["tfn"])
        client.save()
    rq_worker(env_extra=world.sandbox.env(), scheduler=True)

    sign_in(page, base_url, "bob")
    page.goto(f"{base_url}/demographics/address-changes/bulk/")
    page.get_by_role("radio", name="Postal").check()
    page.get_by_label("Address line 1").fill("Level 3, 12 Harbour St")
    page.get_by_label("Suburb or town").fill("SYDNEY")
    page.get_by_label("State or territory").select_option("NSW")
    page.get_by_label("Postcode").fill("2000")
    page.get_by_label("Which clients").select_option("all")
    page.get_by_role("button", name="Check and change with the ATO").click()
    expect(page).to_have_url(re.compile(r"/demographics/address-changes/bulk/\d+/$"))
    page.evaluate("window.notReloaded = true")
    progress = page.get_by_test_id("bulk-progress")
    expect(progress).to_have_attribute("data-finished", "true", timeout=ANSWER_MS)
    assert page.evaluate("window.notReloaded === true")
    expect(page.get_by_test_id("bulk-counts")).to_contain_text("29 changed · 1 refused")
    expect(page.get_by_role("progressbar")).to_have_attribute("value", "30")
    expect(page.locator('tr[data-status="refused"]')).to_have_count(1)
    changed = world.query(
        "SELECT count(*) AS n FROM reg_addresses WHERE usage = 'POS' AND line1 = ? AND end_date IS NULL",
        "Level 3, 12 Harbour St",
    )
    assert changed == [{"n": 29}]
