"""Address changes the whole way to the stand-in ATO: one client's, Validate and then Submit; an invalid postcode
for its state refused at Validate with nothing changed; a bulk change in which one client is refused and the others
are changed, with the progress and each client's outcome; an outage in the middle of a bulk change."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import resolve, reverse
from django.utils.html import escape

from ato_gateway import api
from clients.models import Client, ClientAccount
from demographics.models import AddressBulk, AddressChange, AddressChangeStatus
from portal.models import User
from tests.ato_fixtures import AGENT_TAN, Ato
from tests.gateway_fixtures import pump

from .test_snapshots import register_client, taxpayer

pytestmark = pytest.mark.django_db(transaction=True)

NEW = {"usage": "POS", "line1": "Level 3, 12 Harbour St", "locality": "SYDNEY", "state": "NSW", "postcode": "2000"}
_LINKED = (
    "EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id "
    "AND a.tan = ? AND l.level = 'CLIENT' AND l.end_date IS NULL)"
)


def _postal(ato: Ato, person: dict[str, Any]) -> list[dict[str, Any]]:
    return ato.query(
        "SELECT line1, locality, state, postcode FROM reg_addresses WHERE taxpayer_id = ? AND account_id IS NULL "
        "AND usage = 'POS' AND end_date IS NULL",
        person["id"],
    )


def _settled(change: AddressChange) -> AddressChange:
    def done() -> bool:
        change.refresh_from_db()
        return change.question is not None and change.question.is_settled

    pump(done, timeout=60)
    return change


def _start(http: HttpClient, client: Client, **change: str) -> AddressChange:
    response = http.post(reverse("demographics:address_start", args=[client.pk]), {**NEW, **change})
    assert response.status_code == 302, response.content.decode()[:800]
    return AddressChange.objects.get(pk=resolve(response["Location"]).kwargs["pk"])


def test_an_address_is_validated_then_submitted(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'IND'")
    client = register_client(ato, person)
    http = login(agent)
    before = _postal(ato, person)
    change = _settled(_start(http, client))
    assert change.status == AddressChangeStatus.VALIDATED and change.submit_question_id is None
    assert _postal(ato, person) == before  # Validate changed nothing
    page = http.get(reverse("demographics:address_change", args=[change.pk])).content.decode()
    assert "Submit the new address" in page
    assert http.post(reverse("demographics:address_submit", args=[change.pk])).status_code == 302
    change = _settled(change)
    assert change.status == AddressChangeStatus.ACCEPTED
    assert _postal(ato, person) == [{"line1": NEW["line1"], "locality": "SYDNEY", "state": "NSW", "postcode": "2000"}]
    # A second click asks nothing more.
    http.post(reverse("demographics:address_submit", args=[change.pk]))
    assert AddressChange.objects.get(pk=change.pk).submit_question_id == change.submit_question_id
    page = http.get(reverse("demographics:address_change", args=[change.pk])).content.decode()
    assert 'data-testid="address-accepted"' in page


def test_a_postcode_not_of_its_state_is_refused_and_cannot_be_submitted(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'IND'")
    client = register_client(ato, person)
    http = login(agent)
    before = _postal(ato, person)
    change = _settled(_start(http, client, state="VIC"))  # 2000 is Sydney's
    assert change.status == AddressChangeStatus.REFUSED
    assert change.validate_question is not None
    errors = api.reply(change.validate_question).errors
    assert [i.code for i in errors] == ["CMN.ATO.CUADDR.ADR01"]
    page = http.get(reverse("demographics:address_change", args=[change.pk])).content.decode()
    assert escape(api.item_in_plain_words(errors[0])) in page and "Submit the new address" not in page
    http.post(reverse("demographics:address_submit", args=[change.pk]))
    assert AddressChange.objects.get(pk=change.pk).submit_question_id is None and _postal(ato, person) == before


def test_a_bulk_change_with_one_client_refused(ato: Ato, agent: User, login: Any) -> None:
    people = ato.query(
        f"SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND {_LINKED} ORDER BY t.id LIMIT 4",  # noqa: S608
        AGENT_TAN,
    )
    stranger = taxpayer(ato, "t.entity = 'IND'", linked=False)
    clients = [register_client(ato, p) for p in [*people, stranger]]
    http = login(agent)
    response = http.post(reverse("demographics:bulk_start"), {**NEW, "group": "all"})
    assert response.status_code == 302, response.content.decode()[:800]
    bulk = AddressBulk.objects.get()
    assert bulk.changes.count() == len(clients)  # type: ignore[attr-defined]
    url = reverse("demographics:address_bulk", args=[bulk.pk])

    def finished() -> bool:
        counts = bulk.counts()
        return counts["accepted"] + counts["refused"] + counts["failed"] == len(clients)

    pump(finished, timeout=90)
    counts = bulk.counts()
    assert (counts["accepted"], counts["refused"]) == (4, 1)
    assert AddressChange.objects.get(client=clients[-1]).status == AddressChangeStatus.REFUSED
    for person in people:
        assert _postal(ato, person)[0]["line1"] == NEW["line1"]
    page = http.get(url).content.decode()
    assert "5 of 5 clients done" in page and "4 changed · 1 refused" in page and 'data-finished="true"' in page
    assert escape(str(clients[-1])) in page


def test_an_outage_in_the_middle_of_a_bulk_change_leaves_no_client_half_changed(
    ato: Ato, agent: User, login: Any, settings: Any
) -> None:
    people = ato.query(
        f"SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND {_LINKED} ORDER BY t.id LIMIT 3",  # noqa: S608
        AGENT_TAN,
    )
    for person in people:
        register_client(ato, person)
    settings.GATEWAY_MAX_ATTEMPTS = 2
    ato.sandbox.control("POST", "faults", json={"outage_seconds": 600})
    http = login(agent)
    http.post(reverse("demographics:bulk_start"), {**NEW, "group": "all"})
    bulk = AddressBulk.objects.get()
    pump(lambda: bulk.counts()["failed"] == 3, timeout=90)
    ato.sandbox.clear_faults()
    for person in people:
        assert _postal(ato, person)[0]["line1"] != NEW["line1"]
    page = http.get(reverse("demographics:address_bulk", args=[bulk.pk])).content.decode()
    assert "3 could not be completed" in page


def test_one_address_for_the_client_and_every_account_of_it(ato: Ato, agent: User, login: Any) -> None:
    many = f"{_LINKED} AND (SELECT COUNT(*) FROM reg_accounts a WHERE a.taxpayer_id = t.id) >= 2"  # noqa: S608
    [person] = ato.query(f"SELECT t.* FROM reg_taxpayers t WHERE {many} ORDER BY t.id LIMIT 1", AGENT_TAN)  # noqa: S608
    client = register_client(ato, person)
    held = ato.query("SELECT id, kind, branch FROM reg_accounts WHERE taxpayer_id = ? ORDER BY id", person["id"])
    kinds = {"ITX": "income_tax", "AS": "activity_statement", "FBT": "fbt"}
    for account in held:
        ClientAccount.objects.create(client=client, kind=kinds[account["kind"]], branch=account["branch"] or "")
    http = login(agent)
    response = http.post(reverse("demographics:address_start", args=[client.pk]), {**NEW, "every_account": "on"})
    assert response.status_code == 302, response.content.decode()[:800]
    bulk = AddressBulk.objects.get()
    [client_level, accounts] = list(bulk.changes.order_by("pk"))  # type: ignore[attr-defined]
    assert client_level.accounts == [] and len(accounts.accounts) == len(held)  # one message for the accounts
    pump(lambda: bulk.counts()["accepted"] == 2, timeout=90)
    assert _postal(ato, person)[0]["line1"] == NEW["line1"]
    for account in held:
        [postal] = ato.query(
            "SELECT line1 FROM reg_addresses WHERE taxpayer_id = ? AND account_id = ? AND usage = 'POS' "
            "AND end_date IS NULL",
            person["id"],
            account["id"],
        )
        assert postal["line1"] == NEW["line1"]
    page = http.get(reverse("demographics:address_bulk", args=[bulk.pk])).content.decode()
    assert "2 changed · 0 refused" in page
