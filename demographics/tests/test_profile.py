"""Changes of a client's details (CUDTL) and authorised contact (CUAUTHCNTCT) the whole way to the stand-in ATO:
Validate first, then Submit, with nothing changed at the ATO until the submit; a detail the entity cannot have
refused at Validate in plain words, with nothing changed and nothing to submit."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import resolve, reverse

from clients.models import Client
from demographics.models import AddressChangeStatus, ProfileChange
from portal.models import User
from tests.ato_fixtures import Ato
from tests.gateway_fixtures import pump

from .test_snapshots import register_client, taxpayer

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
