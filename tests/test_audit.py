"""The audit trail is append-only and hash-chained; verify_audit_chain finds any edit, removal or reordering."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from portal.audit import audit_record, audit_verify_chains
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def _events(practice, admin, n=5):
    return [audit_record(f"test.event{i}", actor=admin, practice=practice, details={"i": i}) for i in range(n)]


def test_events_form_a_chain_per_practice(practice, other_practice, admin, outsider):
    ours = _events(practice, admin)
    theirs = _events(other_practice, outsider, 2)
    assert [e.seq for e in ours] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(ours))
    assert theirs[0].seq == 1 and theirs[0].prev_hash == "0" * 64
    assert list(audit_verify_chains()) == []
    call_command("verify_audit_chain")


def test_the_orm_refuses_to_change_or_delete_events(practice, admin):
    event = _events(practice, admin, 1)[0]
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_postgres_itself_refuses_updates(practice, admin):
    event = _events(practice, admin, 1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE portal_auditevent SET action = 'forged' WHERE id = %s", [event.pk])


def _tamper(sql: str, params: list) -> None:
    """Simulate an attacker with superuser rights, who can switch triggers off for their session."""
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute(sql, params)
        cur.execute("SET session_replication_role = DEFAULT")


def test_an_edited_event_is_reported(practice, admin):
    events = _events(practice, admin)
    _tamper("UPDATE portal_auditevent SET object_repr = 'forged' WHERE id = %s", [events[2].pk])
    breaks = list(audit_verify_chains())
    assert [(b.seq, b.problem) for b in breaks] == [(3, "event content does not match its hash")]
    with pytest.raises(CommandError, match="1 break"):
        call_command("verify_audit_chain")


def test_a_removed_event_is_reported(practice, admin):
    events = _events(practice, admin)
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])
    problems = {b.problem for b in audit_verify_chains()}
    assert "missing events before seq 3" in problems
    assert "link to the previous event does not match" in problems


def test_a_removed_tail_is_reported(practice, admin):
    events = _events(practice, admin)
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[-1].pk])
    assert any("tail removed" in b.problem for b in audit_verify_chains())


def test_admin_can_search_and_only_sees_own_practice(practice, other_practice, admin, outsider, login):
    audit_record("client.tfn_revealed", actor=admin, practice=practice, target_repr="SMITH, Jo")
    audit_record("client.tfn_revealed", actor=outsider, practice=other_practice, target_repr="OTHER, Person")
    page = login(admin).get("/audit/", {"q": "tfn_revealed"}).content.decode()
    assert "SMITH, Jo" in page and "OTHER, Person" not in page
    assert login(admin).get("/audit/", {"actor": "nobody"}).content.decode().count("client.tfn_revealed") == 0


def test_nightly_verification_records_its_result(practice, admin):
    from portal.jobs import verify_audit_chains

    _events(practice, admin, 3)
    assert verify_audit_chains() == 0
    assert AuditEvent.objects.filter(action="audit.verified", details__breaks=0).exists()


def test_events_appended_during_verification_are_not_a_break(practice, admin, monkeypatch):
    """The nightly check reads the chain heads, then the events: an append in between must not look like a break."""
    from portal import audit

    _events(practice, admin, 2)
    real = audit.AuditChainHead.objects.all

    def heads_then_append():  # an event lands right after the heads are read
        heads = list(real())
        audit_record("test.late", actor=admin, practice=practice)
        return heads

    monkeypatch.setattr(audit.AuditChainHead.objects, "all", heads_then_append)
    assert list(audit_verify_chains()) == []


def test_an_event_a_service_records_without_the_request_keeps_where_it_came_from(agent, login):
    """Services take the user, not the HTTP request: the client's address and browser still reach the trail."""
    from django.urls import reverse

    http = login(agent)
    response = http.post(
        reverse("relationships:add"),
        {
            "entity": "individual",
            "identifier_kind": "TFN",
            "identifier": "123456782",
            "family_name": "Citizen",
            "given_name": "Jan",
            "date_of_birth": "1980-01-02",
        },
        HTTP_USER_AGENT="Firefox/140 on the front desk",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="relationships.search")
    assert event.actor == agent
    assert (event.ip_address, event.user_agent) == ("203.0.113.9", "Firefox/140 on the front desk")
    # Outside a request (a worker, a command) there is no origin: the event is the system's.
    assert audit_record("test.outside", actor=agent).ip_address is None
