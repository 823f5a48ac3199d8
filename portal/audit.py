"""Writing to and checking the audit trail.

Events are appended in the caller's transaction, so an action and its audit record commit or roll back together:
nothing is done that is not recorded, and nothing is recorded that was not done."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from portal.db.bulk import insert_many
from portal.models import AuditChainHead, AuditEvent, Practice, User, client_ip

if TYPE_CHECKING:
    from django.http import HttpResponse

    from portal.http import PortalRequest


@dataclass(frozen=True)
class Origin:
    """Where the request that led to an event came from: its client address and browser."""

    ip_address: str | None
    user_agent: str


# Set for the length of each web request (AuditOriginMiddleware), so that services, which take the user and not the
# HTTP request, still record where an action came from. Workers and commands have none: their events are the system's.
_ORIGIN: ContextVar[Origin | None] = ContextVar("audit_origin", default=None)


def origin_of(request: PortalRequest | None) -> Origin | None:
    if request is None:
        return _ORIGIN.get()
    return Origin(client_ip(request), request.META.get("HTTP_USER_AGENT", "")[:300])


class AuditOriginMiddleware:
    def __init__(self, get_response: Callable[[PortalRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PortalRequest) -> HttpResponse:
        token = _ORIGIN.set(origin_of(request))
        try:
            return self.get_response(request)
        finally:
            _ORIGIN.reset(token)


def audit_record(
    action: str,
    *,
    request: PortalRequest | None = None,
    actor: User | None = None,
    practice: Practice | None = None,
    target: models.Model | None = None,
    target_repr: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    if practice is None and actor is not None:
        practice = actor.practice
    chain = practice.pk if practice is not None else 0
    origin = origin_of(request)
    with transaction.atomic():
        # Create the head if this chain has none yet; ignore_conflicts makes a concurrent first append safe.
        AuditChainHead.objects.bulk_create([AuditChainHead(chain=chain)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(chain=chain)
        event = AuditEvent(
            chain=chain,
            seq=head.last_seq + 1,
            practice=practice,
            actor=actor,
            actor_label=actor.username if actor is not None else "system",
            action=action,
            object_type=target._meta.label if target is not None else "",
            object_id=str(target.pk) if target is not None else "",
            object_repr=(target_repr if target_repr is not None else str(target) if target is not None else "")[:200],
            ip_address=origin.ip_address if origin is not None else None,
            user_agent=origin.user_agent if origin is not None else "",
            details=details or {},
            created_at=timezone.now(),
            prev_hash=head.last_hash,
            key_version=settings.AUDIT_CHAIN_KEY_VERSION,
        )
        event.hash = event.compute_hash()
        event.save()
        AuditChainHead.objects.filter(chain=chain).update(last_seq=event.seq, last_hash=event.hash)
    return event


def audit_record_system_many(practice: Practice, events: list[tuple[str, models.Model, str, dict[str, Any]]]) -> None:
    """Append many system events (action, target, target_repr, details) to one practice's chain under a single
    lock: the outbox records a whole batch of ATO outcomes at once."""
    if not events:
        return
    chain = practice.pk
    with transaction.atomic():
        AuditChainHead.objects.bulk_create([AuditChainHead(chain=chain)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(chain=chain)
        seq, prev, now, rows = head.last_seq, head.last_hash, timezone.now(), []
        for action, target, target_repr, details in events:
            seq += 1
            event = AuditEvent(
                chain=chain,
                seq=seq,
                practice=practice,
                actor=None,
                actor_label="system",
                action=action,
                object_type=target._meta.label,
                object_id=str(target.pk),
                object_repr=target_repr[:200],
                ip_address=None,
                user_agent="",
                details=details,
                created_at=now,
                prev_hash=prev,
                key_version=settings.AUDIT_CHAIN_KEY_VERSION,
            )
            event.hash = prev = event.compute_hash()
            rows.append(event)
        insert_many(rows)
        AuditChainHead.objects.filter(chain=chain).update(last_seq=seq, last_hash=prev)


@dataclass(frozen=True)
class ChainBreak:
    chain: int
    seq: int
    event_id: int | None
    problem: str


def audit_verify_chains() -> Iterator[ChainBreak]:
    """Recompute every chain from its first event. Reports edited events (hash mismatch), removed or reordered
    events (a gap or a prev_hash that is not the previous hash) and a head that does not match the last event.

    Events from before the chain was keyed (key version 0) pass only as a chain's beginning: an unkeyed event after
    a keyed one is what someone without the key would write, and is a break."""
    heads = {h.chain: h for h in AuditChainHead.objects.all()}
    chains = set(AuditEvent.objects.values_list("chain", flat=True).distinct()) | set(heads)
    for chain in sorted(chains):
        expected_prev = "0" * 64
        expected_seq = 1
        in_chain = AuditEvent.objects.filter(chain=chain).order_by("seq")
        head = heads.get(chain)
        if head is not None:
            # Only up to the head as it was read: events appended while we check are not a break.
            in_chain = in_chain.filter(seq__lte=head.last_seq)
        keyed = False
        for event in in_chain.iterator(chunk_size=2000):
            if event.seq != expected_seq:
                yield ChainBreak(chain, expected_seq, event.pk, f"missing events before seq {event.seq}")
            if event.prev_hash != expected_prev:
                yield ChainBreak(chain, event.seq, event.pk, "link to the previous event does not match")
            if event.key_version == 0 and keyed:
                yield ChainBreak(chain, event.seq, event.pk, "unkeyed event after keyed ones")
            elif event.key_version not in settings.AUDIT_CHAIN_KEYS and event.key_version != 0:
                yield ChainBreak(chain, event.seq, event.pk, f"key version {event.key_version} is not configured")
            elif not hmac.compare_digest(event.compute_hash(), event.hash):
                yield ChainBreak(chain, event.seq, event.pk, "event content does not match its hash")
            keyed = keyed or event.key_version != 0
            expected_prev = event.hash
            expected_seq = event.seq + 1
        if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != expected_prev):
            yield ChainBreak(chain, head.last_seq, None, "chain head does not match the last event (tail removed?)")
