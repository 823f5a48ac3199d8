"""The audit chain is an HMAC chain under a key kept outside the database: someone who can rewrite the table (and
switch its trigger off) can recompute plain hashes, but not a chain that verifies. Each event records the key
version that chained it, so a new key does not break the events chained under the old one."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test import override_settings

from portal.audit import audit_record, audit_verify_chains
from portal.models import AuditChainHead, AuditEvent

pytestmark = pytest.mark.django_db


def _tamper(sql: str, params: list) -> None:
    """An attacker with the database's superuser rights, who can switch the append-only trigger off."""
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute(sql, params)
        cur.execute("SET session_replication_role = DEFAULT")


def _rechain_from(chain: int, seq: int, rehash, **changes: str) -> None:  # type: ignore[no-untyped-def]
    """Rewrite event `seq` and recompute every hash after it, and the head: the whole chain is consistent again."""
    prev = None
    for event in AuditEvent.objects.filter(chain=chain, seq__gte=seq).order_by("seq"):
        for field, value in changes.items() if event.seq == seq else ():
            setattr(event, field, value)
        if prev is not None:
            event.prev_hash = prev
        event.hash = prev = rehash(event)
        _tamper(
            "UPDATE portal_auditevent SET object_repr = %s, prev_hash = %s, hash = %s, key_version = %s WHERE id = %s",
            [event.object_repr, event.prev_hash, event.hash, event.key_version, event.pk],
        )
    _tamper("UPDATE portal_auditchainhead SET last_hash = %s WHERE chain = %s", [prev, chain])


def _events(practice, admin, n: int = 5) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    return [audit_record(f"test.event{i}", actor=admin, practice=practice, target=admin) for i in range(n)]


def test_a_whole_chain_rewritten_with_plain_hashes_fails_verification(practice, admin):
    _events(practice, admin)
    assert list(audit_verify_chains()) == []
    _rechain_from(practice.pk, 2, lambda e: hashlib.sha256(e.canonical()).hexdigest(), object_repr="forged")
    breaks = list(audit_verify_chains())
    assert [(b.seq, b.problem) for b in breaks] == [(s, "event content does not match its hash") for s in range(2, 6)]


def test_a_chain_rewritten_as_if_from_before_keying_fails_verification(practice, admin):
    """Version 0 (plain SHA-256) passes only as a chain's beginning: after a keyed event it is a forger's."""
    _events(practice, admin)

    def unkeyed(event: AuditEvent) -> str:
        event.key_version = 0
        return hashlib.sha256(event.canonical()).hexdigest()

    _rechain_from(practice.pk, 3, unkeyed, object_repr="forged")
    assert [(b.seq, b.problem) for b in audit_verify_chains()] == [
        (s, "unkeyed event after keyed ones") for s in range(3, 6)
    ]


def test_each_event_records_its_key_version_and_rotation_keeps_old_events_verifiable(practice, admin):
    with override_settings(AUDIT_CHAIN_KEYS={1: b"first-key"}, AUDIT_CHAIN_KEY_VERSION=1):
        before = _events(practice, admin, 2)
        assert list(audit_verify_chains()) == []
    rotated = {2: b"second-key", 1: b"first-key"}
    with override_settings(AUDIT_CHAIN_KEYS=rotated, AUDIT_CHAIN_KEY_VERSION=2):
        after = _events(practice, admin, 2)
        assert [e.key_version for e in before + after] == [1, 1, 2, 2]
        assert list(audit_verify_chains()) == []
    # The same chain under a different key is not the same chain: the key is what makes it unforgeable.
    with override_settings(AUDIT_CHAIN_KEYS={2: b"second-key", 1: b"guessed"}, AUDIT_CHAIN_KEY_VERSION=2):
        assert [(b.seq, b.problem) for b in audit_verify_chains()] == [
            (1, "event content does not match its hash"),
            (2, "event content does not match its hash"),
        ]
    with override_settings(AUDIT_CHAIN_KEYS={2: b"second-key"}, AUDIT_CHAIN_KEY_VERSION=2):
        assert [(b.seq, b.problem) for b in audit_verify_chains()] == [
            (1, "key version 1 is not configured"),
            (2, "key version 1 is not configured"),
        ]
    assert AuditChainHead.objects.get(chain=practice.pk).last_seq == 4
