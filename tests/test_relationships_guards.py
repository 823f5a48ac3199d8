"""Relationships' answers through the pages, the gateway and the stand-in ATO, where a wrong step would record a
link twice or end more than was asked (issue 18, items 8 and 15). Each test was seen to fail with its behaviour
broken."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import resolve, reverse

from ato_gateway.models import MessageStatus
from portal.models import AuditEvent, User
from relationships.models import AtoRequest, Link, LinkChange, RequestStatus
from tests.ato_fixtures import AGENT_TAN, Ato, redeliver
from tests.gateway_fixtures import pump

pytestmark = pytest.mark.django_db(transaction=True)


def _unlinked_with_gst_and_paygw(ato: Ato) -> dict[str, Any]:
    """An individual linked to no agent, with activity statement account 001 holding GST and PAYG withholding."""
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_accounts a ON a.taxpayer_id = t.id AND a.kind = 'AS' "
        "AND a.branch = '001' WHERE t.entity = 'IND' AND t.death_date IS NULL "
        "AND EXISTS (SELECT 1 FROM reg_roles r WHERE r.account_id = a.id AND r.role = 'GST') "
        "AND EXISTS (SELECT 1 FROM reg_roles r WHERE r.account_id = a.id AND r.role = 'PAYGW') "
        "AND NOT EXISTS (SELECT 1 FROM reg_links l WHERE l.taxpayer_id = t.id AND l.end_date IS NULL) "
        "ORDER BY t.id LIMIT 1"
    )[0]


def _posted(response: Any) -> AtoRequest:
    assert response.status_code == 302, response.content.decode()[:500]
    return AtoRequest.objects.get(pk=resolve(response["Location"]).kwargs["pk"])


def _answered(req: AtoRequest) -> AtoRequest:
    pump(lambda: AtoRequest.objects.get(pk=req.pk).is_settled, timeout=90)
    settled = AtoRequest.objects.select_related("question").get(pk=req.pk)
    assert settled.status == RequestStatus.ANSWERED, settled.reply()
    return settled


def _link(http: HttpClient, person: dict[str, Any], links: list[str]) -> AtoRequest:
    """Search, validate and submit through the pages; the submit's request."""
    form = {
        "entity": "individual",
        "identifier_kind": "TFN",
        "identifier": person["tfn"],
        "family_name": person["family_name"],
        "given_name": person["given_name"] or "",
        "date_of_birth": person["birth_date"],
    }
    searched = _answered(_posted(http.post(reverse("relationships:add"), form)))
    validated = _answered(_posted(http.post(reverse("relationships:validate", args=[searched.pk]), {"links": links})))
    return _answered(_posted(http.post(reverse("relationships:submit", args=[validated.pk]))))


def _current_roles(client_pk: int) -> list[str]:
    return sorted(Link.objects.current().filter(client_id=client_pk).values_list("role", flat=True))


def test_an_answer_delivered_twice_changes_nothing(ato: Ato, agent: User, login: Any) -> None:
    submitted = _link(login(agent), _unlinked_with_gst_and_paygw(ato), ["ROLE|AS|001|GST", "ROLE|AS|001|PAYGW"])
    assert submitted.question is not None
    message = submitted.question.message
    assert message.status == MessageStatus.DONE
    client = submitted.client
    assert client is not None and _current_roles(client.pk) == ["GST", "PAYGW"]
    before = (Link.objects.count(), LinkChange.objects.count(), AuditEvent.objects.count())
    assert before[1] == 2

    redeliver(message)

    assert (Link.objects.count(), LinkChange.objects.count(), AuditEvent.objects.count()) == before
    assert _current_roles(client.pk) == ["GST", "PAYGW"]


def test_removing_one_role_ends_only_that_role(ato: Ato, agent: User, login: Any) -> None:
    http = login(agent)
    person = _unlinked_with_gst_and_paygw(ato)
    submitted = _link(http, person, ["ROLE|AS|001|GST", "ROLE|AS|001|PAYGW"])
    client = submitted.client
    assert client is not None and _current_roles(client.pk) == ["GST", "PAYGW"]
    gst = Link.objects.current().get(client=client, role="GST")

    checked = _answered(_posted(http.post(reverse("relationships:remove", args=[client.pk]), {"link": gst.pk})))
    _answered(_posted(http.post(reverse("relationships:remove_confirm", args=[checked.pk]))))

    assert _current_roles(client.pk) == ["PAYGW"]
    gst.refresh_from_db()
    assert gst.end_reason == "REMOVED"
    at_the_ato = ato.query(
        "SELECT l.role FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id "
        "WHERE l.taxpayer_id = ? AND g.tan = ? AND l.end_date IS NULL",
        person["id"],
        AGENT_TAN,
    )
    assert [row["role"] for row in at_the_ato] == ["PAYGW"]
