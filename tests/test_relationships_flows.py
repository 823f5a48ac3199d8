"""The agent's relationship flows through the pages, the whole way to the stand-in ATO and back: search, validate
and link; validate-remove and remove; what the ATO refuses, what a read-only member may not do, and the ATO down."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.urls import resolve, reverse
from django.utils.html import escape

from ato_gateway import api
from ato_gateway.api.words import in_plain_words
from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import PersonName
from clients.models import Client, ClientGroup
from clients.tfn import tfn_lookup_hash
from portal.capabilities import Role
from portal.models import AuditEvent, User
from relationships import services
from relationships.models import AtoRequest, BulkJob, BulkRow, ChangeKind, Link, LinkChange, RequestStatus
from relationships.services import warnings_in_plain_words
from tests.ato_fixtures import AGENT_TAN, OTHER_AGENT_TAN, Ato
from tests.conftest import add_clients, make_user
from tests.gateway_fixtures import pump
from tests.questions import event, fabricate_question

pytestmark = pytest.mark.django_db(transaction=True)

# A taxpayer with no current link to us (fixed SQL; the agent number is the parameter).
NOT_OURS = (
    "NOT EXISTS (SELECT 1 FROM reg_links m JOIN reg_agents ma ON ma.id = m.agent_id WHERE m.taxpayer_id = t.id "
    "AND ma.tan = ? AND m.end_date IS NULL)"
)


def _individual(ato: Ato, *, other_agent: bool = False) -> dict[str, Any]:
    """An individual who is not our client; with `other_agent`, one whom the other practice holds at client level."""
    other = (
        " AND EXISTS (SELECT 1 FROM reg_links o JOIN reg_agents oa ON oa.id = o.agent_id WHERE o.taxpayer_id = t.id "
        "AND oa.tan = ? AND o.level = 'CLIENT' AND o.end_date IS NULL)"
    )
    params = [AGENT_TAN, OTHER_AGENT_TAN] if other_agent else [AGENT_TAN]
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND "  # noqa: S608
        + NOT_OURS
        + (other if other_agent else "")
        + " ORDER BY t.id LIMIT 1",
        *params,
    )[0]


def _search_form(person: dict[str, Any], **change: str) -> dict[str, str]:
    return {
        "entity": "individual",
        "identifier_kind": "TFN",
        "identifier": person["tfn"],
        "family_name": person["family_name"],
        "given_name": person["given_name"] or "",
        "date_of_birth": person["birth_date"],
        **change,
    }


def _posted(response: Any) -> AtoRequest:
    """The request a step's POST started (the page it redirected to)."""
    assert response.status_code == 302, response.content.decode()[:500]
    return AtoRequest.objects.get(pk=resolve(response["Location"]).kwargs["pk"])


def _answered(req: AtoRequest) -> AtoRequest:
    pump(lambda: AtoRequest.objects.get(pk=req.pk).is_settled, timeout=90)
    return AtoRequest.objects.select_related("question").get(pk=req.pk)


def _page(http: HttpClient, req: AtoRequest) -> str:
    response = http.get(reverse("relationships:request", args=[req.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _link_whole_client(http: HttpClient, person: dict[str, Any]) -> AtoRequest:
    """Search, validate and submit a client-level link through the pages; the submit's request."""
    searched = _answered(_posted(http.post(reverse("relationships:add"), _search_form(person))))
    assert searched.status == RequestStatus.ANSWERED, searched.reply()
    validated = _answered(
        _posted(http.post(reverse("relationships:validate", args=[searched.pk]), {"links": "CLIENT|||"}))
    )
    assert validated.status == RequestStatus.ANSWERED, validated.reply()
    return _answered(_posted(http.post(reverse("relationships:submit", args=[validated.pk]))))


def test_search_validate_and_link_creates_the_client_with_its_links_history_and_audit(
    ato: Ato, agent: User, login: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    person = _individual(ato, other_agent=True)
    http = login(agent)

    searched = _posted(http.post(reverse("relationships:add"), _search_form(person)))
    assert "Asking the ATO…" in _page(http, searched)
    # A poll gets the fragment alone, marked so that it does not keep the session alive.
    poll = http.get(reverse("relationships:request", args=[searched.pk]), HTTP_HX_REQUEST="true", HTTP_X_POLL="1")
    assert b"<html" not in poll.content and b'hx-trigger="every 1s"' in poll.content
    searched = _answered(searched)
    page = _page(http, searched)
    assert searched.status == RequestStatus.ANSWERED
    assert person["family_name"].upper() in page and person["given_name"] in page
    assert "Check with the ATO" in page and 'value="CLIENT|||"' in page and "every 1s" not in page

    # Nothing chosen: the choice is asked for again, beside the field.
    empty = http.post(reverse("relationships:validate", args=[searched.pk]), {})
    assert (
        empty.status_code == 400
        and "Choose the client level, an account or at least one role." in empty.content.decode()
    )

    validated = _answered(
        _posted(http.post(reverse("relationships:validate", args=[searched.pk]), {"links": "CLIENT|||"}))
    )
    page = _page(http, validated)
    assert f"This will end Other Agents ({OTHER_AGENT_TAN})&#x27;s link for the whole client." in page
    assert "Link the whole client" in page
    assert not Client.objects.filter(tfn_hash=tfn_lookup_hash(person["tfn"])).exists()  # validate changes nothing

    # The step's form posted by htmx replaces the fragment in place and moves the address bar along.
    swapped = http.post(reverse("relationships:submit", args=[validated.pk]), HTTP_HX_REQUEST="true")
    submitted = AtoRequest.objects.get(parent=validated)
    assert swapped["HX-Push-Url"] == reverse("relationships:request", args=[submitted.pk])
    assert b"Asking the ATO" in swapped.content and b"<html" not in swapped.content
    submitted = _answered(submitted)
    page = _page(http, submitted)
    assert "Linked." in page and person["tfn"] not in page

    client = Client.objects.get(practice=ato.practice, tfn_hash=tfn_lookup_hash(person["tfn"]))
    assert submitted.client == client and client.family_name == person["family_name"]
    assert reverse("clients:detail", args=[client.pk]) in page
    [link] = Link.objects.current().filter(client=client)
    assert (link.level, str(link.started_on)) == ("CLIENT", "2026-11-30")
    kinds = sorted(LinkChange.objects.filter(client=client).values_list("kind", "actor"))
    assert (ChangeKind.ADDED, agent.pk) in kinds and (ChangeKind.SUPERSEDED_OTHER, agent.pk) in kinds
    actions = set(AuditEvent.objects.filter(practice=ato.practice).values_list("action", flat=True))
    assert {"relationships.search", "relationships.validate", "relationships.submit", "relationships.linked"} <= actions
    assert "client.created" in actions
    mine = ato.query(
        "SELECT l.level FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id WHERE l.taxpayer_id = ? "
        "AND g.tan = ? AND l.end_date IS NULL",
        person["id"],
        AGENT_TAN,
    )
    assert mine == [{"level": "CLIENT"}]

    # The client's Relationships tab shows the link, and the history with who made each change.
    tab = http.get(reverse("relationships:client_tab", args=[client.pk])).content.decode()
    assert "The whole client" in tab and "30 Nov 2026" in tab and agent.display_name in tab
    assert "Ended another agent&#x27;s link" in tab and "Remove…" in tab
    # A second submit of the same validation shows the link already asked for, and asks nothing again.
    again = http.post(reverse("relationships:submit", args=[validated.pk]))
    assert _posted(again) == submitted
    # Neither the pages nor any log line carried the TFN typed in.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    tfn = person["tfn"]
    assert tfn not in logged and f"{tfn[:3]} {tfn[3:6]} {tfn[6:]}" not in logged
    assert tfn not in tab and tfn not in http.get(reverse("relationships:home")).content.decode()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"family_name": "Nobody-Matches"}, "CMN.ATO.CUREL.SRCH02"),
        ({"date_of_birth": "1901-01-01"}, "CMN.ATO.CUREL.SRCH03"),
        ({"identifier": "123456782"}, "CMN.ATO.CUREL.SRCH01"),
    ],
)
def test_a_wrong_name_birth_date_or_unknown_tfn_is_refused_with_a_clear_message(
    ato: Ato, agent: User, login: Any, change: dict[str, str], said: str
) -> None:
    http = login(agent)
    searched = _answered(_posted(http.post(reverse("relationships:add"), _search_form(_individual(ato), **change))))
    assert searched.status == RequestStatus.REFUSED
    page = _page(http, searched)
    assert "The ATO said no." in page and escape(in_plain_words(said)) in page and "Start again" in page
    assert "Check with the ATO" not in page
    assert not Client.objects.exists() and not Link.objects.exists()


def test_a_tfn_that_fails_its_check_is_refused_beside_the_field_and_not_sent(ato: Ato, agent: User, login: Any) -> None:
    http = login(agent)
    person = _individual(ato)
    bad = person["tfn"][:-1] + str((int(person["tfn"][-1]) + 1) % 10)
    response = http.post(reverse("relationships:add"), _search_form(person, identifier=bad))
    body = response.content.decode()
    assert response.status_code == 200 and "This TFN fails the TFN check" in body and bad not in body
    missing = http.post(reverse("relationships:add"), _search_form(person, date_of_birth="")).content.decode()
    assert "The ATO matches an individual by date of birth" in missing
    assert not AtoRequest.objects.exists()


def test_removal_is_validated_first_with_its_warning_then_ends_the_link(ato: Ato, agent: User, login: Any) -> None:
    http = login(agent)
    person = _individual(ato)
    submitted = _link_whole_client(http, person)
    client = submitted.client
    assert client is not None
    link = Link.objects.current().get(client=client)

    checked = _answered(_posted(http.post(reverse("relationships:remove", args=[client.pk]), {"link": link.pk})))
    page = _page(http, checked)
    assert checked.kind == "validate_remove" and checked.status == RequestStatus.ANSWERED
    assert escape(in_plain_words("CMN.ATO.CUREL.REM02")) in page
    assert "Remove the whole client" in page
    assert Link.objects.current().filter(pk=link.pk).exists()  # nothing ended yet

    removed = _answered(_posted(http.post(reverse("relationships:remove_confirm", args=[checked.pk]))))
    assert removed.status == RequestStatus.ANSWERED and "Removed." in _page(http, removed)
    link.refresh_from_db()
    assert str(link.ended_on) == "2026-11-30" and link.end_reason == "REMOVED"
    assert LinkChange.objects.filter(client=client, kind=ChangeKind.REMOVED, actor=agent).count() == 1
    assert AuditEvent.objects.filter(action="relationships.removed", object_id=str(client.pk)).exists()
    left = ato.query(
        "SELECT count(*) AS n FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id "
        "WHERE l.taxpayer_id = ? AND g.tan = ? AND l.end_date IS NULL",
        person["id"],
        AGENT_TAN,
    )
    assert left == [{"n": 0}]
    tab = http.get(reverse("relationships:client_tab", args=[client.pk])).content.decode()
    assert "no current link with the ATO" in tab and f"?client={client.pk}" in tab and "Removed" in tab


def test_removing_a_link_the_ato_does_not_hold_is_not_authorised_and_keeps_the_link(
    ato: Ato, agent: User, login: Any
) -> None:
    """The portal believes in a link the ATO does not have (CMN.ATO.AUTH.002): said plainly, nothing changed."""
    person = _individual(ato)
    client = Client(practice=ato.practice, kind="individual", family_name=person["family_name"])
    client.set_tfn(person["tfn"])
    client.set_names()
    client.save()
    link = Link.objects.create(practice=ato.practice, client=client, level="CLIENT")
    http = login(agent)
    checked = _answered(_posted(http.post(reverse("relationships:remove", args=[client.pk]), {"link": link.pk})))
    assert checked.status == RequestStatus.REFUSED
    page = _page(http, checked)
    refused = checked.reply().errors
    assert [i.code for i in refused] == ["CMN.ATO.AUTH.002"]
    assert escape(api.item_in_plain_words(refused[0])) in page and "Back to the client" in page
    assert "Remove the whole client" not in page
    assert Link.objects.current().filter(pk=link.pk).exists()
    refused = http.post(reverse("relationships:remove_confirm", args=[checked.pk]))
    assert refused.status_code == 302 and not AtoRequest.objects.filter(kind="remove").exists()


def test_the_ato_down_ends_as_a_plain_failure_and_nothing_is_half_written(ato: Ato, agent: User, login: Any) -> None:
    http = login(agent)
    person = _individual(ato, other_agent=True)
    searched = _answered(_posted(http.post(reverse("relationships:add"), _search_form(person))))
    validated = _answered(
        _posted(http.post(reverse("relationships:validate", args=[searched.pk]), {"links": "CLIENT|||"}))
    )
    before = ato.query("SELECT * FROM reg_links WHERE taxpayer_id = ? ORDER BY id", person["id"])

    ato.sandbox.faults(outage_seconds=120)
    try:
        submitted = _answered(_posted(http.post(reverse("relationships:submit", args=[validated.pk]))))
    finally:
        ato.sandbox.clear_faults()
    assert submitted.status == RequestStatus.FAILED
    page = _page(http, submitted)
    assert "The ATO could not be reached." in page and "Nothing was changed." in page and "Start again" in page
    assert not Client.objects.exists() and not Link.objects.exists() and not LinkChange.objects.exists()
    assert ato.query("SELECT * FROM reg_links WHERE taxpayer_id = ? ORDER BY id", person["id"]) == before


def test_the_atos_answer_wins_after_a_dead_letter_is_resent(
    ato: Ato, agent: User, admin: User, login: Any, settings: Any
) -> None:
    """The portal gave up on the Submit (a dead letter) and said so; the ATO is back, an admin resends from the
    console, and the ATO links the client: that late answer is recorded, not thrown away."""
    settings.GATEWAY_MAX_ATTEMPTS = 2
    http = login(agent)
    person = _individual(ato)
    searched = _answered(_posted(http.post(reverse("relationships:add"), _search_form(person))))
    validated = _answered(
        _posted(http.post(reverse("relationships:validate", args=[searched.pk]), {"links": "CLIENT|||"}))
    )
    ato.sandbox.faults(outage_seconds=120)
    try:
        submitted = _answered(_posted(http.post(reverse("relationships:submit", args=[validated.pk]))))
    finally:
        ato.sandbox.clear_faults()
    assert submitted.status == RequestStatus.FAILED and not Link.objects.exists()
    assert submitted.question is not None

    resent = login(admin).post(reverse("ato_gateway:resend", args=[submitted.question.message_id]))
    assert resent.status_code == 302
    pump(lambda: AtoRequest.objects.get(pk=submitted.pk).status == RequestStatus.ANSWERED, timeout=90)
    submitted = AtoRequest.objects.get(pk=submitted.pk)
    assert submitted.client is not None
    assert list(Link.objects.current().filter(client=submitted.client).values_list("level", flat=True)) == ["CLIENT"]
    assert LinkChange.objects.filter(client=submitted.client, kind=ChangeKind.ADDED).count() == 1
    page = _page(http, submitted)
    assert "Linked." in page and "could not be completed" not in page
    at_ato = ato.query(
        "SELECT a.tan FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id"
        " WHERE l.taxpayer_id = ? AND l.level = 'CLIENT' AND l.end_date IS NULL",
        person["id"],
    )
    assert [r["tan"] for r in at_ato] == [AGENT_TAN]


def test_read_only_staff_see_but_cannot_act(ato: Ato, agent: User, reader: User, login: Any) -> None:
    http = login(agent)
    submitted = _link_whole_client(http, _individual(ato))
    client = submitted.client
    assert client is not None
    link = Link.objects.current().get(client=client)
    validated = submitted.parent
    assert validated is not None and validated.parent is not None

    viewer = login(reader)
    home = viewer.get(reverse("relationships:home")).content.decode()
    assert "Add a client from the ATO" not in home and reverse("relationships:request", args=[submitted.pk]) in home
    tab = viewer.get(reverse("relationships:client_tab", args=[client.pk])).content.decode()
    assert "The whole client" in tab and "Remove…" not in tab and "<form" not in tab
    # A search the ATO answered offers the agent a choice of links, and the read-only member none.
    other = _answered(
        _posted(http.post(reverse("relationships:add"), _search_form(_individual(ato, other_agent=True))))
    )
    assert "Check with the ATO" in _page(http, other) and "Check with the ATO" not in _page(viewer, other)
    assert "Linked." in viewer.get(reverse("relationships:request", args=[submitted.pk])).content.decode()

    forbidden = [
        viewer.get(reverse("relationships:add")),
        viewer.post(reverse("relationships:add"), _search_form(_individual(ato))),
        viewer.post(reverse("relationships:validate", args=[validated.parent.pk]), {"links": "CLIENT|||"}),
        viewer.post(reverse("relationships:submit", args=[validated.pk])),
        viewer.post(reverse("relationships:remove", args=[client.pk]), {"link": link.pk}),
    ]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden)
    assert AtoRequest.objects.count() == 4 and Link.objects.current().filter(pk=link.pk).exists()


def test_a_register_client_is_searched_with_its_identifier_on_record(ato: Ato, agent: User, login: Any) -> None:
    person = _individual(ato)
    client = Client(practice=ato.practice, kind="individual", family_name=person["family_name"])
    client.set_tfn(person["tfn"])
    client.set_names()
    client.date_of_birth = person["birth_date"]
    client.save()
    http = login(agent)
    tab = http.get(reverse("relationships:client_tab", args=[client.pk])).content.decode()
    assert f"{reverse('relationships:add')}?client={client.pk}" in tab
    form = http.get(reverse("relationships:add"), {"client": client.pk}).content.decode()
    assert person["tfn"] not in form and client.masked_tfn in form and person["family_name"] in form
    data = _search_form(person, identifier="")
    searched = _answered(_posted(http.post(f"{reverse('relationships:add')}?client={client.pk}", data)))
    assert searched.status == RequestStatus.ANSWERED and searched.client == client
    validated = _answered(
        _posted(http.post(reverse("relationships:validate", args=[searched.pk]), {"links": "CLIENT|||"}))
    )
    _answered(_posted(http.post(reverse("relationships:submit", args=[validated.pk]))))
    assert Client.objects.count() == 1 and Link.objects.current().get().client == client


def test_another_number_typed_on_a_register_clients_page_is_refused(agent: User, login: Any) -> None:
    """Links found from a client's page are recorded against that client: someone else's TFN must not get there."""
    client = Client(practice=agent.tenant, kind="individual", family_name="Citizen", given_names="Jan")
    client.set_tfn("123456782")
    client.set_names()
    client.save()
    person = {"tfn": "876543210", "family_name": "Citizen", "given_name": "Jan", "birth_date": "1980-01-02"}
    response = login(agent).post(f"{reverse('relationships:add')}?client={client.pk}", _search_form(person))
    assert response.status_code == 200 and "not the TFN on record" in response.content.decode()
    assert not AtoRequest.objects.exists()


# --- without the stand-in ATO: requests as the worker leaves them -------------------------------------------------

FOUND = curel.FoundClient(entity_type="IND", person_name=PersonName("Citizen", "Jan"))
RESPONSES: dict[str, Any] = {
    "search": lambda: curel.SearchResponse(client=FOUND),
    "validate": lambda: curel.ValidateResponse(relationships=[], superseded=[]),
    "submit": lambda: curel.SubmitResponse(relationships=[], superseded=[]),
    "validate_remove": lambda: curel.ValidateRemoveResponse(relationships=[]),
    "remove": lambda: curel.RemoveResponse(relationships=[]),
}


def _request(
    agent: User,
    kind: str,
    *,
    parent: AtoRequest | None = None,
    state: str = RequestStatus.ANSWERED,
    response: Any = None,
    events: Sequence[dict[str, Any]] = (),
    failure_code: str = "",
    failure: str = "",
    **fields: Any,
) -> AtoRequest:
    """A request of the agent's practice as the gateway left its question (answered without errors unless told)."""
    req = AtoRequest(
        practice=agent.tenant,
        created_by=agent,
        kind=kind,
        parent=parent,
        family_name="Citizen",
        given_name="Jan",
        birth_date=date(1980, 1, 2),
        links=[["CLIENT", "", "", ""]],
        **fields,
    )
    req.seal_identifier("TFN", "123456782")
    req.save()
    answered = state == RequestStatus.ANSWERED
    req.question = fabricate_question(
        practice=agent.tenant,
        by=agent,
        purpose=services.PURPOSE,
        request=services.request_document(req),
        response=response if response is not None else (RESPONSES[kind]() if answered else None),
        events=events,
        state=state,
        failure_code=failure_code,
        failure=failure,
    )
    req.save(update_fields=["question"])
    return req


def _validated(agent: User) -> AtoRequest:
    searched = _request(agent, "search")
    return _request(agent, "validate", parent=searched)


def test_two_clicks_at_once_ask_the_ato_to_link_or_remove_once(
    agent: User, login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second POST waits for the first's transaction and gets its request: never two submits for one
    validation (the check for an earlier one happens under a lock on the validation)."""
    slow_send = services._send

    def send(req: AtoRequest) -> None:
        time.sleep(0.5)  # the first click is still inside its transaction when the second arrives
        slow_send(req)

    monkeypatch.setattr(services, "_send", send)
    validated = _validated(agent)
    checked = _request(agent, "validate_remove")
    for view, step, kind in (("submit", validated, "submit"), ("remove_confirm", checked, "remove")):
        url = reverse(f"relationships:{view}", args=[step.pk])
        answers: list[int] = []

        def click(answers: list[int] = answers, url: str = url) -> None:
            try:
                answers.append(_posted(login(agent).post(url)).pk)
            finally:
                connection.close()

        threads = [threading.Thread(target=click) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join(30)
        asked = list(AtoRequest.objects.filter(parent=step, kind=kind).values_list("pk", flat=True))
        assert len(asked) == 1 and answers == asked * 2


def test_a_validation_with_errors_or_of_another_kind_cannot_be_submitted(agent: User, login: Any) -> None:
    http = login(agent)
    refused = _request(agent, "validate", state=RequestStatus.REFUSED)
    searched = _request(agent, "search")
    checked = _request(agent, "validate_remove")
    for step, view in ((refused, "submit"), (searched, "submit"), (checked, "submit"), (refused, "remove_confirm")):
        response = http.post(reverse(f"relationships:{view}", args=[step.pk]))
        assert response.status_code == 302 and response["Location"] == reverse("relationships:request", args=[step.pk])
    assert not AtoRequest.objects.filter(kind__in=["submit", "remove"]).exists()


def test_a_bulk_rows_validation_is_reached_only_through_its_bulk_link(agent: User, login: Any) -> None:
    """A bulk row with a warning is linked only when a person ticks it in the review table: the one-client pages
    must not submit it behind the table's back, nor show it."""
    job = BulkJob.objects.create(practice=agent.tenant, created_by=agent, filename="f.csv", status="review")
    row = BulkRow.objects.create(job=job, row_number=2, label="CITIZEN, Jan")
    other = curel.SupersededRelationship(
        agent_number="11111111",
        agent_name="Other",
        level="CLIENT",
        start_date=date(2020, 1, 1),
        end_date=date(2026, 12, 1),
    )
    validated = _request(
        agent, "validate", bulk_row=row, response=curel.ValidateResponse(relationships=[], superseded=[other])
    )
    http = login(agent)
    assert http.get(reverse("relationships:request", args=[validated.pk])).status_code == 404
    assert http.post(reverse("relationships:submit", args=[validated.pk])).status_code == 404
    assert not AtoRequest.objects.filter(kind="submit").exists()


def test_restricted_staff_see_their_clients_requests_and_their_own_only(
    agent: User, admin: User, login: Any, group: ClientGroup
) -> None:
    restricted = make_user(agent.tenant, "rhea", Role.AGENT)
    restricted.restricted_to_groups = True
    restricted.save(update_fields=["restricted_to_groups"])
    group.staff.add(restricted)
    theirs, other = add_clients(agent.tenant, 2)
    group.clients.add(theirs)
    about_theirs = _request(agent, "validate_remove", client=theirs)
    about_other = _request(agent, "validate_remove", client=other)
    colleagues_search = _request(agent, "search")
    own_search = _request(restricted, "search")

    http = login(restricted)
    seen = {r.pk: http.get(reverse("relationships:request", args=[r.pk])).status_code for r in AtoRequest.objects.all()}
    assert seen == {about_theirs.pk: 200, about_other.pk: 404, colleagues_search.pk: 404, own_search.pk: 200}
    home = http.get(reverse("relationships:home")).content.decode()
    listed = {r.pk for r in AtoRequest.objects.all() if reverse("relationships:request", args=[r.pk]) in home}
    assert listed == {about_theirs.pk, own_search.pk}
    assert http.post(reverse("relationships:remove_confirm", args=[about_other.pk])).status_code == 404
    everyone = login(admin).get(reverse("relationships:home")).content.decode()
    assert all(reverse("relationships:request", args=[r.pk]) in everyone for r in AtoRequest.objects.all())


def test_every_warning_is_shown_beside_the_other_agents_link_it_ends(agent: User) -> None:
    """The ATO's warning naming another agent gives way to the plain words; any other warning is still shown."""
    superseded = curel.SupersededRelationship(
        agent_number="11111111",
        agent_name="Other Agents",
        level="CLIENT",
        start_date=date(2020, 1, 1),
        end_date=date(2026, 12, 1),
    )
    naming = event("CMN.ATO.CUREL.LNK06", "Warning", "This will end ...", AgentName="Other Agents", AgentNumber="1")
    other = event("CMN.ATO.CUREL.X", "Warning", "The client is under review.")
    response = curel.ValidateResponse(relationships=[], superseded=[superseded])
    req = _request(agent, "validate", response=response, events=[naming, other])
    assert warnings_in_plain_words(req) == [
        "This will end Other Agents (11111111)'s link for the whole client.",
        "The client is under review.",
    ]
    alone = _request(
        agent, "validate", response=curel.ValidateResponse(relationships=[], superseded=[]), events=[other]
    )
    assert warnings_in_plain_words(alone) == ["The client is under review."]


def test_a_search_already_validated_offers_the_choice_again(agent: User, login: Any) -> None:
    """ "Choose again" on a validation leads back to its search, which must still offer the choice of links."""
    validated = _validated(agent)
    assert validated.parent is not None
    http = login(agent)
    page = _page(http, validated)
    assert "Choose again" in page
    search_page = _page(http, validated.parent)
    assert "Already asked" in search_page and "Check with the ATO" in search_page


def test_a_failure_quoting_a_tfn_is_shown_without_it(agent: User, login: Any) -> None:
    failed = _request(
        agent,
        "search",
        state=RequestStatus.FAILED,
        failure_code="EBMS:0004",
        failure="EBMS:0004: value 123 456 782 is not a valid identifier",
    )
    page = _page(login(agent), failed)
    assert "could not be completed" in page and escape(api.failure_in_plain_words("EBMS:0004", "")) in page
    assert "123 456 782" not in page and "123456782" not in page


def test_an_answer_that_could_not_be_recorded_says_so_instead_of_waiting_for_ever(agent: User, login: Any) -> None:
    from ato_gateway.answers import answer_unrecorded

    waiting = _request(agent, "search", state=RequestStatus.WAITING)
    assert waiting.question is not None
    answer_unrecorded(waiting.question.message, "could not record")
    page = _page(login(agent), waiting)
    assert "could not record its answer" in page and "resend" in page
