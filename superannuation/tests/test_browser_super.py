"""A fund administrator in real Chromium against the live server, a real worker subprocess (with RQ's scheduler,
which pulls the responses) and the stand-in ATO: they add the fund, import 20 members made from the stand-in's
people (three with a wrong TFN, three it does not know, two whose date of birth the register holds wrongly), run
the foundation data load and read its counts; apply a corrected TFN; resubmit only the two failed transactions
once corrected; send real-time events, record a reasonable step on the unmatched one's "please resolve" notice,
and clear a 096604 by reporting the account closed under its other holder before resubmitting."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import FilePayload, Page, expect

from ato_gateway.models import OutboxMessage
from portal.capabilities import Role
from portal.models import Practice
from superannuation.models import Batch, ItemState, Meaning, Member, Report, WorkItem
from tests.ato_fixtures import DEMO_ABN, Ato, agent_practice_at_sandbox
from tests.browser_support import nav, sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

from .support import member_file, people, row, wrong_tfn

pytestmark = pytest.mark.browser
RUN_MS = 90_000  # each report goes through the worker subprocess to the stand-in ATO and back
FUND = "Harbour Members Super"


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    ato = agent_practice_at_sandbox(sandbox, firm, admin)
    # Today at the stand-in too, so that today's real-time events are not in its future.
    sandbox.control("POST", "today", json={"today": timezone.localdate().isoformat()})
    return ato


def received(ato: Ato, batch: Batch) -> int:
    """How many transactions the stand-in ATO received in the batch's message."""
    assert batch.question is not None
    message = OutboxMessage.objects.get(pk=batch.question.message_id)
    [queued] = ato.query("SELECT payloads FROM queued_responses WHERE ref_message_id = ?", message.message_id)
    return sum(text.count("<TransactionResult>") for _, text in json.loads(queued["payloads"]))


def finished(page: Page, counts: str) -> None:
    """On a report's page: the bar runs to its end without a reload, and the counts are read."""
    expect(page.get_by_test_id("report-progress")).to_have_attribute("data-finished", "true", timeout=RUN_MS)
    expect(page.get_by_test_id("report-counts")).to_have_text(f"Finished: {counts}")


def settled() -> None:
    deadline = time.monotonic() + RUN_MS / 1000
    while Report.objects.filter(finished_at__isnull=True).exists():
        assert time.monotonic() < deadline, "a report did not finish"
        time.sleep(0.3)


def edit(page: Page, base_url: str, member: Member, **fields: str) -> None:
    page.goto(f"{base_url}/super/members/{member.pk}/")
    page.get_by_role("link", name="Edit", exact=True).click()
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()


def test_a_fund_administrator_reports_20_members_and_works_through_the_ato_s_responses(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    answer = world.sandbox.control("POST", "fund", json={"abn": DEMO_ABN, "name": FUND})
    found = people(world, 21)
    persons, newcomer = found[:20], found[20]
    rows = [row(p, f"M-{n:02}") for n, p in enumerate(persons[:14])]
    rows += [row(p, f"C-{n}", tfn=wrong_tfn(p["tfn"])) for n, p in enumerate(persons[14:17])]
    rows += [row(p, f"U-{n}", family_name="Nobody-Matches") for n, p in enumerate(persons[17:])]
    rq_worker(env_extra=world.sandbox.env(), scheduler=True)

    sign_in(page, base_url, "alice")
    nav(page).get_by_role("link", name="Super funds").click()
    expect(page.get_by_test_id("no-funds")).to_be_visible()
    page.get_by_role("link", name="Add a fund").click()
    page.get_by_label("Fund name").fill(FUND)
    page.get_by_label("ABN", exact=True).fill(DEMO_ABN)
    page.get_by_label("USI", exact=True).fill(str(answer["usi"]))
    page.get_by_role("button", name="Add the fund").click()
    expect(page).to_have_title(f"Import members — {FUND} — Super funds — Practice Portal")
    upload: FilePayload = {"name": "members.csv", "mimeType": "text/csv", "buffer": member_file(rows)}
    page.get_by_label("Member file (CSV)").set_input_files(files=upload)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-counts")).to_have_text(
        "Finished: 20 added · 0 updated · 0 rows with problems", timeout=RUN_MS
    )
    # Two dates of birth the fund's own register holds wrongly, in the future: the member file's check refuses
    # such a date, so they are written here, as a register that predates the check would hold them.
    late = {"M-12": persons[12], "M-13": persons[13]}
    Member.objects.filter(member_number__in=late).update(date_of_birth=timezone.localdate() + timedelta(days=400))

    page.get_by_role("link", name="Report them to the ATO").click()
    page.get_by_role("link", name="Start the foundation data load").click()
    expect(page.get_by_test_id("open-accounts")).to_have_text("20 accounts")
    page.get_by_role("button", name="Report 20 accounts to the ATO").click()
    finished(page, "12 matched · 3 corrected · 3 unmatched · 2 not processed")
    foundation = Batch.objects.get()
    assert received(world, foundation) == 20 and foundation.receipt_at and foundation.pulled_at

    # A corrected TFN, applied in one click (with its confirmation).
    page.get_by_role("link", name="Open the fund's worklist").click()
    items = page.get_by_test_id("item-row")
    expect(items).to_have_count(5)  # 3 corrected, 2 failed; the foundation load's unmatched need no action
    items.filter(has_text="Matched and corrected").first.get_by_role("link").click()
    expect(page.get_by_test_id("meaning")).to_contain_text("Update your records with the TFN supplied.")
    page.locator("summary", has_text="Apply the TFN the ATO supplied").click()
    page.get_by_role("button", name="Yes, apply it").click()
    expect(page.get_by_test_id("item-state")).to_contain_text("Resolved")
    applied = WorkItem.objects.select_related("member").get(state=ItemState.RESOLVED)
    person = persons[14 + int(applied.member.member_number[-1])]
    assert applied.member.reveal_tfn() == person["tfn"] and applied.member.tfn_from_ato
    page.get_by_role("link", name=applied.member.display_name).click()
    expect(page.get_by_test_id("tfn-from-ato")).to_contain_text("do not give this TFN to employers")

    # The two failed transactions corrected, then resubmitted alone: the 18 processed cannot be chosen.
    for number, person in late.items():
        edit(page, base_url, Member.objects.get(member_number=number), **{"Date of birth": person["birth_date"]})
    page.goto(f"{base_url}/super/batches/{foundation.pk}/")
    expect(page.get_by_test_id("transaction-row")).to_have_count(20)
    choices = page.locator('input[name="transactions"]')
    expect(choices).to_have_count(2)
    for n in range(2):
        choices.nth(n).check()
    page.get_by_role("button", name="Resubmit the chosen transactions").click()
    finished(page, "2 matched · 0 corrected · 0 unmatched · 0 not processed")
    resent = Batch.objects.exclude(pk=foundation.pk).get()
    assert received(world, resent) == 2
    assert not WorkItem.objects.filter(meaning=Meaning.VALIDATION_ERROR, state=ItemState.OPEN).exists()

    # Real-time events: an unmatched member's change (a "please resolve" notice) and a member the register now
    # gives another person's details, whose account the ATO holds for its first holder (096604).
    unmatched = Member.objects.get(member_number="U-0")
    edit(page, base_url, unmatched, **{"Suburb or town": "Parramatta"})
    holder_member = Member.objects.get(member_number="M-00")
    holder = persons[0]
    edit(
        page,
        base_url,
        holder_member,
        **{
            "Family name": newcomer["family_name"],
            "Given names": newcomer["given_name"] or "",
            "Date of birth": newcomer["birth_date"],
        },
    )
    page.goto(f"{base_url}/super/{holder_member.fund_id}/?tab=reporting")
    expect(page.get_by_test_id("pending")).to_have_text(re.compile(r"^4 events waiting"))
    page.get_by_role("button", name="Send the pending events").click()
    finished(page, "2 matched · 0 corrected · 1 unmatched · 1 not processed")

    page.get_by_role("link", name="Open the fund's worklist").click()
    items.filter(has_text="Please resolve").get_by_role("link").click()
    expect(page.get_by_test_id("meaning")).to_contain_text("Reasonable steps must be taken to resolve this response.")
    page.get_by_label("Contact made").fill("The member, by phone on the number on file")
    page.get_by_label("What was found").fill("Married in 2024: the family name changed; new name to follow")
    page.get_by_role("button", name="Record the step").click()
    expect(page.get_by_test_id("steps")).to_contain_text("Married in 2024")

    page.get_by_role("link", name=re.compile("worklist$")).click()
    items.filter(has_text="different holder").get_by_role("link").click()
    held = page.get_by_test_id("resubmit-disabled")
    expect(held).to_be_disabled()
    expect(held).to_have_accessible_description(re.compile("cannot be resubmitted until one of the two"))
    page.get_by_role("radio", name="Reported closed under the other holder").check()
    page.get_by_label("Other holder's family name").fill(holder["family_name"])
    page.get_by_label("Other holder's given names").fill(holder["given_name"] or "")
    page.get_by_label("Other holder's date of birth").fill(holder["birth_date"])
    page.get_by_role("button", name="Record the remediation").click()
    expect(page.get_by_test_id("remediation-done")).to_contain_text("Reported closed under the other holder")
    settled()  # the closing event under the holder reaches the ATO before the member's message is resubmitted
    page.get_by_role("link", name="its batch").click()
    other = WorkItem.objects.get(meaning=Meaning.OTHER_HOLDER)
    page.locator(f'input[name="transactions"][value="{other.transaction_id}"]').check()
    page.get_by_role("button", name="Resubmit the chosen transactions").click()
    finished(page, "0 matched · 1 corrected · 0 unmatched · 0 not processed")
    other.refresh_from_db()
    assert other.state == ItemState.RESOLVED
    [account] = world.query("SELECT status FROM reg_member_reports WHERE member_number = 'M-00'")
    assert account["status"] != "CLOSED"  # reopened for its new holder, after it was closed under the first

    # A narrow screen (320 px): the pages with their tables, lists and forms fit; a wide table scrolls in its box.
    page.set_viewport_size({"width": 320, "height": 640})
    fund = holder_member.fund_id
    paths = [f"/super/{fund}/?tab={tab}" for tab in ("members", "import", "reporting", "worklist", "reports")]
    paths += [f"/super/batches/{foundation.pk}/", f"/super/items/{other.pk}/", f"/super/members/{holder_member.pk}/"]
    for path in paths:
        page.goto(base_url + path)
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => !e.closest('.table-scroll') && "
            "e.getBoundingClientRect().right > document.scrollingElement.clientWidth + 0.5)"
            ".slice(-3).map(e => e.outerHTML.slice(0, 120))"
        )
        assert wide == [], (path, wide)
