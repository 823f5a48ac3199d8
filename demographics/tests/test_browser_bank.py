"""A bank account change in real Chromium against the live server, a real worker subprocess and the stand-in ATO:
an agent proposes it and cannot approve it; an admin records the call-back and approves with their authenticator
code; the stand-in ATO holds the new account. Each answer of the ATO appears without a reload."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
from typing import Any

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from clients.models import Client
from demographics.models import BankChange, BankChangeStatus
from portal.capabilities import Role
from portal.models import Practice, User
from tests.ato_fixtures import AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import sign_in, sign_out
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox

pytestmark = pytest.mark.browser

ANSWER_MS = 60_000


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    return agent_practice_at_sandbox(sandbox, firm, admin)


def _next_code(user: User) -> str:
    """The code the authenticator shows in the next 30 seconds: the one shown now was spent signing in, and a code
    is accepted once (the device's clock may run a step ahead, which django-otp allows)."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=1):06d}"


def test_an_agent_proposes_a_bank_change_and_an_admin_calls_back_and_approves_it(
    page: Page, base_url: str, world: Ato, rq_worker: Any
) -> None:
    rq_worker(env_extra=world.sandbox.env(), scheduler=True)
    [person] = world.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND EXISTS (SELECT 1 FROM reg_links l JOIN "
        "reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.level = 'CLIENT' AND "
        "l.end_date IS NULL) AND EXISTS (SELECT 1 FROM reg_addresses r WHERE r.taxpayer_id = t.id AND "
        "r.account_id IS NULL AND r.usage = 'PHN' AND r.end_date IS NULL) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )
    client = Client(practice=world.practice, kind="individual", family_name=person["family_name"])
    client.given_names = person["given_name"] or ""
    client.set_tfn(person["tfn"])
    client.save()

    sign_in(page, base_url, "bob")
    page.goto(f"{base_url}/clients/{client.pk}/?tab=details")
    for section, name in (("addresses", "Addresses"), ("bank", "Bank accounts")):
        page.get_by_role("link", name=name).click()
        card = page.get_by_test_id(f"demographics-{section}")  # the section, swapped in, before its button
        card.get_by_role("button", name="Ask the ATO").click()
        asked = page.locator(f'[data-testid="ato-request"][data-kind="{section}"]')
        expect(asked).to_have_attribute("data-status", "answered", timeout=ANSWER_MS)
    page.get_by_role("link", name="Propose a bank account change").click()
    page.get_by_label("BSB").fill("062-000")
    page.get_by_label("Account number").fill("12345678")
    page.get_by_label("Account name").fill(f"{person['given_name'] or ''} {person['family_name']}".strip()[:32])
    page.get_by_role("button", name="Propose the change").click()
    expect(page).to_have_url(re.compile(r"/demographics/bank-changes/\d+/$"))
    change_url = page.url
    page.evaluate("window.notReloaded = true")
    check = page.locator("#bank-validate")
    expect(check).to_have_attribute("data-status", "answered", timeout=ANSWER_MS)
    assert page.evaluate("window.notReloaded === true")  # the ATO's check appeared in place
    expect(check).to_contain_text("The ATO would accept this account.")
    expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)  # the agent cannot approve
    sign_out(page, base_url)

    sign_in(page, base_url, "alice")
    page.goto(change_url)
    change = BankChange.objects.get(client=client)
    page.get_by_role("radio", name=change.numbers_on_file[0]).check()
    page.get_by_role("button", name="Record the call-back").click()
    expect(page.get_by_test_id("callback")).to_contain_text(f"Alice Tester called {change.numbers_on_file[0]}")
    page.get_by_label("Your authenticator code").fill(_next_code(User.objects.get(username="alice")))
    page.get_by_role("button", name="Approve and send to the ATO").click()
    expect(page.get_by_test_id("accepted")).to_be_visible(timeout=ANSWER_MS)
    change.refresh_from_db()
    assert change.status == BankChangeStatus.ACCEPTED and change.approved_by is not None
    held = world.query(
        "SELECT bsb, number FROM reg_bank_accounts WHERE taxpayer_id = ? AND account_id IS NULL AND end_date IS NULL",
        person["id"],
    )
    assert held == [{"bsb": "062000", "number": "12345678"}]
