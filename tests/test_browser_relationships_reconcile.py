"""Reconciliation in real Chromium against the live server, a real worker subprocess (with RQ's scheduler) and the
stand-in ATO: the register matches the ATO; then the ATO ends a link behind the practice's back, and the next run's
drift report shows it, the register is brought into line and the dashboard raises the alarm."""

from __future__ import annotations

import os

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
from relationships.models import Link
from tests.ato_fixtures import AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import nav, sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox
from tests.test_relationships_reconcile import ato_links, local_client, local_link

pytestmark = pytest.mark.browser

RUN_MS = 90_000  # every page goes through the worker subprocess to the stand-in ATO; generous for a busy machine


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    """The live server's practice as an agent at the stand-in ATO, its register holding exactly the ATO's links."""
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    ato = agent_practice_at_sandbox(sandbox, firm, admin)
    clients: dict[int, Client] = {}
    for row in ato_links(ato):
        client = clients.get(row["taxpayer_id"]) or local_client(ato, row)
        clients[row["taxpayer_id"]] = client
        local_link(client, row["level"], row["account"] or "", row["branch"] or "", row["role"] or "")
    return ato


def _reconcile(page: Page, base_url: str) -> None:
    """From the Relationships page, run a reconciliation and wait for it to finish (the bar polls, then the page
    reloads with the report)."""
    nav(page).get_by_role("link", name="Relationships", exact=True).click()
    page.get_by_role("link", name="Reconciliation").click()
    expect(page).to_have_url(f"{base_url}/relationships/reconcile/")
    page.get_by_role("button", name="Check against the ATO now").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/relationships/reconcile/\d+/$"))
    expect(page.get_by_test_id("reconcile-status")).to_have_text("Finished", timeout=RUN_MS)


def test_the_drift_report_after_the_ato_ends_a_link_behind_the_practices_back(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    rq_worker(env_extra=world.sandbox.env(), scheduler=True)
    sign_in(page, base_url, "alice")

    _reconcile(page, base_url)
    expect(page.get_by_test_id("no-drift")).to_have_text("No differences: the register matches the ATO.")

    # The client ends the practice's link elsewhere; the portal is not told.
    row = next(r for r in ato_links(world) if r["level"] == "CLIENT" and r["entity"] == "IND")
    client = Client.objects.get(practice=world.practice, tfn_hash=tfn_lookup_hash(row["tfn"]))
    world.sandbox.control("POST", "end-link", json={"tan": AGENT_TAN, "tfn": row["tfn"], "level": "CLIENT"})

    _reconcile(page, base_url)
    report = page.get_by_test_id("drift-report")
    lost = report.get_by_role("row").filter(has_text=client.display_name)
    expect(lost).to_contain_text("Ended at the ATO: access lost")
    expect(lost).to_contain_text("the whole client (ended by the client on 30/11/2026)")
    expect(lost).to_contain_text(f"TFN {client.masked_tfn}")
    assert row["tfn"] not in page.content()
    assert not Link.objects.current().filter(client=client, level="CLIENT").exists()

    # The dashboard raises it; marking it read quietens it.
    nav(page).get_by_role("link", name="Dashboard").click()
    expect(page.get_by_test_id("lost-access-alert")).to_contain_text("1 urgent alert")
    alerts = page.get_by_test_id("relationship-alerts")
    expect(alerts).to_contain_text(f"Access lost: {client.display_name}")
    alerts.get_by_role("button", name="Mark read").first.click()
    expect(page.get_by_test_id("lost-access-alert")).to_have_count(0)
