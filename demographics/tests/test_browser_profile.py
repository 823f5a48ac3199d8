"""A client's details (CUDTL) and authorised contact (CUAUTHCNTCT) changed in real Chromium against the live server,
a real worker subprocess and the stand-in ATO: the agent fills the change page, the ATO checks it (Validate), the
agent submits it, and the stand-in ATO then holds it; the contact is what the Contacts section reads back."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from clients.models import AccountKind, Client, ClientAccount
from portal.capabilities import Role
from portal.models import Practice
from tests.ato_fixtures import AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser

ANSWER_MS = 90_000
_LINKED_INDIVIDUAL = (
    "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND EXISTS (SELECT 1 "
    "FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? "
    "AND l.level = 'CLIENT' AND l.end_date IS NULL) ORDER BY t.id LIMIT 1"
)


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    return agent_practice_at_sandbox(sandbox, firm, admin)


def _validate_then_submit(page: Page) -> None:
    """Check with the ATO, wait for its check, submit, and wait for the ATO to have made the change."""
    page.get_by_role("button", name="Check with the ATO").click()
    expect(page).to_have_url(re.compile(r"/demographics/profile-changes/\d+/$"))
    page.get_by_role("button", name="Submit the change").click(timeout=ANSWER_MS)
    expect(page.get_by_test_id("profile-accepted")).to_be_visible(timeout=ANSWER_MS)


def test_an_agent_changes_a_clients_name_and_authorised_contact_and_the_ato_holds_them(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    [person] = world.query(_LINKED_INDIVIDUAL, AGENT_TAN)
    client = Client(practice=world.practice, kind="individual", family_name=person["family_name"])
    client.set_tfn(person["tfn"])
    client.save()
    ClientAccount.objects.create(client=client, kind=AccountKind.ACTIVITY_STATEMENT, branch="001")
    rq_worker(env_extra=world.sandbox.env(), scheduler=True)
    sign_in(page, base_url, "bob")

    page.goto(f"{base_url}/demographics/clients/{client.pk}/details/change/")
    page.get_by_label("Family name").fill("Okonkwo-Reyes")
    page.get_by_label("Given name").fill("Adaeze")
    _validate_then_submit(page)
    [held] = world.query("SELECT family_name, given_name FROM reg_taxpayers WHERE id = ?", person["id"])
    assert held == {"family_name": "Okonkwo-Reyes", "given_name": "Adaeze"}

    page.goto(f"{base_url}/demographics/clients/{client.pk}/contact/change/")
    # The level is offered by name, the client's own chosen unless another is (the account's change is a fast test).
    expect(page.get_by_label("Client level")).to_be_checked()
    expect(page.get_by_label("Activity statement account 001")).not_to_be_checked()
    page.get_by_label("Family name").fill("Tran")
    page.get_by_label("Given name").fill("Linh")
    page.get_by_label("Position").fill("Bookkeeper")
    page.get_by_label("Phone").fill("02 9876 5432")  # as the help text writes it
    _validate_then_submit(page)
    current = world.query(
        "SELECT family_name, given_name, position, phone FROM reg_contacts WHERE taxpayer_id = ? "
        "AND account_id IS NULL AND end_date IS NULL",
        person["id"],
    )
    assert current == [{"family_name": "Tran", "given_name": "Linh", "position": "Bookkeeper", "phone": "0298765432"}]

    # The next List reads it back: the client's Authorised contacts section shows the new contact.
    page.goto(f"{base_url}/clients/{client.pk}/?tab=details")
    page.get_by_test_id("demographics-sections").get_by_role("link", name="Authorised contacts").click()
    # The section's own button, once htmx has swapped it in (the Details section has one of the same name).
    page.get_by_test_id("demographics-contacts").get_by_role("button", name="Ask the ATO").click()
    expect(page.get_by_test_id("contacts")).to_contain_text("TRAN, Linh (Bookkeeper), 0298765432", timeout=ANSWER_MS)
