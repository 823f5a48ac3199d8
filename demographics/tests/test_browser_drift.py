"""The drift watch in real Chromium: the stand-in ATO changes a client's bank account behind the practice's back;
an admin starts the watch from the dashboard, follows its progress, and the urgent possible-fraud alert shows the
old and new accounts side by side."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; without this Django refuses ORM calls from the test.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ato_gateway import api
from ato_gateway.wire.documents import cufi
from ato_gateway.wire.documents.common import ClientIdentifier
from clients.models import Client
from demographics import services
from portal.capabilities import Role
from portal.models import Practice, User
from tests.ato_fixtures import AGENT_TAN, Ato, agent_practice_at_sandbox
from tests.browser_support import sign_in
from tests.conftest import make_user
from tests.gateway_fixtures import Sandbox, pump

pytestmark = pytest.mark.browser

ANSWER_MS = 60_000


@pytest.fixture
def world(firm: Practice, sandbox: Sandbox) -> Ato:
    admin = make_user(firm, "alice", Role.PRACTICE_ADMIN)
    return agent_practice_at_sandbox(sandbox, firm, admin)


def test_a_bank_account_changed_behind_the_practices_back_raises_the_urgent_alert(
    page: Page, base_url: str, world: Ato, rq_worker: Any, settings: Any
) -> None:
    for setting, value in world.sandbox.env().items():  # this process asks too, before the worker starts
        setattr(settings, setting, value)
    [person] = world.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND EXISTS (SELECT 1 FROM reg_links l JOIN "
        "reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.level = 'CLIENT' AND "
        "l.end_date IS NULL) AND EXISTS (SELECT 1 FROM reg_bank_accounts b WHERE b.taxpayer_id = t.id AND "
        "b.account_id IS NULL AND b.end_date IS NULL) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )
    client = Client(practice=world.practice, kind="individual", family_name=person["family_name"])
    client.set_tfn(person["tfn"])
    client.save()
    admin = User.objects.get(username="alice")
    first = services.snapshot_ask(user=admin, client=client, service="bank")
    pump(lambda: api.Question.objects.get(pk=first.question_id).is_settled, timeout=60)
    name = f"{person['given_name'] or ''} {person['family_name']}".strip()[:32]
    account = cufi.FinancialInstitutionAccount(bsb="062000", number="55554444", name=name)
    changed = world.result(cufi.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), bank_account=account))
    assert changed.ok, changed.errors
    rq_worker(env_extra=world.sandbox.env(), scheduler=True)

    sign_in(page, base_url, "alice")
    expect(page.get_by_test_id("fraud-alert")).to_have_count(0)
    page.get_by_role("button", name="Watch for changes now").click()
    expect(page).to_have_url(re.compile(r"/demographics/watch/\d+/$"))
    expect(page.get_by_test_id("watch-progress")).to_have_attribute("data-finished", "true", timeout=ANSWER_MS)
    page.get_by_role("link", name="← Dashboard").click()
    alert = page.get_by_test_id("fraud-alert")
    # The watch's answers are compared as they arrive: the dashboard shows the alert once the bank answer is in.
    for _ in range(30):
        if alert.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(alert).to_contain_text("1 urgent possible-fraud alert")
    alerts = page.get_by_test_id("drift-alerts")
    expect(alerts).to_contain_text("…444")
    expect(alerts.get_by_role("table")).to_contain_text("Before")
