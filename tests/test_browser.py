"""End-to-end flows in real Chromium (Debian's, never a downloaded one) against pytest-django's live server.

Every test signs in through the real pages: password, then a TOTP code. Data is created in the test body after
the live server is up; `live_server` makes these tests transactional, so the server thread (and the RQ worker
subprocess of the import test) see committed rows."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from clients.models import Client, ImportJob, ImportStatus
from clients.testdata import make_client_rows, rows_to_csv
from portal.capabilities import Role
from portal.models import AuditEvent, Practice, User
from tests.browser_support import TOTP_STEP, enrol_authenticator, nav, sign_in, sign_out
from tests.conftest import PASSWORD, add_clients, make_user

pytestmark = pytest.mark.browser

# --- flows ------------------------------------------------------------------------------------------------------


def test_first_sign_in_enrols_an_authenticator_then_signs_in_with_totp_and_backup_code(
    page: Page, base_url: str, firm: Practice
) -> None:
    user = make_user(firm, "nina", Role.AGENT, mfa=False)

    page.goto(f"{base_url}/login/")
    page.get_by_label("Practice code").fill(firm.code)
    page.get_by_label("Username").fill("nina")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    secret, backup_codes = enrol_authenticator(page, base_url)

    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and device.bin_key.hex() == secret
    expect(page.get_by_role("heading", level=1)).to_have_text(firm.name)
    expect(nav(page).get_by_role("link", name="Clients", exact=True)).to_be_visible()

    # Again with the authenticator. django-otp refuses a code from a time step already used (the enrolment's),
    # so wait for the next 30-second step if the enrolment happened in this one.
    sign_out(page, base_url)
    device.refresh_from_db()
    wait = (device.last_t + 1) * TOTP_STEP - time.time()
    if wait > 0:
        time.sleep(wait + 0.2)
    sign_in(page, base_url, "nina", code=f"{totp(bytes.fromhex(secret)):06d}")

    # And a backup code stands in for the authenticator.
    sign_out(page, base_url)
    sign_in(page, base_url, "nina", code=backup_codes[0])

    factors = list(
        AuditEvent.objects.filter(actor=user, action="login.succeeded").order_by("pk").values_list("details", flat=True)
    )
    assert [f["factor"] for f in factors] == ["totp", "totp", "backup_code"]


def test_admin_invites_a_member_then_deactivates_them_and_their_session_ends(
    new_context: Any, base_url: str, firm: Practice
) -> None:
    make_user(firm, "alice", Role.PRACTICE_ADMIN)
    admin_page: Page = new_context().new_page()
    sign_in(admin_page, base_url, "alice")

    nav(admin_page).get_by_role("link", name="Staff", exact=True).click()
    expect(admin_page).to_have_url(f"{base_url}/staff/")
    admin_page.get_by_role("link", name="Add staff").click()
    admin_page.get_by_label("Username").fill("dana")
    admin_page.get_by_label("First name").fill("Dana")
    admin_page.get_by_label("Last name").fill("Fisher")
    admin_page.get_by_label("Email").fill("dana@example.com")
    admin_page.get_by_label("Role").select_option(label="Agent")
    admin_page.get_by_role("button", name="Create invitation").click()
    expect(admin_page.get_by_role("heading", name="Dana Fisher is invited")).to_be_visible()
    invite_link = admin_page.get_by_test_id("invite-link").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(base_url)}/invite/[\w-]+/", invite_link), invite_link

    # The invitee, in a browser of their own.
    invitee_page: Page = new_context().new_page()
    invitee_page.goto(invite_link)
    expect(invitee_page.get_by_role("heading", name="Welcome, Dana")).to_be_visible()
    invitee_page.get_by_label("Password", exact=True).fill("Quokka-ledger-7319-sunrise")
    invitee_page.get_by_label("Password again", exact=True).fill("Quokka-ledger-7319-sunrise")
    invitee_page.get_by_role("button", name="Set password").click()
    enrol_authenticator(invitee_page, base_url)
    invitee_page.goto(f"{base_url}/clients/")
    expect(invitee_page.get_by_role("heading", name="Clients", level=1)).to_be_visible()

    # The admin deactivates the leaver from their staff page.
    nav(admin_page).get_by_role("link", name="Staff", exact=True).click()
    row = admin_page.get_by_role("row").filter(has_text="dana")
    expect(row).to_contain_text("Active")
    row.get_by_role("link", name="Dana Fisher").click()
    admin_page.get_by_role("button", name="Deactivate (leaver)").click()
    # It asks first, on a page of its own; nothing has changed yet.
    expect(admin_page.get_by_role("heading", level=1)).to_contain_text("Deactivate: Dana Fisher?")
    assert User.objects.get(username="dana").is_active
    admin_page.get_by_role("button", name="Deactivate", exact=True).click()
    expect(admin_page.get_by_role("heading", level=1)).to_contain_text("Deactivated")
    expect(admin_page.get_by_role("status")).to_contain_text("Dana Fisher is deactivated")
    expect(admin_page.get_by_role("button", name="Reactivate")).to_be_visible()
    assert not User.objects.get(username="dana").is_active

    # The invitee's signed-in session is thrown out on its next request, and the password no longer works.
    invitee_page.goto(f"{base_url}/clients/")
    expect(invitee_page).to_have_url(re.compile(rf"^{re.escape(base_url)}/login/"))
    expect(invitee_page.get_by_role("heading", name="Sign in")).to_be_visible()
    invitee_page.get_by_label("Practice code").fill(firm.code)
    invitee_page.get_by_label("Username").fill("dana")
    invitee_page.get_by_label("Password", exact=True).fill("Quokka-ledger-7319-sunrise")
    invitee_page.get_by_role("button", name="Continue").click()
    expect(invitee_page.get_by_role("alert")).to_contain_text("The practice code, username or password is not right.")


def test_agent_imports_csv_with_two_bad_rows_then_finds_a_client(
    page: Page, base_url: str, firm: Practice, rq_worker: Any
) -> None:
    make_user(firm, "bob", Role.AGENT)
    rows = make_client_rows(40, seed=11)
    bad_tfn, bad_abn = 3, 7  # 0-based; the spreadsheet line is index + 2 (line 1 is the header)
    tfn = rows[bad_tfn]["tfn"]
    rows[bad_tfn]["tfn"] = tfn[:-1] + str((int(tfn[-1]) + 1) % 10)  # a wrong check digit
    abn = rows[bad_abn]["abn"]
    rows[bad_abn]["abn"] = abn[:-1] + str((int(abn[-1]) + 1) % 10)
    good = [r for i, r in enumerate(rows) if i not in (bad_tfn, bad_abn)]

    def shown_name(r: dict[str, str]) -> str:
        return r["organisation_name"] or f"{r['family_name'].upper()}, {r['given_names']}"

    # A client the search should find alone: an organisation whose name is in no other row's name.
    target = next(
        r
        for r in good
        if r["organisation_name"] and sum(r["organisation_name"].lower() in shown_name(o).lower() for o in good) == 1
    )

    sign_in(page, base_url, "bob")
    nav(page).get_by_role("link", name="Import", exact=True).click()
    expect(page).to_have_url(f"{base_url}/clients/import/")
    page.get_by_label("CSV file").set_input_files(
        {"name": "clients.csv", "mimeType": "text/csv", "buffer": rows_to_csv(rows).encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()

    # Preview: nothing is imported yet, and the bad rows in the first ten are already flagged.
    expect(page.get_by_text("40 rows found, 2 with problems that keep them out of the import.")).to_be_visible()
    preview = page.locator("table.preview tbody tr")
    expect(preview).to_have_count(10)
    expect(preview.nth(bad_tfn)).to_contain_text("tfn: This TFN fails the TFN check")
    expect(preview.nth(bad_abn)).to_contain_text("abn: This ABN fails the ABN check")
    assert not Client.objects.filter(practice=firm).exists()

    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/progress/" in r.url and r.headers.get("hx-request") else None)
    page.get_by_role("button", name="Import 38 rows").click()
    status = page.get_by_test_id("import-status")
    expect(status).to_have_text("Queued")  # no worker yet: the page polls while the job waits
    expect(page.locator("#import-progress")).to_have_attribute("hx-trigger", "every 1s")

    worker = rq_worker()
    try:
        expect(status).to_have_text("Finished", timeout=30_000)
    except AssertionError:
        worker_log = rq_worker.log_path.read_text(errors="replace")
        raise AssertionError(f"import did not finish; worker exit={worker.poll()}; log:\n{worker_log}") from None
    assert polls, "the progress element never polled"
    expect(page.locator("#import-progress")).to_contain_text("38 clients added, 2 rows not imported.")
    assert page.locator("#import-progress").get_attribute("hx-trigger") is None  # polling has stopped

    errors = page.locator("[data-testid=row-errors] tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.nth(0).locator("td")).to_have_text([str(bad_tfn + 2), "tfn", re.compile("fails the TFN check")])
    expect(errors.nth(1).locator("td")).to_have_text([str(bad_abn + 2), "abn", re.compile("fails the ABN check")])
    job = ImportJob.objects.get(practice=firm)
    assert (job.status, job.created_count, job.error_count) == (ImportStatus.DONE, 38, 2)
    assert Client.objects.filter(practice=firm).count() == 38

    # Live search in the client list, then the client's page.
    nav(page).get_by_role("link", name="Clients", exact=True).click()
    client_rows = page.locator("#client-rows tbody tr")
    expect(client_rows).to_have_count(38)
    page.evaluate("window.notReloaded = true")
    with page.expect_response(
        lambda r: urlsplit(r.url).path == "/clients/" and r.request.headers.get("hx-request") == "true"
    ) as search:
        page.get_by_label("Search").fill(target["organisation_name"])
    assert search.value.ok
    expect(client_rows).to_have_count(1)
    assert page.evaluate("window.notReloaded === true")  # the rows were swapped in place, not a page load
    page.get_by_role("link", name=target["organisation_name"]).click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base_url)}/clients/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(target["organisation_name"])
    expect(page.locator("#tfn")).to_contain_text(f"*** *** {target['tfn'][-3:]}")
    expect(page.locator("#tfn")).not_to_contain_text(target["tfn"])
    # An agent may reveal the full TFN (the contrast to the read-only test).
    page.get_by_role("button", name=re.compile("^Reveal")).click()
    full = target["tfn"]
    expect(page.get_by_test_id("tfn-full")).to_have_text(f"{full[:3]} {full[3:6]} {full[6:]}")


def test_read_only_user_cannot_reach_admin_pages_or_reveal_a_tfn(page: Page, base_url: str, firm: Practice) -> None:
    reader = make_user(firm, "rita", Role.READ_ONLY)
    client = add_clients(firm, 3)[0]
    sign_in(page, base_url, "rita")

    links = nav(page)
    expect(links.get_by_role("link", name="Clients", exact=True)).to_be_visible()
    for label in ("Staff", "Access review", "Audit trail", "Import"):
        expect(links.get_by_role("link", name=label, exact=True)).to_have_count(0)

    for path in ("/staff/", "/access-review/", "/audit/"):
        response = page.goto(f"{base_url}{path}")
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Not permitted")).to_be_visible()

    page.goto(f"{base_url}/clients/{client.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(client.display_name)
    expect(page.locator("#tfn")).to_contain_text(f"*** *** {client.tfn_last3}")
    expect(page.get_by_role("button", name=re.compile("Reveal"))).to_have_count(0)

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    reveal = page.request.post(f"{base_url}/clients/{client.pk}/tfn/", headers={"X-CSRFToken": csrf})
    assert reveal.status == 403
    body = reveal.text()
    # Refused by the permission check (not by CSRF), and nothing of the TFN is in the answer.
    assert "You do not have permission to view full TFNs." in body
    assert client.reveal_tfn() not in body
    assert AuditEvent.objects.filter(actor=reader, action="client.tfn_reveal_refused").count() == 1
    assert not AuditEvent.objects.filter(action="client.tfn_revealed").exists()
