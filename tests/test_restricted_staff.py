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


@pytest.mark.django_db
def test_a_restricted_admin_s_audit_search_and_console_show_only_their_groups(practice, admin, agent, login):
    from ato_gateway.models import OutboxMessage
    from portal.audit import audit_record
    from relationships.services import SUBJECT
    from tests.conftest import add_clients

    theirs, other = add_clients(practice, 2)
    ClientGroup.objects.create(practice=practice, name="Payroll").clients.add(theirs)
    ClientGroup.objects.get(name="Payroll").staff.add(admin)
    admin.restricted_to_groups = True
    admin.save(update_fields=["restricted_to_groups"])
    audit_record("client.updated", actor=agent, target=theirs, target_repr="THEIRS event")
    audit_record("client.updated", actor=agent, target=other, target_repr="OTHER event")
    audit_record("staff.role_changed", actor=agent, target=agent, target_repr="STAFF event")
    requests = []
    for client, label in ((theirs, "THEIRS"), (other, "OTHER")):
        req = AtoRequest(practice=practice, created_by=agent, kind="search", client=client, family_name=label)
        req.seal_identifier("ABN", practice.abn)
        req.save()
        requests.append(req)
        message = OutboxMessage(
            practice=practice,
            service="CUREL",
            action="Search",
            message_id=f"{label}@test",
            conversation_id=label,
            subject_type=SUBJECT,
            subject_id=str(req.pk),
            subject_repr=f"{label} message",
        )
        message.set_payloads([("x", "<x/>")])
        message.save()
    http = login(admin)
    audit = http.get(reverse("portal:audit_search")).content.decode()
    assert "THEIRS event" in audit
    assert "OTHER event" not in audit and "STAFF event" not in audit
    console = http.get(reverse("ato_gateway:console"))
    shown = console.content.decode()
    assert "THEIRS message" in shown and "OTHER message" not in shown
    assert sum(console.context["counts"].values()) == 1
    other_message = OutboxMessage.objects.get(message_id="OTHER@test")
    assert http.get(reverse("ato_gateway:message", args=[other_message.pk])).status_code == 404
