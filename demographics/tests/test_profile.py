"""Changes of a client's details (CUDTL) and authorised contact (CUAUTHCNTCT) the whole way to the stand-in ATO:
Validate first, then Submit, with nothing changed at the ATO until the submit; a detail the entity cannot have
refused at Validate in plain words, with nothing changed and nothing to submit."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import resolve, reverse

from ato_gateway import api
from ato_gateway.wire.documents import cuauthcntct
from ato_gateway.wire.documents.common import Account
from clients.models import AccountKind, Client, ClientAccount
from demographics.models import AddressChangeStatus, ProfileChange
from portal.models import User
from tests.ato_fixtures import Ato
from tests.gateway_fixtures import pump

from .test_snapshots import _account_client, register_client, taxpayer

pytestmark = pytest.mark.django_db(transaction=True)


def _settled(change: ProfileChange) -> ProfileChange:
    def done() -> bool:
        change.refresh_from_db()
        return change.question is not None and change.question.is_settled

    pump(done, timeout=60)
    return change


def _start(http: HttpClient, client: Client, url: str, values: dict[str, str]) -> ProfileChange:
    response = http.post(reverse(url, args=[client.pk]), values)
    assert response.status_code == 302, response.content.decode()[:800]
    return ProfileChange.objects.get(pk=resolve(response["Location"]).kwargs["pk"])


def _contact(ato: Ato, person: dict[str, Any]) -> list[dict[str, Any]]:
    return ato.query(
        "SELECT family_name, given_name, phone FROM reg_contacts WHERE taxpayer_id = ? AND account_id IS NULL "
        "AND end_date IS NULL",
        person["id"],
    )


def test_an_authorised_contact_is_validated_then_submitted(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'COY'")
    client = register_client(ato, person)
    http = login(agent)
    new = {"family_name": "Marsh", "given_name": "Pia", "position": "Director", "phone": "0299990000"}
    change = _settled(_start(http, client, "demographics:contact_start", new))
    assert change.status == AddressChangeStatus.VALIDATED
    assert ("Marsh", "Pia") not in [(c["family_name"], c["given_name"]) for c in _contact(ato, person)]
    page = http.get(reverse("demographics:profile_change", args=[change.pk])).content.decode()
    assert "Submit the change" in page
    assert http.post(reverse("demographics:profile_submit", args=[change.pk])).status_code == 302
    change = _settled(change)
    assert change.status == AddressChangeStatus.ACCEPTED
    assert [(c["family_name"], c["given_name"]) for c in _contact(ato, person)] == [("Marsh", "Pia")]
    # A second submit finds it submitted already and sends nothing more.
    assert http.post(reverse("demographics:profile_submit", args=[change.pk])).status_code == 302
    change.refresh_from_db()
    assert change.status == AddressChangeStatus.ACCEPTED


def test_a_detail_the_entity_cannot_have_is_refused_and_nothing_changes(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'IND'")
    client = register_client(ato, person)
    http = login(agent)
    change = _settled(_start(http, client, "demographics:details_start", {"organisation_name": "Marsh Pty Ltd"}))
    assert change.status == AddressChangeStatus.REFUSED
    page = http.get(reverse("demographics:profile_change", args=[change.pk])).content.decode()
    assert "Submit the change" not in page and "CMN.ATO" not in page
    assert http.post(reverse("demographics:profile_submit", args=[change.pk])).status_code == 302
    change.refresh_from_db()
    assert change.status == AddressChangeStatus.REFUSED and change.submit_question is None
    [row] = ato.query("SELECT organisation_name FROM reg_taxpayers WHERE id = ?", person["id"])
    assert row["organisation_name"] is None


def test_a_family_name_is_changed_at_the_ato(ato: Ato, agent: User, reader: User, login: Any) -> None:
    person = taxpayer(ato, "t.entity = 'IND'")
    client = register_client(ato, person)
    assert login(reader).get(reverse("demographics:details_start", args=[client.pk])).status_code == 403
    http = login(agent)
    change = _settled(_start(http, client, "demographics:details_start", {"family_name": "Marsh", "given_name": "Pia"}))
    assert change.status == AddressChangeStatus.VALIDATED
    [row] = ato.query("SELECT family_name FROM reg_taxpayers WHERE id = ?", person["id"])
    assert row["family_name"] == person["family_name"]  # Validate changes nothing
    http.post(reverse("demographics:profile_submit", args=[change.pk]))
    assert _settled(change).status == AddressChangeStatus.ACCEPTED
    [row] = ato.query("SELECT family_name, given_name FROM reg_taxpayers WHERE id = ?", person["id"])
    assert (row["family_name"], row["given_name"]) == ("Marsh", "Pia")


def test_an_accounts_contact_is_changed_at_that_account_only(ato: Ato, agent: User, login: Any) -> None:
    person, client = _account_client(ato)  # activity statement account 001, at the ATO and in the register
    ClientAccount.objects.create(client=client, kind=AccountKind.ACTIVITY_STATEMENT, branch="002")  # not at the ATO
    http = login(agent)
    url = reverse("demographics:contact_start", args=[client.pk])
    page = http.get(url).content.decode()
    assert all(f'value="{v}"' in page for v in ("", "AS:001", "AS:002")) and "Activity statement account 001" in page
    new = {"level": "AS:001", "family_name": "Marsh", "given_name": "Pia", "phone": "0299990000"}
    change = _settled(_start(http, client, "demographics:contact_start", new))
    assert change.status == AddressChangeStatus.VALIDATED
    assert change.validate_question is not None
    asked = api.question_request(change.validate_question)
    assert isinstance(asked, cuauthcntct.ValidateRequest) and asked.account == Account("AS", "001")
    assert change.summary.startswith("Activity statement account 001: ") and "family name: Marsh" in change.summary
    http.post(reverse("demographics:profile_submit", args=[change.pk]))
    assert _settled(change).status == AddressChangeStatus.ACCEPTED
    at_account = ato.query(
        "SELECT c.family_name FROM reg_contacts c JOIN reg_accounts a ON a.id = c.account_id WHERE "
        "c.taxpayer_id = ? AND a.kind = 'AS' AND a.branch = '001' AND c.end_date IS NULL",
        person["id"],
    )
    assert [c["family_name"] for c in at_account] == ["Marsh"]
    assert "Marsh" not in [c["family_name"] for c in _contact(ato, person)]  # the client level's is unchanged
    # An account the register holds and the ATO does not: refused in plain words, nothing to submit.
    refused = _settled(_start(http, client, "demographics:contact_start", {**new, "level": "AS:002"}))
    assert refused.status == AddressChangeStatus.REFUSED
    page = http.get(reverse("demographics:profile_change", args=[refused.pk])).content.decode()
    assert "The ATO holds no record of activity statement account 002 for this client" in page
    assert "Submit the change" not in page
    # An account the register does not hold is not offered, and not taken.
    response = http.post(url, {**new, "level": "FBT:"})
    assert response.status_code == 400 and ProfileChange.objects.count() == 2
