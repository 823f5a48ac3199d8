"""Changing where the ATO sends the letters, the whole way to the stand-in ATO: one client's change, Validate and
then Submit, held back until the client's written authorisation is recorded when the letters go to the practice;
a bulk change for clients chosen by a CSV, in which one client is refused and the others are changed, with the
progress and each client's outcome."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve, reverse
from django.utils import timezone

from clients.models import Client
from communications import preferences
from communications.models import (
    Preference,
    PreferenceAuthority,
    PreferenceBulk,
    PreferenceChange,
    PreferenceChangeStatus,
)
from portal.models import AuditEvent, User
from portal.sealing import unseal_bytes
from tests.ato_fixtures import AGENT_TAN, Ato
from tests.gateway_fixtures import pump

from .support import client_from_ato

pytestmark = pytest.mark.django_db(transaction=True)

_LINKED = (
    "EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id "
    "AND a.tan = ? AND l.level = 'CLIENT' AND l.end_date IS NULL)"
)


def _taxpayers(ato: Ato, n: int, *, linked: bool = True) -> list[dict[str, Any]]:
    where = _LINKED if linked else f"NOT {_LINKED}"
    return ato.query(f"SELECT t.* FROM reg_taxpayers t WHERE {where} ORDER BY t.id LIMIT ?", AGENT_TAN, n)  # noqa: S608


def _category_rows(ato: Ato, taxpayer_id: int) -> list[dict[str, Any]]:
    return ato.query(
        "SELECT category, channel FROM reg_category_preferences WHERE taxpayer_id = ? ORDER BY category", taxpayer_id
    )


def _settled(change: PreferenceChange) -> PreferenceChange:
    def done() -> bool:
        change.refresh_from_db()
        question = change.submit_question or change.validate_question
        return question is not None and question.is_settled

    pump(done, timeout=60)
    return change


def test_letters_to_the_practice_wait_for_the_clients_authorisation(ato: Ato, agent: User, login: Any) -> None:
    [person] = _taxpayers(ato, 1)
    client = client_from_ato(ato.practice, person)
    http = login(agent)
    response = http.post(
        reverse("communications:preference_start", args=[client.pk]), {"channel": "ELEC", "categories": ["ITX"]}
    )
    assert response.status_code == 302, response.content.decode()[:800]
    change = _settled(PreferenceChange.objects.get(pk=resolve(response["Location"]).kwargs["pk"]))
    assert change.status == PreferenceChangeStatus.VALIDATED and _category_rows(ato, person["id"]) == []
    url = reverse("communications:preference_change", args=[change.pk])
    assert 'data-testid="authority-needed"' in http.get(url).content.decode()

    http.post(reverse("communications:preference_submit", args=[change.pk]))
    assert PreferenceChange.objects.get(pk=change.pk).submit_question_id is None  # refused before asking

    scan = b"%PDF-1.4 signed authority"
    document = SimpleUploadedFile("authority.pdf", scan, content_type="application/pdf")
    upload = {"signed_on": timezone.localdate().isoformat(), "document": document}
    http.post(reverse("communications:preference_authority", args=[change.pk]), upload)
    [authority] = PreferenceAuthority.objects.filter(client=client)
    assert unseal_bytes(authority.document) == scan and scan not in authority.document.encode()
    assert AuditEvent.objects.filter(action="communications.authority_recorded").count() == 1

    assert http.post(reverse("communications:preference_submit", args=[change.pk])).status_code == 302
    change = _settled(change)
    assert change.status == PreferenceChangeStatus.ACCEPTED
    assert _category_rows(ato, person["id"]) == [{"category": "ITX", "channel": "ELEC"}]
    kept = Preference.objects.get(client=client)
    assert kept.categories["ITX"] == {"channel": "ELEC", "email": "", "default": False}
    assert {"communications.preference_validate", "communications.preference_submit"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )
    tab = http.get(reverse("communications:client_tab", args=[client.pk])).content.decode()
    assert 'data-testid="preference-categories"' in tab and "Income tax" in tab


def test_a_bulk_change_by_csv_with_one_client_refused(ato: Ato, agent: User, login: Any) -> None:
    people = _taxpayers(ato, 4)
    [stranger] = _taxpayers(ato, 1, linked=False)
    clients = [client_from_ato(ato.practice, p) for p in [*people, stranger]]
    Client.objects.create(practice=ato.practice, kind="company", organisation_name="Not Chosen Pty Ltd")
    # Two named by the register's number, three by TFN.
    csv = f"{clients[0].pk},{clients[1].pk}\n" + "\n".join(p["tfn"] for p in [*people[2:], stranger])
    http = login(agent)
    response = http.post(
        reverse("communications:preference_bulk_start"),
        {"channel": "POST", "categories": ["AS", "DEBT"], "clients_csv": csv, "group": "all"},
    )
    assert response.status_code == 302, response.content.decode()[:800]
    bulk = PreferenceBulk.objects.get()
    assert bulk.changes.count() == 5  # type: ignore[attr-defined]

    def finished() -> bool:
        counts = bulk.counts()
        return counts["accepted"] + counts["refused"] + counts["failed"] == 5

    pump(finished, timeout=90)
    counts = bulk.counts()
    assert (counts["accepted"], counts["refused"]) == (4, 1)
    assert PreferenceChange.objects.get(client=clients[-1]).status == PreferenceChangeStatus.REFUSED
    for person in people:
        assert _category_rows(ato, person["id"]) == [
            {"category": "AS", "channel": "POST"},
            {"category": "DEBT", "channel": "POST"},
        ]
    assert _category_rows(ato, stranger["id"]) == []
    page = http.get(reverse("communications:preference_bulk", args=[bulk.pk])).content.decode()
    assert "5 of 5 clients done" in page and "4 changed · 1 refused" in page and 'data-finished="true"' in page


def test_a_bulk_change_to_the_practice_records_each_clients_authorisation_first(
    ato: Ato, agent: User, admin: User, login: Any
) -> None:
    clients = [client_from_ato(ato.practice, p) for p in _taxpayers(ato, 3)]
    http = login(agent)
    data = {"channel": "ELEC", "group": "all"}
    refused = http.post(reverse("communications:preference_bulk_start"), data)
    assert refused.status_code == 400 and "authorisation" in refused.content.decode()
    assert not PreferenceBulk.objects.exists() and not PreferenceAuthority.objects.exists()
    signed = {**data, "signed_on": timezone.localdate().isoformat(), "held_by": admin.pk}
    assert http.post(reverse("communications:preference_bulk_start"), signed).status_code == 302
    assert sorted(PreferenceAuthority.objects.values_list("client_id", "held_by_id")) == sorted(
        (c.pk, admin.pk) for c in clients
    )


def test_a_csv_names_clients_by_number_or_tfn_and_masks_a_tfn_it_cannot_match(ato: Ato, agent: User) -> None:
    [one, two] = [client_from_ato(ato.practice, p) for p in _taxpayers(ato, 2)]
    found, unknown = preferences.clients_from_csv(
        user=agent, text=f"{one.pk}\n{two.reveal_tfn()}, {one.reveal_tfn()}\n123456782\n999999"
    )
    assert sorted(c.pk for c in found) == sorted([one.pk, two.pk])
    assert unknown == ["TFN ending 782", "999999"]


def test_an_ato_outage_in_the_middle_of_a_bulk_change_keeps_the_answered_and_resumes_the_rest_once_each(
    ato: Ato, agent: User, login: Any, settings: Any
) -> None:
    from ato_gateway import api
    from ato_gateway.api import Question

    settings.GATEWAY_MAX_ATTEMPTS = 2
    clients = [client_from_ato(ato.practice, t) for t in _taxpayers(ato, 4) + _taxpayers(ato, 1, linked=False)]
    bulk = preferences.preference_bulk_start(
        user=agent, clients=clients, wanted=preferences.Wanted("POST", "", ("ITX",))
    )
    rows = {row.client_id: row for row in bulk.changes.all()}  # type: ignore[attr-defined]
    answered = [rows[c.pk] for c in (clients[0], clients[1], clients[4])]  # two changed, the unlinked one refused
    cut_off = rows[clients[2].pk]  # validated; its Submit applied by the ATO, but the answer lost on the way back

    def send(questions: list[Question | None]) -> None:
        for question in questions:
            assert question is not None and api.question_send_now(question, worker="test")

    # The ATO answers three clients, and applies a fourth's Submit, before it goes down.
    send([row.validate_question for row in [*answered, cut_off]])
    assert preferences.preference_bulk_submit(bulk_id=bulk.pk) == 3
    for row in [*answered, cut_off]:
        row.refresh_from_db()
    send([row.submit_question for row in answered[:2]])
    # A second between attempts, so that the page can be seen while the gateway keeps trying.
    settings.GATEWAY_BACKOFF_BASE_SECONDS = settings.GATEWAY_BACKOFF_CAP_SECONDS = 1
    ato.sandbox.faults(next=["reset"])
    send([cut_off.submit_question])
    for row in answered:
        row.refresh_from_db()
    before = {row.pk: (row.status, row.validate_question_id, row.submit_question_id) for row in answered}
    assert [status for status, _, _ in before.values()] == ["accepted", "accepted", "refused"]
    cut_off_submit = cut_off.submit_question_id

    ato.sandbox.faults(outage_seconds=600)
    http = login(agent)
    url = reverse("communications:preference_bulk", args=[bulk.pk])
    pump(lambda: 'data-testid="bulk-retrying"' in http.get(url).content.decode(), timeout=60)
    page = http.get(url).content.decode()
    assert "The ATO is not answering at the moment: the portal keeps trying for" in page
    assert "3 of 5 clients done" in page
    pump(lambda: bulk.counts()["failed"] == 2, timeout=60)
    page = http.get(url).content.decode()
    assert (
        "2 clients could not be completed: the ATO could not be reached" in page and "Try again for 2 clients" in page
    )
    assert "bulk-retrying" not in page

    ato.sandbox.clear_faults()
    response = http.post(reverse("communications:preference_bulk_resume", args=[bulk.pk]))
    assert response.status_code == 302
    assert bulk.counts()["failed"] == 0  # waiting for the ATO again, not shown as given up
    pump(lambda: bulk.counts()["accepted"] == 4, timeout=60)
    assert bulk.counts() | {"accepted": 0, "refused": 0} == dict.fromkeys(PreferenceChangeStatus.values, 0)
    assert bulk.counts()["refused"] == 1
    for row in answered:  # the clients answered before the outage were not asked again
        row.refresh_from_db()
        assert (row.status, row.validate_question_id, row.submit_question_id) == before[row.pk]
    cut_off.refresh_from_db()
    assert (cut_off.status, cut_off.submit_question_id) == ("accepted", cut_off_submit)
    page = http.get(url).content.decode()
    assert "4 changed · 1 refused · 0 could not be completed" in page and "Try again" not in page

    # At the ATO: one Submit a client changed, each applied once, and each client's income tax letters by post.
    submits = [
        Question.objects.get(pk=pk).ebms_message_id
        for pk in bulk.changes.exclude(submit_question=None).values_list("submit_question", flat=True)  # type: ignore[attr-defined]
    ]
    assert len(set(submits)) == 4
    applied = ato.sandbox.stats()["applied"]
    assert [applied.get(message_id) for message_id in submits] == [1, 1, 1, 1]
    for client in clients[:4]:
        assert Preference.objects.get(client=client).categories["ITX"]["channel"] == "POST"
    assert AuditEvent.objects.filter(action="communications.preference_bulk_resumed").count() == 1
