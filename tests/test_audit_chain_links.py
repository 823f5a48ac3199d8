"""The audit chain links each event to the one before it: a forger who rewrites one event and its hash, and relinks
only the next event, is still found (issue 18, item 6; seen to fail with the link left out of the hash)."""

from __future__ import annotations

import pytest
from django.db import connection

from portal.audit import audit_record, audit_verify_chains
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
