"""Relationships' answer handler without the stand-in ATO: a submit's or a remove's answer, built by hand, handed to
``on_answer`` as the gateway hands it, over register rows set up by hand. What each answer must change (the links,
their history with its notes and MessageId, the audit event) and what it must leave alone (another practice's
question, a refused answer, the other roles of an account, another client's links). These are the fast tests that
``make mutate`` runs against the handler (its module "relationships-answers")."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.utils import timezone

from ato_gateway.answers import answer_settle, outcome_of
from ato_gateway.api import Question, QuestionState, Reply
from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import Account, PersonName
from clients.models import Client, ClientKind
from clients.tfn import tfn_lookup_hash
from portal.models import AuditEvent, User
from relationships import services
from relationships.models import AtoRequest, ChangeKind, Link, LinkChange
from tests.conftest import add_clients
from tests.questions import fabricate_question

pytestmark = pytest.mark.django_db

GST = ("ROLE", "AS", "001", "GST")
PAYGW = ("ROLE", "AS", "001", "PAYGW")
STARTED = date(2026, 11, 30)


def _request(
    user: User, kind: str, *, client: Client | None = None, response: Any = None, state: str = QuestionState.ANSWERED
) -> AtoRequest:
    """A step of the user's practice whose question the gateway has settled (the answer itself is handed over by
    the test, as a typed reply)."""
    req = AtoRequest(
        practice=user.tenant,
        created_by=user,
        kind=kind,
        client=client,
        family_name="Citizen",
        given_name="Jan",
        birth_date=date(1980, 1, 2),
        links=[list(GST)],
    )
    req.seal_identifier("TFN", "123456782")
    req.save()
    req.question = fabricate_question(
        practice=user.tenant,
        by=user,
        purpose=services.PURPOSE,
        request=services.request_document(req),
        response=response,
        state=state,
    )
    req.save(update_fields=["question"])
    return req


def _question(req: AtoRequest) -> Question:
    assert req.question is not None
    return req.question


def _relationship(key: tuple[str, str, str, str]) -> dict[str, Any]:
    level, kind, branch, role = key
    return {"level": level, "account": Account(kind, branch or None) if kind else None, "role": role or None}


def _added(key: tuple[str, str, str, str], status: str = "NEW") -> curel.AddedRelationship:
    return curel.AddedRelationship(**_relationship(key), status=status, start_date=STARTED)


def _removed(key: tuple[str, str, str, str], end: date | None = None) -> curel.ListedRelationship:
    return curel.ListedRelationship(**_relationship(key), start_date=date(2020, 1, 1), end_date=end)


def _link(client: Client, key: tuple[str, str, str, str], **fields: Any) -> Link:
    level, kind, branch, role = key
    return Link.objects.create(
        practice=client.practice, client=client, level=level, account_kind=kind, branch=branch, role=role, **fields
    )


def _current(client: Client) -> list[tuple[str, str, str, str]]:
    return sorted(link.key for link in Link.objects.current().filter(client=client))


def _history(client: Client) -> list[tuple[str, tuple[str, str, str, str], str, int | None, str]]:
    return [
        (c.kind, (c.level, c.account_kind, c.branch, c.role), c.note, c.actor_id, c.message_id)
        for c in LinkChange.objects.filter(client=client).order_by("pk")
    ]


def _audits(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


@pytest.fixture
def client_of(agent: User) -> Client:
    [client] = add_clients(agent.tenant, 1)
    return client


def test_a_submit_answered_adds_each_new_link_with_its_history_and_one_audit_event(
    agent: User, client_of: Client
) -> None:
    req = _request(agent, "submit", client=client_of)
    question = _question(req)
    mid = question.ebms_message_id
    document = curel.SubmitResponse(relationships=[_added(GST), _added(PAYGW)], superseded=[])

    services.on_answer(question, Reply(document, []))

    req.refresh_from_db()
    assert req.client_id == client_of.pk
    links = Link.objects.current().filter(client=client_of).order_by("role")
    assert [(lk.key, lk.started_on, lk.practice_id) for lk in links] == [
        (GST, STARTED, agent.tenant.pk),
        (PAYGW, STARTED, agent.tenant.pk),
    ]
    assert _history(client_of) == [
        (ChangeKind.ADDED, GST, "", agent.pk, mid),
        (ChangeKind.ADDED, PAYGW, "", agent.pk, mid),
    ]
    assert set(LinkChange.objects.values_list("practice_id", flat=True)) == {agent.tenant.pk}
    [event] = _audits("relationships.linked")
    assert (event.actor_id, event.practice_id, event.object_id) == (agent.pk, agent.tenant.pk, str(client_of.pk))
    assert event.details == {"links": [list(GST), list(PAYGW)], "message_id": mid}


def test_a_link_the_ato_already_held_is_not_made_twice_and_its_history_says_so(agent: User, client_of: Client) -> None:
    """EXISTING: the ATO already covered it. The current link stays the only one; a link alike in all but one part
    (an ended one, another role, branch, account or level, another client's) does not count as held."""
    held = _link(client_of, GST, started_on=date(2020, 1, 1))
    _link(client_of, PAYGW, ended_on=date(2025, 1, 1), end_reason="REMOVED")
    for near in [("ROLE", "AS", "002", "PAYGW"), ("ROLE", "ITX", "001", "PAYGW"), ("ACCOUNT", "AS", "001", "PAYGW")]:
        _link(client_of, near)
    [stranger] = add_clients(agent.tenant, 1, seed=8)
    _link(stranger, PAYGW)
    req = _request(agent, "submit", client=client_of)
    document = curel.SubmitResponse(relationships=[_added(GST, "EXISTING"), _added(PAYGW, "EXISTING")], superseded=[])

    services.on_answer(_question(req), Reply(document, []))

    assert Link.objects.current().get(client=client_of, role="GST") == held
    assert Link.objects.current().filter(client=client_of, level="ROLE", account_kind="AS", branch="001").count() == 2
    made = Link.objects.current().get(client=client_of, level="ROLE", account_kind="AS", branch="001", role="PAYGW")
    assert made.started_on == STARTED
    mid = _question(req).ebms_message_id
    assert _history(client_of) == [
        (ChangeKind.ADDED, GST, "already linked", agent.pk, mid),
        (ChangeKind.ADDED, PAYGW, "already linked", agent.pk, mid),
    ]


def test_another_agents_link_the_submit_ended_is_in_the_history_in_words(agent: User, client_of: Client) -> None:
    req = _request(agent, "submit", client=client_of)
    ended = curel.SupersededRelationship(
        agent_number="25987654",
        agent_name="Other Agents",
        **_relationship(("ACCOUNT", "AS", "001", "")),
        start_date=date(2019, 1, 1),
        end_date=STARTED,
    )
    long_name = curel.SupersededRelationship(
        agent_number="25987655",
        agent_name="N" * 300,
        **_relationship(("CLIENT", "", "", "")),
        start_date=date(2019, 1, 1),
        end_date=STARTED,
    )
    document = curel.SubmitResponse(relationships=[_added(("CLIENT", "", "", ""))], superseded=[ended, long_name])

    services.on_answer(_question(req), Reply(document, []))

    mid = _question(req).ebms_message_id
    history = _history(client_of)
    assert history[:2] == [
        (ChangeKind.ADDED, ("CLIENT", "", "", ""), "", agent.pk, mid),
        (
            ChangeKind.SUPERSEDED_OTHER,
            ("ACCOUNT", "AS", "001", ""),
            "Ended Other Agents (25987654)'s link for the activity statement account 001.",
            agent.pk,
            mid,
        ),
    ]
    # A note longer than its column is cut to fit, not refused (the link itself is recorded whatever its words).
    kind, key, note, _, _ = history[2]
    assert (kind, key, len(note)) == (ChangeKind.SUPERSEDED_OTHER, ("CLIENT", "", "", ""), 300)
    assert note.startswith("Ended NNN")
    # Only the links the ATO added are links of ours: the superseded ones are another agent's.
    assert _current(client_of) == [("CLIENT", "", "", "")]


def test_a_submit_for_someone_not_on_the_register_makes_the_client(agent: User) -> None:
    """The request names no register client: the handler makes one (from the search's answer) and points the request
    at it, so that the request's page can link to the client."""
    searched = _request(
        agent,
        "search",
        response=curel.SearchResponse(
            client=curel.FoundClient(entity_type="IND", person_name=PersonName("Citizen", "Jan"))
        ),
    )
    req = _request(agent, "submit")
    req.parent = searched
    req.save(update_fields=["parent"])

    services.on_answer(_question(req), Reply(curel.SubmitResponse(relationships=[_added(GST)], superseded=[]), []))

    client = Client.objects.get(practice=agent.tenant, tfn_hash=tfn_lookup_hash("123456782"))
    assert (client.kind, client.family_name) == (ClientKind.INDIVIDUAL, "Citizen")
    req.refresh_from_db()
    assert req.client_id == client.pk
    assert _current(client) == [GST]


def test_removing_one_role_ends_only_that_link_of_only_that_client(agent: User, client_of: Client) -> None:
    """Issue 18, item 15: removing GST leaves PAYG withholding on the same account current; and links alike in all
    but one part (another branch, account kind or level, another client's) stay too."""
    gst = _link(client_of, GST)
    kept = [PAYGW, ("ROLE", "AS", "002", "GST"), ("ROLE", "ITX", "001", "GST"), ("ACCOUNT", "AS", "001", "GST")]
    for key in kept:
        _link(client_of, key)
    [stranger] = add_clients(agent.tenant, 1, seed=8)
    _link(stranger, GST)
    req = _request(agent, "remove", client=client_of)
    question = _question(req)
    mid = question.ebms_message_id

    services.on_answer(question, Reply(curel.RemoveResponse(relationships=[_removed(GST, date(2026, 12, 1))]), []))

    gst.refresh_from_db()
    assert (gst.ended_on, gst.end_reason) == (date(2026, 12, 1), "REMOVED")
    assert _current(client_of) == sorted(kept)
    assert _current(stranger) == [GST]
    assert _history(client_of) == [(ChangeKind.REMOVED, GST, "", agent.pk, mid)]
    assert _history(stranger) == []
    [event] = _audits("relationships.removed")
    assert (event.actor_id, event.practice_id, event.object_id) == (agent.pk, agent.tenant.pk, str(client_of.pk))
    assert event.details == {"links": [list(GST)], "message_id": mid}


def test_a_removal_the_ato_gave_no_end_date_ends_today(agent: User, client_of: Client) -> None:
    gst = _link(client_of, GST)
    req = _request(agent, "remove", client=client_of)

    services.on_answer(_question(req), Reply(curel.RemoveResponse(relationships=[_removed(GST)]), []))

    gst.refresh_from_db()
    assert (gst.ended_on, gst.end_reason) == (timezone.localdate(), "REMOVED")


def test_a_removal_without_a_register_client_changes_nothing(agent: User, client_of: Client) -> None:
    _link(client_of, GST)
    req = _request(agent, "remove")

    services.on_answer(_question(req), Reply(curel.RemoveResponse(relationships=[_removed(GST)]), []))

    assert _current(client_of) == [GST]
    assert not LinkChange.objects.exists() and not _audits("relationships.removed")


def test_only_an_answered_question_of_the_same_practice_changes_the_register(
    agent: User, outsider: User, client_of: Client
) -> None:
    """A refused answer, a question of another practice (a step pointed at it by mistake) and a question that is no
    step of ours leave the register alone."""
    submit = curel.SubmitResponse(relationships=[_added(GST)], superseded=[])
    refused = _request(agent, "submit", client=client_of, state=QuestionState.REFUSED)
    assert services.answer_apply(_question(refused), Reply(submit, [])) == refused

    ours = _request(agent, "submit", client=client_of)
    foreign = fabricate_question(
        practice=outsider.tenant, by=outsider, purpose=services.PURPOSE, request=services.request_document(ours)
    )
    AtoRequest.objects.filter(pk=ours.pk).update(question=foreign)
    assert services.answer_apply(foreign, Reply(submit, [])) is None

    stray = fabricate_question(
        practice=agent.tenant, by=agent, purpose=services.PURPOSE, request=services.request_document(ours)
    )
    assert services.answer_apply(stray, Reply(submit, [])) is None

    assert _current(client_of) == [] and not LinkChange.objects.exists() and not _audits("relationships.linked")


def test_the_step_returned_carries_the_answer_it_was_given(agent: User, client_of: Client) -> None:
    req = _request(agent, "validate", client=client_of)
    reply: Reply[Any] = Reply(curel.ValidateResponse(relationships=[_added(GST)], superseded=[]), [])

    applied = services.answer_apply(_question(req), reply)

    assert applied == req and applied is not None
    assert applied.question == req.question and applied.reply() is reply
    assert _current(client_of) == []  # a validation changes nothing


def test_a_submits_answer_delivered_twice_changes_nothing(agent: User, client_of: Client) -> None:
    """Issue 18, item 8, through the gateway's settling (as ``tests.ato_fixtures.redeliver`` does): the first
    delivery links, the second changes no link, history or audit event."""
    req = _request(
        agent, "submit", client=client_of, response=curel.SubmitResponse(relationships=[_added(GST)], superseded=[])
    )
    question = _question(req)
    type(question).objects.filter(pk=question.pk).update(state=QuestionState.WAITING)
    message = question.message

    answer_settle(message, outcome_of(message))
    assert _current(client_of) == [GST]
    before = (Link.objects.count(), LinkChange.objects.count(), AuditEvent.objects.count())
    assert before[1] == 1

    answer_settle(message, outcome_of(message))

    assert (Link.objects.count(), LinkChange.objects.count(), AuditEvent.objects.count()) == before


def test_the_audit_events_are_the_practices_when_the_person_who_asked_has_left(agent: User, client_of: Client) -> None:
    """A request outlives its creator (``created_by`` is set null when the user goes): the link's and the removal's
    audit events still go to the practice's chain, with no actor."""
    submit = _request(agent, "submit", client=client_of)
    remove = _request(agent, "remove", client=client_of)
    AtoRequest.objects.filter(pk__in=[submit.pk, remove.pk]).update(created_by=None)
    submit.refresh_from_db()
    remove.refresh_from_db()

    services.on_answer(_question(submit), Reply(curel.SubmitResponse(relationships=[_added(GST)], superseded=[]), []))
    services.on_answer(_question(remove), Reply(curel.RemoveResponse(relationships=[_removed(GST)]), []))

    events = _audits("relationships.linked") + _audits("relationships.removed")
    assert [(e.practice_id, e.actor_id) for e in events] == [(agent.tenant.pk, None), (agent.tenant.pk, None)]
    assert set(LinkChange.objects.values_list("actor_id", flat=True)) == {None}
