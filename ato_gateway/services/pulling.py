"""Pulling: the responses to pushed messages, collected by a selective pull per message (the ATO keeps a response
until a pull of it succeeds), stored before anything else, then delivered to the message they answer."""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q
from django.utils import timezone

from ato_gateway import tokens, transport
from ato_gateway.models import (
    TERMINAL,
    MessageStatus,
    OutboxMessage,
    PulledResponse,
)
from ato_gateway.services.credentials import credential_for_signing
from ato_gateway.services.sending import (
    _code,
    _decide,
    _failure,
    _pull_key,
    _read_reply,
    _record,
    _schedule_pull,
    _send_pool,
    backoff,
    endpoint_url,
)
from ato_gateway.wire import client as wire
from ato_gateway.wire import errors as wire_errors
from ato_gateway.wire import registry
from portal.db.bulk import update_many
from portal.models import Practice

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def outbox_pull(practice_id: int, *, worker: str, limit: int = 500) -> int:
    """Collect the responses to the practice's pushed messages: one selective pull for each message due to ask
    for its response, naming it (RefToMessageId), on the send threads. The ATO keeps a response until it is pulled
    and answers a selective pull with it again, so a pull that fails (a reset, a malformed or badly signed reply)
    loses nothing: the message asks again on a later round. A push still waiting to be retried (its receipt was
    lost on the way back, but the ATO may have it) is asked for too. Each response is stored before anything
    else, then delivered to the message it answers as soon as that message can take it. Returns how many were
    delivered."""
    cache.delete(_pull_key(practice_id))  # this is the scheduled pull: another may be scheduled from now on
    now = timezone.now()
    waiting = list(
        OutboxMessage.objects.filter(practice_id=practice_id)
        .filter(
            Q(phase="pull", status=MessageStatus.AWAITING, next_attempt_at__lte=now)
            | Q(phase="send", status=MessageStatus.RETRY, service__in=_PUSHED_SERVICES, action__in=_PUSHED_ACTIONS)
        )
        .exclude(message_id__in=PulledResponse.objects.filter(practice_id=practice_id).values("ref_to_message_id"))
        .order_by("next_attempt_at", "pk")
        .only("pk", "service", "action", "message_id", "phase", "claimed_at", "next_attempt_at")[:limit]
    )
    waiting = [m for m in waiting if (m.service, m.action) in _PUSHED]
    if waiting:
        try:
            credential = credential_for_signing(Practice.objects.get(pk=practice_id))
            key, certificate, token = credential.private_key(), credential.certificate(), tokens.saml_token(credential)
            host = socket.gethostname()
            signed = [
                (
                    m.message_id,
                    # The pull goes to the endpoint that collects the responses to the pushed message's endpoint.
                    endpoint_url(registry.get(f"{m.service}.{m.action}").pull_endpoint),
                    *wire.build_signed_pull(
                        message_id=f"{uuid.uuid4()}@{host}",  # a new pull each time: it is the reference that selects
                        ref_to_message_id=m.message_id,
                        key=key,
                        certificate=certificate,
                        saml_assertion=token,
                    ),
                )
                for m in waiting
            ]
        except (transport.TransportError, wire_errors.WireError) as exc:
            log.warning("pull for practice %s failed: %s", practice_id, exc)
            signed = []
        stored: dict[str, PulledResponse] = {}
        for ref, reply, outcome in _send_pool().map(_pull_exchange, signed):
            if isinstance(outcome, Exception):
                log.warning("pull of the response to %s failed (it stays at the ATO): %s", ref, outcome)
            elif outcome.kind == "user" and outcome.ref_to_message_id and reply is not None:
                pulled = PulledResponse(practice_id=practice_id, ref_to_message_id=outcome.ref_to_message_id)
                pulled.set_reply(reply.content_type, reply.body)
                stored[outcome.ref_to_message_id] = pulled
            elif not any(e.code == "EBMS:0006" for e in outcome.errors):
                log.warning("pull of the response to %s refused: %s", ref, outcome.errors)
        PulledResponse.objects.bulk_create(list(stored.values()), ignore_conflicts=True)
        # Those still without their response ask again later, less often the longer they have waited.
        later = [m for m in waiting if m.phase == "pull" and m.message_id not in stored]
        for m in later:
            m.next_attempt_at = now + _pull_interval(now - (m.claimed_at or now))
        update_many(later, ["next_attempt_at"])
    delivered = outbox_deliver_pulled(practice_id, worker=worker)
    if OutboxMessage.objects.filter(practice_id=practice_id, phase="pull", status=MessageStatus.AWAITING).exists():
        _schedule_pull(practice_id, backoff(2))
    return delivered


# The actions whose responses are pulled, as the outbox names them (service, action).
_PUSHED = {(a.service, a.action) for a in registry.SERVICE_ACTIONS if a.pattern == "push-pull"}


_PUSHED_SERVICES = sorted({service for service, _ in _PUSHED})


_PUSHED_ACTIONS = sorted({action for _, action in _PUSHED})


def _pull_interval(waited: timedelta) -> timedelta:
    """How long a message that has waited ``waited`` for its response waits before it asks again: a quarter of
    that, between the backoff's base and cap. A response that comes in seconds is asked for every few seconds; one
    that takes hours costs a pull every GATEWAY_BACKOFF_CAP_SECONDS, not one every round."""
    seconds = waited.total_seconds() / 4
    return timedelta(
        seconds=min(settings.GATEWAY_BACKOFF_CAP_SECONDS, max(settings.GATEWAY_BACKOFF_BASE_SECONDS, seconds))
    )


def _pull_exchange(item: tuple[str, str, bytes, str]) -> tuple[str, transport.Reply | None, Any]:
    """One selective pull on a send thread (no database): the pushed message's id, the reply, and what it read
    as (an InboundMessage) or the exception that stopped it."""
    ref, url, body, content_type = item
    reply: transport.Reply | None = None
    try:
        reply = transport.post(url, body, content_type)
        return ref, reply, _read_reply(reply, pulled=True)
    except (transport.TransportError, wire_errors.WireError) as exc:
        return ref, reply, exc


def outbox_deliver_pulled(practice_id: int, *, worker: str) -> int:
    """Hand stored responses to their messages. A message still being recorded, or waiting to retry a push whose
    receipt was lost, takes its response on a later call (the sweeper calls this too)."""
    delivered = 0
    for pulled in PulledResponse.objects.filter(practice_id=practice_id).order_by("received_at")[:1000]:
        rows = OutboxMessage.objects.filter(practice_id=practice_id, message_id=pulled.ref_to_message_id)
        if not rows.exists() or not rows.exclude(status__in=TERMINAL).exists():
            log.info("pulled response for %s has no message waiting for it; dropped", pulled.ref_to_message_id)
            pulled.delete()
            continue
        started = timezone.now()
        claimed = rows.exclude(status__in=[*TERMINAL, MessageStatus.SENDING]).update(
            status=MessageStatus.SENDING,
            claimed_at=started,
            claimed_by=worker,
            attempts=F("attempts") + 1,
            phase="pull",
        )
        if not claimed:
            continue
        message = OutboxMessage.objects.select_related("practice").get(pk=rows.values_list("pk", flat=True)[0])
        content_type, body = pulled.reply()
        reply = transport.Reply(200, content_type, body, 0)
        try:
            decision = _decide(message, started, b"", reply, _read_reply(reply, pulled=True))
        except wire_errors.WireError as exc:
            decision = _failure(message, started, b"", reply, _code(exc), str(exc), permanent=True)
        _record([decision], worker)
        pulled.delete()
        delivered += 1
    return delivered
