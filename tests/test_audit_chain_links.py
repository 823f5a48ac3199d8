"""The audit chain links each event to the one before it: a forger who rewrites one event and its hash, and relinks
only the next event, is still found (issue 18, item 6; seen to fail with the link left out of the hash)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import RequestFactory

from portal.audit import audit_record, audit_record_system_many, audit_verify_chains
from portal.models import AuditChainHead, AuditEvent

pytestmark = pytest.mark.django_db


def _tamper(sql: str, params: list) -> None:
    """An attacker with superuser rights, who can switch the append-only trigger off for their session."""
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute(sql, params)
        cur.execute("SET session_replication_role = DEFAULT")


def test_a_forged_event_with_a_recomputed_hash_and_a_relinked_successor_is_a_break(practice, admin):
    events = [audit_record(f"test.event{i}", actor=admin, practice=practice, details={"i": i}) for i in range(5)]
    forged = AuditEvent.objects.get(pk=events[2].pk)
    forged.object_repr = "forged"
    forged_hash = forged.compute_hash()
    _tamper("UPDATE portal_auditevent SET object_repr = 'forged', hash = %s WHERE id = %s", [forged_hash, forged.pk])
    _tamper("UPDATE portal_auditevent SET prev_hash = %s WHERE id = %s", [forged_hash, events[3].pk])
    breaks = list(audit_verify_chains())
    assert [(b.chain, b.seq, b.event_id, b.problem) for b in breaks] == [
        (practice.pk, 4, events[3].pk, "event content does not match its hash")
    ]


def test_system_events_appended_in_a_batch_continue_the_chain(practice, admin):
    """The outbox records a batch's outcomes with audit_record_system_many: one lock, the same chain."""
    first = audit_record("test.before", actor=admin, practice=practice)
    audit_record_system_many(practice, [])  # nothing to append: nothing changes
    audit_record_system_many(
        practice,
        [
            ("ato.message_done", admin, "x" * 250, {"message_id": "m-1"}),
            ("ato.message_failed", admin, "PING Ping", {"message_id": "m-2", "error": "EBMS:0004"}),
        ],
    )
    after = audit_record("test.after", actor=admin, practice=practice)
    events = list(AuditEvent.objects.filter(chain=practice.pk).order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3, 4] and events[0].pk == first.pk and events[3].pk == after.pk
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    batch = events[1:3]
    assert [e.action for e in batch] == ["ato.message_done", "ato.message_failed"]
    assert all(e.actor_id is None and e.actor_label == "system" and e.practice_id == practice.pk for e in batch)
    assert all(e.object_type == "portal.User" and e.object_id == str(admin.pk) for e in batch)
    assert batch[0].object_repr == "x" * 200 and batch[1].object_repr == "PING Ping"
    assert batch[1].details == {"message_id": "m-2", "error": "EBMS:0004"}
    assert batch[0].created_at == batch[1].created_at and batch[0].ip_address is None and batch[0].user_agent == ""
    assert all(e.compute_hash() == e.hash for e in events)
    assert list(audit_verify_chains()) == []


def _break_tuples() -> list[tuple]:
    return [(b.chain, b.seq, b.event_id, b.problem) for b in audit_verify_chains()]


def test_an_event_recorded_from_a_request_names_who_from_where(practice, admin, agent):
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="A" * 400)
    request.user = admin
    event = audit_record("test.seen", request=request, target=agent)
    assert (event.actor_id, event.actor_label, event.practice_id, event.chain) == (
        admin.pk,
        "alice",
        practice.pk,
        practice.pk,
    )
    assert (event.ip_address, event.user_agent) == ("203.0.113.9", "A" * 300)
    assert (event.object_type, event.object_id, event.object_repr) == ("portal.User", str(agent.pk), str(agent))
    # An actor named by the caller is kept; a long description is cut to the column.
    named = audit_record("test.named", request=request, actor=agent, target=agent, target_repr="y" * 250)
    assert (named.actor_id, named.object_repr) == (agent.pk, "y" * 200)
    bare = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9")  # a client that sends no User-Agent
    bare.user = admin
    assert audit_record("test.bare", request=bare).user_agent == ""


def test_an_event_outside_any_practice_is_the_systems_on_chain_zero(db):
    event = audit_record("test.system")
    assert (event.chain, event.practice_id, event.actor_id, event.actor_label) == (0, None, None, "system")
    assert (event.object_type, event.object_id, event.object_repr, event.ip_address, event.user_agent) == (
        "",
        "",
        "",
        None,
        "",
    )
    assert AuditChainHead.objects.get(chain=0).last_hash == event.hash


def test_each_break_names_its_chain_sequence_and_event(practice, admin):
    events = [audit_record(f"test.event{i}", actor=admin, practice=practice) for i in range(4)]
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])
    assert _break_tuples() == [
        (practice.pk, 2, events[2].pk, "missing events before seq 3"),
        (practice.pk, 3, events[2].pk, "link to the previous event does not match"),
    ]


def test_a_head_that_names_another_hash_is_a_break(practice, admin):
    audit_record("test.one", actor=admin, practice=practice)
    audit_record("test.two", actor=admin, practice=practice)
    _tamper("UPDATE portal_auditchainhead SET last_hash = %s WHERE chain = %s", ["f" * 64, practice.pk])
    assert _break_tuples() == [
        (practice.pk, 2, None, "chain head does not match the last event (tail removed?)"),
    ]


def test_a_chain_whose_head_was_deleted_is_still_checked(practice, admin):
    events = [audit_record(f"test.event{i}", actor=admin, practice=practice) for i in range(3)]
    _tamper("UPDATE portal_auditevent SET object_repr = 'forged' WHERE id = %s", [events[1].pk])
    _tamper("DELETE FROM portal_auditchainhead WHERE chain = %s", [practice.pk])
    assert _break_tuples() == [(practice.pk, 2, events[1].pk, "event content does not match its hash")]


def test_a_batch_can_open_a_practices_chain(practice, admin):
    audit_record_system_many(practice, [("ato.message_done", admin, "PING", {})])
    [event] = AuditEvent.objects.filter(chain=practice.pk)
    assert (event.seq, event.prev_hash) == (1, "0" * 64)
    assert AuditChainHead.objects.get(chain=practice.pk).last_seq == 1
