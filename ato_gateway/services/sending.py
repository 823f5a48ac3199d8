"""Sending: every ATO interaction is an outbox row first (``outbox_enqueue``), sent by a worker in batches, retried
with the same MessageId, and its outcome recorded with the answer handed to the question's handler."""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import socket
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import django_rq
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ato_gateway import tokens, transport
from ato_gateway.answers import answer_settle, answer_unrecorded, answers_settle_many
from ato_gateway.handlers import Outcome
from ato_gateway.models import (
    AttemptOutcome,
    MachineCredential,
    MessageAttempt,
    MessageStatus,
    OutboxMessage,
)
from ato_gateway.services.credentials import credential_for_signing
from ato_gateway.wire import client as wire
from ato_gateway.wire import errors as wire_errors
from ato_gateway.wire import registry
from ato_gateway.wire.events import SEVERITY_PARTIAL
from portal.audit import audit_record, audit_record_system_many
from portal.db.bulk import insert_many, update_many
from portal.logging import redact_tfns
from portal.models import Practice, User

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
# The jobs (ato_gateway/jobs.py) call these services; enqueued by dotted path so the services need not import them.
SEND_JOB = "ato_gateway.jobs.send_batch"
PULL_JOB = "ato_gateway.jobs.pull_responses"


EXCERPT_LIMIT = 64 * 1024
_TFN_REACH = 16


@dataclass(frozen=True)
class Subject:
    """What a message is about, for the console's filters (for example a client)."""

    type: str = ""
    id: str = ""
    repr: str = ""


def outbox_enqueue(
    *,
    practice: Practice,
    service: str,
    action: str,
    documents: list[tuple[str, str]],
    subject: Subject | None = None,
    created_by: User | None = None,
) -> OutboxMessage:
    """Record an outbound message in the caller's transaction; the send job is enqueued when it commits."""
    return outbox_enqueue_many(
        practice=practice, service=service, action=action, batch=[(documents, subject)], created_by=created_by
    )[0]


def outbox_enqueue_many(
    *,
    practice: Practice,
    service: str,
    action: str,
    batch: Iterable[tuple[list[tuple[str, str]], Subject | None]],
    created_by: User | None = None,
) -> list[OutboxMessage]:
    registry.get(f"{service}.{action}")  # an unknown service or action is a programming error: fail here
    host = socket.gethostname()
    rows = []
    for documents, subject in batch:
        message = OutboxMessage(
            practice=practice,
            service=service,
            action=action,
            message_id=f"{uuid.uuid4()}@{host}",
            conversation_id=str(uuid.uuid4()),
            created_by=created_by,
            subject_type=subject.type if subject else "",
            subject_id=subject.id if subject else "",
            subject_repr=subject.repr[:200] if subject else "",
        )
        message.set_payloads(documents)
        rows.append(message)
    with transaction.atomic():
        insert_many(rows, returning_pk=True)
        audit_record(
            "ato.message_queued",
            actor=created_by,
            practice=practice,
            details={
                "service": service,
                "action": action,
                "count": len(rows),
                "message_ids": [m.message_id for m in rows[:20]],
            },
        )
        ids = [m.pk for m in rows]
        # robust: the rows are committed whatever Redis does; if it is down the sweeper enqueues them later.
        transaction.on_commit(lambda: outbox_dispatch(ids), robust=True)
    return rows


def outbox_dispatch(ids: list[int], *, delay: timedelta | None = None) -> None:
    """Push send jobs of up to GATEWAY_BATCH_SIZE messages each. Safe to repeat: the worker claims each row."""
    # Marked before the jobs exist, never after: an idle worker takes a job at once, and its claim skips rows
    # that are locked, so rows still being marked would be skipped and left for the sweeper to send 30 s later.
    # A push that fails after the mark is a lost job, which the sweeper resends the same way.
    OutboxMessage.objects.filter(pk__in=ids).update(enqueued_at=timezone.now())
    queue = django_rq.get_queue("high")
    size = settings.GATEWAY_BATCH_SIZE
    at = _whole_second_at_or_after(timezone.now() + delay) if delay else None
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        if at is not None:
            queue.enqueue_at(at, SEND_JOB, chunk, job_timeout=settings.GATEWAY_JOB_TIMEOUT_SECONDS)
        else:
            queue.enqueue(SEND_JOB, chunk, job_timeout=settings.GATEWAY_JOB_TIMEOUT_SECONDS)


def _whole_second_at_or_after(moment: datetime) -> datetime:
    """RQ's scheduler keeps a job's time in whole seconds, cut down (calendar.timegm of the time tuple), so a job
    asked for 12:00:02.8 was taken at 12:00:02, before its row was due: its claim found nothing, and the sweeper sent
    the retry some 30 s later. Rounded up, the job comes at most a second late, never early."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


TRANSIENT_EBMS = {"EBMS:0005", "EBMS:0006"}


@dataclass
class Decision:
    """What one exchange came to, before it is recorded."""

    message: OutboxMessage
    status: str
    outcome: str
    started: Any
    finished: Any = None
    request_bytes: bytes = b""
    reply: transport.Reply | None = None
    code: str = ""
    text: str = ""
    next_at: Any = None
    phase: str | None = None
    reset_attempts: bool = False
    handler_outcome: Outcome | None = None
    response_message_id: str | None = None
    response: dict[str, Any] | None = None


def outbox_send_batch(ids: list[int], *, worker: str) -> None:
    claimed = _claim(ids, worker)
    if not claimed:
        return
    signing: dict[int, tuple[MachineCredential, bytes] | Exception] = {}
    prepared: list[_Prepared] = []
    decisions: list[Decision] = []
    for message in claimed:
        started = timezone.now()
        if message.attempts > settings.GATEWAY_MAX_ATTEMPTS:
            # Claimed again and again without an outcome (its batch keeps dying): stop, do not loop for ever.
            decisions.append(
                _failure(
                    message,
                    started,
                    b"",
                    None,
                    "GATEWAY:NO_OUTCOME",
                    f"No outcome after {message.attempts - 1} attempts.",
                    permanent=False,
                )
            )
            continue
        try:
            context = signing.get(message.practice_id)
            if context is None:
                # Once per practice and batch, failures included: a token service that is down is asked once.
                try:
                    credential = credential_for_signing(message.practice)
                    context = signing[message.practice_id] = (credential, tokens.saml_token(credential))
                except (transport.TransportError, wire_errors.WireError) as exc:
                    context = signing[message.practice_id] = exc
            if isinstance(context, Exception):
                raise context
            credential, token = context
            service = registry.get(f"{message.service}.{message.action}")
            build = functools.partial(
                wire.build_signed_request,
                service_action=service,
                message_id=message.message_id,
                conversation_id=message.conversation_id,
                from_abn=credential.abn,
                agent_number=message.practice.agent_number or None,
                payloads=[(name, text.encode()) for name, text in message.payloads()],
                key=credential.private_key(),
                certificate=credential.certificate(),
                saml_assertion=token,
                properties=_properties(),
            )
            body, content_type = build()
        except (transport.TransportError, wire_errors.WireError) as exc:
            decisions.append(
                _failure(
                    message, started, b"", None, _code(exc), str(exc), permanent=bool(getattr(exc, "permanent", False))
                )
            )
            continue
        except Exception as exc:
            log.exception("outbox %s: preparing the message failed", message.message_id)
            decisions.append(
                _failure(
                    message,
                    started,
                    b"",
                    None,
                    "GATEWAY:INTERNAL",
                    f"Preparing the message failed ({exc.__class__.__name__}).",
                    permanent=False,
                )
            )
            continue
        try:
            url = endpoint_url(service.endpoint)
        except wire_errors.WireError as exc:
            decisions.append(_failure(message, started, b"", None, "GATEWAY:ENDPOINT", str(exc), permanent=True))
            continue
        prepared.append((message, started, url, body, content_type, build))
    if prepared:
        decisions.extend(_send_pool().map(_exchange, prepared))
    _record(decisions, worker)


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None


def _send_pool() -> ThreadPoolExecutor:
    """The send threads of this process, kept from batch to batch: starting and joining GATEWAY_SEND_THREADS
    threads for every batch cost 1.5 ms of CPU, 30 µs a message. Per process id, so that a forked child never
    waits on threads that only its parent has. The exchanges touch no database, so the threads hold no
    connection."""
    global _POOL
    size = settings.GATEWAY_SEND_THREADS
    if _POOL is None or _POOL[:2] != (os.getpid(), size):
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[2].shutdown(wait=False)
        _POOL = (os.getpid(), size, ThreadPoolExecutor(max_workers=size, thread_name_prefix="ato-send"))
    return _POOL[2]


def outbox_send_one(pk: int, *, worker: str) -> str | None:
    """Send one message (the batch path with a batch of one). Returns its new status, or None if it was not
    claimable (another worker has it, or it is not due)."""
    outbox_send_batch([pk], worker=worker)
    status: str | None = OutboxMessage.objects.filter(pk=pk).values_list("status", flat=True).first()
    return status


def _claim(ids: list[int], worker: str) -> list[OutboxMessage]:
    """Claim the batch's due rows by a conditional update; rows another worker holds are skipped, not waited on."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(
                pk__in=ids,
                phase="send",
                status__in=[MessageStatus.PENDING, MessageStatus.RETRY],
                next_attempt_at__lte=now,
            )
            .values_list("pk", flat=True)
        )
        if not due:
            return []
        OutboxMessage.objects.filter(pk__in=due).update(
            status=MessageStatus.SENDING, claimed_at=now, claimed_by=worker, attempts=F("attempts") + 1
        )
    return list(OutboxMessage.objects.select_related("practice").filter(pk__in=due).order_by("pk"))


# A message waiting for a send thread, and how to sign it again.
_Prepared = tuple[OutboxMessage, Any, str, bytes, str, Callable[[], tuple[bytes, str]]]


def _exchange(item: _Prepared) -> Decision:
    message, started, url, body, content_type, build = item
    reply: transport.Reply | None = None
    try:
        if timezone.now() - started > timedelta(seconds=settings.GATEWAY_RESIGN_AFTER_SECONDS):
            # Its turn came long after the batch was signed (a slow ATO holds every send thread): signed again, with
            # a fresh eb:Timestamp, so that a receiver's freshness window does not refuse it. Same MessageId.
            body, content_type = build()
        reply = transport.post(url, body, content_type)
        inbound = _read_reply(reply)
    except (transport.TransportError, wire_errors.WireError) as exc:
        return _failure(
            message, started, body, reply, _code(exc), str(exc), permanent=bool(getattr(exc, "permanent", False))
        )
    return _decide(message, started, body, reply, inbound)


def _pull_key(practice_id: int) -> str:
    return f"gateway-pull-scheduled-{practice_id}"


def _read_reply(reply: transport.Reply, *, pulled: bool = False) -> Any:
    """Verify and read the ATO's reply, whatever its HTTP status (ebMS errors commonly come on a 500). The ATO
    signs only the responses it hands out by pull (SBR ebMS3 Web Services Implementation Guide v1.7): any other
    reply may come unsigned and is read, and verified in full when it is signed; a pulled response (``pulled``)
    must be signed. A reply mangled on the way (not XML, truncated, not gzip) is worth asking for again: the ATO
    answers a repeated MessageId with its stored first answer. A reply whose signature fails is not: it may be
    forged, and asking again will not make it genuine. A SOAP fault is decided by its code."""
    try:
        inbound = wire.parse_response(
            reply.body,
            reply.content_type,
            ato_certificate=tokens.ato_certificate(),
            require_signature=False,
            max_inflated_bytes=settings.GATEWAY_MAX_INFLATED_BYTES,
        )
    except wire_errors.SoapFault as exc:
        raise wire_errors.WireError(
            f"The ATO answered HTTP {reply.status} with a SOAP fault ({exc}).",
            permanent=exc.permanent,
            ebms_code=f"REPLY:FAULT:{exc.code or 'unknown'}",
        ) from exc
    except (wire_errors.MalformedMessage, wire_errors.UnsafeXML, wire_errors.DecompressionFailure) as exc:
        if isinstance(exc, wire_errors.SignatureInvalid):
            raise
        raise wire_errors.WireError(
            f"The ATO's reply was unreadable ({exc}); asking again.", permanent=False, ebms_code="REPLY:MALFORMED"
        ) from exc
    if pulled and inbound.kind == "user" and not inbound.signed:
        raise wire_errors.SignatureInvalid("The pulled response is not signed; the ATO signs every pulled response.")
    return inbound


def endpoint_url(name: str) -> str:
    """The URL of one of the ATO's logical endpoints (registry.ENDPOINTS) in the configured environment: a path
    under ATO_EBMS_URL for the stand-in ATO, the published address from settings for the ATO's own."""
    environment = settings.ATO_ENVIRONMENT
    if environment == "sandbox":
        return f"{settings.ATO_EBMS_URL}/{name.lower()}"
    url: str = settings.ATO_ENDPOINTS.get(environment, {}).get(name, "")
    if not url:
        setting = f"ATO_{environment.upper()}_{name.upper().replace('-', '_')}_URL"
        raise wire_errors.WireError(
            f"The ATO's {name} endpoint for the {environment} environment is not configured ({setting}).",
            permanent=True,
        )
    return url


def _schedule_pull(practice_id: int, delay: timedelta) -> None:
    """At most one pull scheduled per practice: the marker lives until the pull starts (or a minute past its
    time, if its job is lost), so receipts, retries and the sweeper never pile pulls up."""
    if cache.add(_pull_key(practice_id), 1, timeout=int(delay.total_seconds()) + 60):
        django_rq.get_queue("high").enqueue_in(delay, PULL_JOB, practice_id)


def _code(exc: Exception) -> str:
    if isinstance(exc, transport.TransportError):
        return exc.code
    ebms_code = getattr(exc, "ebms_code", "")
    return ebms_code if ebms_code.startswith("REPLY:") else exc.__class__.__name__  # REPLY:MALFORMED, REPLY:TOKEN


_PROPERTY_SETTINGS = {
    "ProductID": "SBR_PRODUCT_ID",
    "BMS Vendor": "SBR_BMS_VENDOR",
    "BMS Name": "SBR_BMS_NAME",
    "BMS Version": "SBR_BMS_VERSION",
}


def _properties() -> dict[str, str]:
    """The MessageProperties every message carries. ProductID, BMS Vendor and BMS Name must match the software's
    registration with the ATO, so a message is never sent without them (only development has stand-in values)."""
    properties = {name: str(getattr(settings, setting, "") or "") for name, setting in _PROPERTY_SETTINGS.items()}
    missing = [_PROPERTY_SETTINGS[name] for name in registry.REGISTRATION_PROPERTY_NAMES if not properties[name]]
    if missing:
        raise wire_errors.WireError(
            f"The software's registration with the ATO is not configured ({', '.join(missing)}): nothing is sent "
            "to the ATO without it.",
            permanent=True,
        )
    return properties


def _decide(
    message: OutboxMessage, started: Any, request_bytes: bytes, reply: transport.Reply, inbound: Any
) -> Decision:
    if inbound.kind == "error":
        # Decided by the errors' own codes and severities, never by the HTTP status they came with.
        failures = [e for e in inbound.errors if e.severity.lower() != "warning"] or inbound.errors
        first = failures[0] if failures else None
        code = first.code if first else "EBMS:0004"
        text = (first.short_description + (f": {first.detail}" if first.detail else "")) if first else "ebMS error"
        if any(e.code == "EBMS:0101" for e in inbound.errors):
            tokens.forget_tokens()  # the ATO may have refused the token: the next attempt asks for a fresh one
        transient = bool(failures) and all(e.code in TRANSIENT_EBMS for e in failures)
        return _failure(message, started, request_bytes, reply, code, text, permanent=not transient)
    if inbound.ref_to_message_id and inbound.ref_to_message_id != message.message_id:
        return _failure(
            message,
            started,
            request_bytes,
            reply,
            "REPLY:MISMATCH",
            "The ATO's reply refers to another message.",
            permanent=True,
        )
    if inbound.kind == "receipt" and registry.get(f"{message.service}.{message.action}").pattern == "single-sync":
        # The ebMS3 test service is answered by the receiving MSH, a Receipt at most: the connection works.
        return Decision(
            message,
            MessageStatus.DONE,
            AttemptOutcome.OK,
            started,
            request_bytes=request_bytes,
            reply=reply,
            handler_outcome=Outcome(ok=True, kind="receipt"),
            response_message_id=inbound.message_id,
            response={"documents": {}, "events": []},
        )
    if inbound.kind == "receipt":
        # Pushed: the ATO has it. Its response is collected by pulling the practice's channel.
        return Decision(
            message,
            MessageStatus.AWAITING,
            AttemptOutcome.OK,
            started,
            request_bytes=request_bytes,
            reply=reply,
            text="Receipt received; the response will be pulled.",
            next_at=timezone.now(),  # its first pull may go at once (outbox_pull paces the ones after it)
            phase="pull",
            reset_attempts=True,
        )
    documents = {name: data.decode("utf-8", "replace") for name, data in inbound.payloads.items()}
    events = [
        {
            "code": e.code,
            "severity": e.severity,
            "short_description": e.short_description,
            "detailed_description": e.detailed_description,
            "parameters": [list(p) for p in e.parameters],
        }
        for e in inbound.event_items
    ]
    code = text = ""
    if inbound.maximum_severity == SEVERITY_PARTIAL:
        # Partly accepted: the accepted part is delivered and applied like any answer; the refused part is in the
        # event items the handler gets, and the console says so on the message.
        refused = [e for e in inbound.event_items if e.severity == "Error"]
        code = "EVENT:PARTIAL"
        text = f"The ATO accepted part of the message and refused {len(refused)} item(s): " + "; ".join(
            f"{e.code} {e.short_description}".strip() for e in refused[:5]
        )
    return Decision(
        message,
        MessageStatus.DONE,
        AttemptOutcome.OK,
        started,
        request_bytes=request_bytes,
        reply=reply,
        code=code,
        text=text,
        handler_outcome=Outcome(ok=True, kind="user", documents=documents, events=events),
        response_message_id=inbound.message_id,
        response={"documents": documents, "events": events, "maximum_severity": inbound.maximum_severity},
    )


def _failure(
    message: OutboxMessage,
    started: Any,
    request_bytes: bytes,
    reply: transport.Reply | None,
    code: str,
    text: str,
    *,
    permanent: bool,
) -> Decision:
    if permanent or message.attempts >= settings.GATEWAY_MAX_ATTEMPTS:
        # Permanent failures stop at once; transient ones stop when the attempts run out (a dead letter).
        status, kind, attempt = (
            (MessageStatus.FAILED, "failed", AttemptOutcome.PERMANENT)
            if permanent
            else (MessageStatus.DEAD, "dead", AttemptOutcome.TRANSIENT)
        )
        return Decision(
            message,
            status,
            attempt,
            started,
            request_bytes=request_bytes,
            reply=reply,
            code=code,
            text=text,
            handler_outcome=Outcome(ok=False, kind=kind, error_code=code, error_text=text),
        )
    return Decision(
        message,
        MessageStatus.RETRY,
        AttemptOutcome.TRANSIENT,
        started,
        request_bytes=request_bytes,
        reply=reply,
        code=code,
        text=text,
        next_at=timezone.now() + backoff(message.attempts),
    )


def backoff(attempts: int) -> timedelta:
    """Exponential with full jitter: spreads a crowd of retries after an outage instead of a thundering herd."""
    ceiling = min(settings.GATEWAY_BACKOFF_CAP_SECONDS, settings.GATEWAY_BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


# The whole WS-Security header is left out of what the console keeps: the SAML token and the signature are
# secrets or noise to a reader, and the header is two thirds of a message, which every attempt would otherwise
# store and scan for TFNs. Found with two searches that start at a literal "<" rather than one lazy `.*?` match,
# which cost six times as much on a 6 KB message.
_SECURITY_OPEN = re.compile(rb"<(?:\w+:)?Security\b[^>]*>")


_SECURITY_CLOSE = re.compile(rb"</(?:\w+:)?Security>")


def _excerpt(data: bytes) -> str:
    """What the console shows of a wire message: the security header cut out, TFNs masked, size capped."""
    opening = _SECURITY_OPEN.search(data)
    closing = _SECURITY_CLOSE.search(data, opening.end()) if opening else None
    if opening and closing:
        data = data[: opening.end()] + b"[omitted]" + data[closing.start() :]
    # A NUL (in any gzip part that falls within the excerpt) is the one character PostgreSQL text cannot hold:
    # kept, it failed the insert of the whole batch's attempts, and the message never settled.
    # Masked before the cut, over a little more than is kept: a TFN the cut went through would otherwise be too
    # short to be found, and stay 7 or 8 clear digits. A TFN with its separators is at most 11 ASCII bytes. The cut
    # is then where the limit falls in the text; a mask is longer than what it hides, so nothing past the limit
    # (the tail of a run the wider window itself cut) moves back in front of it.
    kept = len(data[:EXCERPT_LIMIT].decode("utf-8", "replace"))
    text = data[: EXCERPT_LIMIT + _TFN_REACH].decode("utf-8", "replace").replace("\x00", "\ufffd")
    return redact_tfns(text)[:kept]


# What recording an outcome writes to a message.
_FIELDS = [
    "status",
    "error_code",
    "error_text",
    "claimed_by",
    "next_attempt_at",
    "attempts",
    "phase",
    "response_message_id",
    "response_encrypted",
    "completed_at",
]


def _record(decisions: list[Decision], worker: str) -> None:
    """Record attempts and new states in one transaction, only for rows this worker still holds (a sweeper may
    have handed a slow worker's row to another). Handlers run inside it, in savepoints (``_run_handlers``): a
    handler that fails leaves its message failed with the reason, and the others are still recorded."""
    if not decisions:
        return
    finished = timezone.now()
    retries: list[tuple[int, Any]] = []
    pulls: set[int] = set()
    with transaction.atomic():
        held = set(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=[d.message.pk for d in decisions], status=MessageStatus.SENDING, claimed_by=worker)
            .values_list("pk", flat=True)
        )
        # A reply MessageId already held by another message is a replay; the same message asking again (a resend)
        # rightly gets the ATO's first answer, with the same MessageId.
        replayed = dict(
            OutboxMessage.objects.filter(
                response_message_id__in=[d.response_message_id for d in decisions if d.response_message_id]
            ).values_list("response_message_id", "pk")
        )
        attempts, updated = [], []
        settling: list[tuple[OutboxMessage, Outcome]] = []
        for d in decisions:
            m = d.message
            if m.pk not in held:
                log.warning("outbox %s: claim lost before the outcome was recorded", m.message_id)
                continue
            if d.response_message_id in replayed and replayed[d.response_message_id] != m.pk:
                d = _failure(
                    m,
                    d.started,
                    d.request_bytes,
                    d.reply,
                    "REPLY:REPLAYED",
                    "The ATO's reply repeats the MessageId of an earlier reply: refused as a replay.",
                    permanent=True,
                )
            attempts.append(
                MessageAttempt(
                    message=m,
                    number=m.attempts,
                    kind=m.phase,
                    started_at=d.started,
                    duration_ms=int((finished - d.started).total_seconds() * 1000),
                    http_status=d.reply.status if d.reply else None,
                    outcome=d.outcome,
                    error_code=d.code,
                    error_text=redact_tfns(d.text)[:2000],
                    worker=worker,
                    request_excerpt=_excerpt(d.request_bytes),
                    response_excerpt=_excerpt(d.reply.body) if d.reply else "",
                )
            )
            m.status, m.error_code, m.error_text, m.claimed_by = d.status, d.code, redact_tfns(d.text)[:2000], ""
            if d.next_at is not None:
                m.next_attempt_at = d.next_at
            if d.reset_attempts:
                m.attempts = 0
            if d.phase is not None:
                m.phase = d.phase
            if d.response_message_id:
                m.response_message_id = d.response_message_id
            if d.response is not None:
                m.set_response(d.response)
            if d.status in (MessageStatus.DONE, MessageStatus.FAILED, MessageStatus.DEAD):
                m.completed_at = finished
            if d.handler_outcome is not None:
                settling.append((m, d.handler_outcome))
            if m.status == MessageStatus.RETRY:
                retries.append((m.pk, m.next_attempt_at))
            if m.status == MessageStatus.AWAITING:
                pulls.add(m.practice_id)
            updated.append(m)
        _run_handlers(settling)
        # After the handlers: one that failed has left its message failed, and the audit says so.
        audits = [
            (m, f"ato.message_{m.status}", {"message_id": m.message_id, "error": m.error_code}) for m, _ in settling
        ]
        insert_many(attempts)
        update_many(updated, _FIELDS)
        by_practice: dict[int, list[tuple[str, Any, str, dict[str, Any]]]] = {}
        for m, action, details in audits:
            target_repr = f"{m.service} {m.action} {m.subject_repr}".strip()
            by_practice.setdefault(m.practice_id, []).append((action, m, target_repr, details))
        for practice_id in sorted(by_practice):  # one lock order for every worker: no deadlocks
            audit_record_system_many(Practice(pk=practice_id), by_practice[practice_id])
    now = timezone.now()
    for pk, at in retries:
        outbox_dispatch([pk], delay=max(at - now, timedelta(0)))
    for practice_id in pulls:
        _schedule_pull(practice_id, timedelta(seconds=1))


def _run_handlers(settling: list[tuple[OutboxMessage, Outcome]]) -> None:
    """Settle the batch's questions: those whose purpose takes its answers many at a time together, in one
    savepoint; every other message on its own (``_run_handler``). Should the answers taken together fail, that
    savepoint is rolled back and each of them is settled on its own instead, so that one answer that cannot be
    recorded still leaves the others recorded and fails its own message alone."""
    if not settling:
        return
    try:
        with transaction.atomic():
            singly = answers_settle_many(settling)
    except Exception:
        log.warning("recording %d answers together failed: recording them one at a time", len(settling), exc_info=True)
        singly = settling
    for message, outcome in singly:
        _run_handler(message, outcome)


def _run_handler(message: OutboxMessage, outcome: Outcome) -> None:
    """Settle the message's question, if it is one, and so run its purpose's handler, in a savepoint: a handler
    that fails leaves the message failed with the reason (a resend delivers the stored answer again), and the
    other messages of the batch are still recorded."""
    try:
        with transaction.atomic():
            answer_settle(message, outcome)
    except Exception as exc:
        log.exception("recording the answer to %s %s failed on %s", message.service, message.action, message.message_id)
        message.status = MessageStatus.FAILED
        message.error_code = "HANDLER"
        message.error_text = (
            f"The ATO answered, but recording the answer failed ({exc.__class__.__name__}). "
            "Resend to deliver it again: the ATO answers with its first answer."
        )
        answer_unrecorded(
            message,
            "The ATO answered, but the portal could not record its answer. A practice admin can resend the message "
            "from the gateway console: the stored answer is then recorded.",
        )
