"""The audit chain links each event to the one before it: a forger who rewrites one event and its hash, and relinks
only the next event, is still found (issue 18, item 6; seen to fail with the link left out of the hash)."""

from __future__ import annotations

import pytest
from django.db import connection

from portal.audit import audit_record, audit_record_system_many, audit_verify_chains
from portal.models import AuditEvent

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
    assert [(b.seq, b.problem) for b in breaks] == [(4, "event content does not match its hash")]


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
