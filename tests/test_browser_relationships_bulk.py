"""Bulk link with one bad row, in real Chromium: upload a CSV, watch every row checked with the stand-in ATO, link
the chosen rows with a progress bar, download the outcome report. A real RQ worker subprocess (with RQ's
scheduler, for retries) sends the messages to the stand-in ATO process."""

from __future__ import annotations

import os

from ato_gateway.api import in_plain_words

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import csv
import io
from typing import Any

import pytest
from playwright.sync_api import FilePayload, Page, expect

from clients.models import Client
from clients.tfn import tfn_lookup_hash
from portal.capabilities import Role
from portal.models import AuditEvent, Practice
from relationships.models import BulkJob, BulkStatus
from tests.ato_fixtures import agent_practice_at_sandbox
from tests.browser_support import nav, sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser

UNLINKED = (
    "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM reg_links l WHERE l.taxpayer_id = t.id AND l.end_date IS NULL) ORDER BY t.id LIMIT 3"
)


def test_bulk_link_with_one_bad_row(
    page: Page, base_url: str, firm: Practice, rq_worker: Any, sandbox: Sandbox
) -> None:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    ato = agent_practice_at_sandbox(sandbox, firm, admin)
    worker = rq_worker(env_extra=sandbox.env(), scheduler=True)
    first, second, wrong = ato.query(UNLINKED)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["tfn", "family_name", "given_name", "date_of_birth", "level"])
    for t in (first, second):
        writer.writerow([t["tfn"], t["family_name"], t["given_name"], t["birth_date"], "client"])
    writer.writerow([wrong["tfn"], "Nobody-Matches", "", wrong["birth_date"], ""])  # the ATO will refuse it

    sign_in(page, base_url, "bob")
    nav(page).get_by_role("link", name="Relationships").click()
    page.get_by_role("link", name="Bulk link from a CSV").click()
    upload: FilePayload = {"name": "new-clients.csv", "mimeType": "text/csv", "buffer": out.getvalue().encode()}
    page.get_by_label("CSV file").set_input_files(files=[upload])
    page.get_by_role("button", name="Upload and check with the ATO").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bulk link: new-clients.csv")

    # The review table fills in as the ATO answers, without a reload; then the choices are offered.
    status = page.get_by_test_id("bulk-status")
    try:
        expect(status).to_have_text("Ready for review", timeout=90_000)
    except AssertionError:
        log = rq_worker.log_path.read_text(errors="replace")
        raise AssertionError(f"rows were not checked; worker exit={worker.poll()}; log:\n{log}") from None
    rows = page.get_by_test_id("bulk-rows")
    bad = rows.locator("tr[data-row='4']")
    expect(bad).to_contain_text("Error")
    expect(bad).to_contain_text(in_plain_words("CMN.ATO.CUREL.SRCH02"))
    expect(bad.get_by_role("checkbox")).to_have_count(0)
    for n in (2, 3):
        expect(page.get_by_role("checkbox", name=f"Link row {n}")).to_be_checked()
    expect(page.get_by_test_id("bulk-counts")).to_contain_text("2 OK")
    expect(page.get_by_test_id("bulk-counts")).to_contain_text("1 with errors")

    page.get_by_role("button", name="Link the chosen rows").click()
    expect(page.get_by_role("status")).to_contain_text("Linking 2 rows with the ATO.")
    expect(status).to_have_text("Done", timeout=90_000)
    expect(page.get_by_test_id("bulk-counts")).to_contain_text("2 linked")
    expect(rows.locator("tr[data-row='2']")).to_contain_text("Linked for the whole client.")
    expect(rows.locator("tr[data-row='4']")).to_contain_text("Error")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the outcome report (CSV)").click()
    report = download_info.value.path().read_text()
    lines = list(csv.reader(io.StringIO(report)))
    assert [line[3] for line in lines] == ["outcome", "Linked", "Linked", "Error"]
    for t in (first, second, wrong):
        assert t["tfn"] not in report and t["tfn"] not in page.content()
    assert lines[1][2] == f"TFN *** *** {first['tfn'][-3:]}"

    # The register has the two clients, and nothing of the refused one.
    assert BulkJob.objects.get().status == BulkStatus.DONE
    for t in (first, second):
        assert Client.objects.filter(practice=firm, tfn_hash=tfn_lookup_hash(t["tfn"])).exists()
    assert not Client.objects.filter(practice=firm, tfn_hash=tfn_lookup_hash(wrong["tfn"])).exists()
    actions = set(AuditEvent.objects.filter(practice=firm).values_list("action", flat=True))
    assert {"relationships.bulk_uploaded", "relationships.bulk_submitted"} <= actions
    assert "relationships.bulk_report_downloaded" in actions
