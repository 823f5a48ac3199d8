"""Staff restricted to groups: a search started without a client cannot link a register client outside their
groups; the audit search and the gateway console show them only what concerns their groups' clients."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from ato_gateway.models import OutboxMessage
from clients.models import Client, ClientGroup
from portal.models import User
from relationships.models import AtoRequest, Link, RequestKind
from tests.ato_fixtures import Ato
from tests.test_relationships_guards import _answered, _posted, _unlinked_with_gst_and_paygw


@pytest.mark.django_db(transaction=True)
def test_a_search_without_a_client_cannot_link_a_client_outside_the_person_s_groups(
    ato: Ato, agent: User, login: Any
) -> None:
    person = _unlinked_with_gst_and_paygw(ato)
    hidden = Client(practice=agent.tenant, kind="individual", family_name=person["family_name"], given_names="X")
    hidden.set_tfn(person["tfn"])
    hidden.set_names()
    hidden.save()
    ClientGroup.objects.create(practice=agent.tenant, name="Payroll").staff.add(agent)
    agent.restricted_to_groups = True
    agent.save(update_fields=["restricted_to_groups"])
    http = login(agent)
    form = {
        "entity": "individual",
        "identifier_kind": "TFN",
        "identifier": person["tfn"],
        "family_name": person["family_name"],
        "given_name": person["given_name"] or "",
        "date_of_birth": person["birth_date"],
    }
    searched = _answered(_posted(http.post(reverse("relationships:add"), form)))
    links = {"links": ["ROLE|AS|001|GST"]}
    validated = _answered(_posted(http.post(reverse("relationships:validate", args=[searched.pk]), links)))
    refused = http.post(reverse("relationships:submit", args=[validated.pk]), follow=True)
    assert "in a group you do not work with" in refused.content.decode()
    assert not AtoRequest.objects.filter(kind=RequestKind.SUBMIT).exists()
    assert not Link.objects.filter(client=hidden).exists()
    assert not ato.query("SELECT 1 FROM reg_links WHERE taxpayer_id = ? AND end_date IS NULL", person["id"])
    assert not OutboxMessage.objects.filter(action__icontains="Submit").exists()
