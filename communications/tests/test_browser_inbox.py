"""The inbox in real Chromium against the live server, a real worker subprocess and the stand-in ATO: an admin
syncs the practice's letters with Sync now and watches the bar; an agent opens the inbox, filters to overdue, opens a
letter's PDF in the page, and marks it done with a note."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from clients.models import Client
from clients.tfn import tfn_lookup_hash
from communications.models import DocumentState, Letter
from communications.tests.support import client_from_ato
from portal.capabilities import Role
from portal.models import AuditEvent, Practice
from tests.ato_fixtures import AGENT_TAN, DEMO_ABN, Ato, agent_practice_at_sandbox
from tests.browser_support import nav, sign_in, sign_out
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser
RUN_MS = 90_000  # every page goes through the worker subprocess to the stand-in ATO


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    ato = agent_practice_at_sandbox(sandbox, firm, admin)
    ato.regenerate(
        seed=7,
        taxpayers=100,
        agents=[
            {"tan": AGENT_TAN, "abn": DEMO_ABN, "name": firm.name, "kind": "TAX", "clients": 8, "letters_per_client": 1}
        ],
    )
    for row in ato.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a ON a.id = "
        "l.agent_id WHERE a.tan = ? ORDER BY t.id LIMIT 4",
        AGENT_TAN,
    ):
        client_from_ato(firm, row)
    return ato


def test_an_agent_filters_to_overdue_opens_a_letters_pdf_and_marks_it_done(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    rq_worker(env_extra=world.sandbox.env())
    sign_in(page, base_url, "alice")
    nav(page).get_by_role("link", name="Inbox").click()
    expect(page).to_have_title("Inbox: ATO letters — Practice Portal")
    page.get_by_role("button", name="Sync now").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/communications/syncs/\d+/$"))
    expect(page.get_by_role("progressbar", name="Sync progress")).to_be_visible()
    expect(page.get_by_test_id("sync-status")).to_have_text("Finished", timeout=RUN_MS)
    deadline = time.monotonic() + RUN_MS / 1000
    while Letter.objects.filter(document_state=DocumentState.WAITING).exists():
        assert time.monotonic() < deadline, "documents did not arrive"
        time.sleep(0.5)
    sign_out(page, base_url)

    sign_in(page, base_url, "bob")
    nav(page).get_by_role("link", name="Inbox").click()
    page.get_by_label("Due", exact=True).select_option("overdue")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"due=overdue"))
    rows = page.get_by_test_id("letter-row")
    expect(rows.first).to_contain_text("overdue")
    overdue = Letter.objects.overdue().count()
    assert overdue > 0
    expect(rows).to_have_count(min(overdue, 50))
    target = Letter.objects.overdue().order_by("-issued", "-pk")[0]  # the first row: newest first
    title = target.title
    expect(rows.first.get_by_role("link")).to_have_text(title)

    with page.expect_response(re.compile(r"/communications/letters/\d+/document\.pdf$")) as shown:
        rows.first.get_by_role("link").click()
    assert shown.value.status == 200 and shown.value.header_value("content-type") == "application/pdf"
    assert (shown.value.header_value("content-disposition") or "").startswith("inline;")
    expect(page.get_by_title(f"The letter: {title}")).to_be_visible()
    assert AuditEvent.objects.filter(action="communications.document_opened", object_id=str(target.pk)).exists()

    page.get_by_role("group", name="State").get_by_label("Done").check()
    page.get_by_label("Note", exact=True).fill("Paid in full; receipt filed")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("state")).to_have_text("Done: Paid in full; receipt filed")
    target.refresh_from_db()
    assert target.state == "done" and target.closed_by is not None and target.closed_by.username == "bob"

    nav(page).get_by_role("link", name="Inbox").click()
    page.get_by_label("Due", exact=True).select_option("overdue")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(min(overdue - 1, 50))


def test_a_letter_for_a_client_the_register_lacks_is_unmatched_until_the_client_is_imported(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    from clients.testdata import rows_to_csv
    from communications.services import sync_start

    rq_worker(env_extra=world.sandbox.env())
    admin = world.user
    run = sync_start(practice=world.practice, actor=admin)
    stranger = world.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a ON a.id = "
        "l.agent_id JOIN reg_communications c ON c.taxpayer_id = t.id WHERE a.tan = ? AND t.entity = 'IND' "
        "ORDER BY t.id DESC LIMIT 1",
        AGENT_TAN,
    )[0]  # the world's register holds the first four clients only
    deadline = time.monotonic() + RUN_MS / 1000
    while run.status == "running":
        assert time.monotonic() < deadline, "the sync did not finish"
        time.sleep(0.5)
        run.refresh_from_db()
    assert run.status == "done", run.error
    theirs = Letter.objects.filter(tfn_last3=stranger["tfn"][-3:], name__startswith=stranger["family_name"].upper())
    assert theirs.exists() and not theirs.filter(client__isnull=False).exists()
    waiting = theirs.order_by("-issued", "-pk")[0]

    sign_in(page, base_url, "alice")
    nav(page).get_by_role("link", name="Inbox").click()
    page.get_by_label("Only letters not matched to a client").check()
    page.get_by_role("button", name="Filter").click()
    row = page.get_by_test_id("letter-row").filter(has_text=waiting.title).filter(has_text=waiting.name)
    expect(row).to_contain_text("Unmatched")

    csv = rows_to_csv(
        [
            {
                "kind": "individual",
                "family_name": stranger["family_name"],
                "given_names": stranger["given_name"] or "",
                "organisation_name": "",
                "date_of_birth": stranger["birth_date"] or "",
                "tfn": stranger["tfn"],
                "abn": stranger["abn"] or "",
                "wpn": "",
                "group": "",
            }
        ]
    )
    nav(page).get_by_role("link", name="Import", exact=True).click()
    page.get_by_label("CSV file").set_input_files({"name": "new.csv", "mimeType": "text/csv", "buffer": csv.encode()})
    page.get_by_role("button", name="Upload and preview").click()
    page.get_by_role("button", name="Import 1 row").click()
    expect(page.get_by_test_id("import-status")).to_have_text("Finished", timeout=RUN_MS)

    nav(page).get_by_role("link", name="Inbox").click()
    page.get_by_label("Only letters not matched to a client").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("letter-row").filter(has_text=waiting.name)).to_have_count(0)
    imported = Client.objects.get(practice=world.practice, tfn_hash=tfn_lookup_hash(stranger["tfn"]))
    assert not theirs.filter(client__isnull=True).exists() and theirs.filter(client=imported).count() == theirs.count()
    page.goto(f"{base_url}/communications/letters/{waiting.pk}/")
    expect(page.get_by_role("link", name=imported.display_name)).to_be_visible()
