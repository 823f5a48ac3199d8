"""Operations: the connection test, an operator's resend, the sweeper that recovers lost jobs and dead workers'
claims, and the ATO's health as one practice sees it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ato_gateway.answers import answer_settle, outcome_of
from ato_gateway.handlers import Outcome
from ato_gateway.models import (
    AttemptOutcome,
    MessageAttempt,
    MessageStatus,
    OutboxMessage,
    PulledResponse,
)
from ato_gateway.services.pulling import outbox_deliver_pulled
from ato_gateway.services.sending import (
    Decision,
    Subject,
    _record,
    _schedule_pull,
    outbox_dispatch,
    outbox_enqueue,
)
from portal.audit import audit_record
from portal.models import Practice, User

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def gateway_ping(*, user: User) -> OutboxMessage:
    """A signed round trip that changes nothing at the ATO: proves credential, token, signature and network."""
    from xml.sax.saxutils import escape

    text = escape(f"Connection test by {user.username}")
    document = f'<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>{text}</Text></PingRequest>'
    with transaction.atomic(durable=True):
        return outbox_enqueue(
            practice=user.tenant,
            service=PING_SERVICE,
            action=PING_ACTION,
            documents=[("PingRequest", document)],
            created_by=user,
            subject=Subject("ping", "", "Connection test"),
        )


PING_SERVICE, PING_ACTION = "PING", "Ping.001.00"


def outbox_resend(*, user: User, message: OutboxMessage) -> bool:
    """Try a failed or dead message again. If the ATO answered but recording the answer failed, the stored answer
    is handed to the handler again; otherwise the message is sent again with the same MessageId, which the ATO
    applies at most once."""
    with transaction.atomic():
        locked = (
            OutboxMessage.objects.select_for_update()
            .filter(pk=message.pk, status__in=[MessageStatus.FAILED, MessageStatus.DEAD])
            .first()
        )
        if locked is None:
            return False
        audit_record("ato.message_resent", actor=user, target=locked, details={"message_id": locked.message_id})
        if locked.error_code == "HANDLER" and locked.response():
            # The ATO answered and only recording it failed: deliver the stored answer again, asking nothing.
            answer_settle(locked, outcome_of(locked))
            OutboxMessage.objects.filter(pk=locked.pk).update(
                status=MessageStatus.DONE, error_code="", error_text="", completed_at=timezone.now()
            )
            return True
        OutboxMessage.objects.filter(pk=locked.pk).update(
            status=MessageStatus.RETRY, phase="send", attempts=0, next_attempt_at=timezone.now(), completed_at=None
        )
        transaction.on_commit(lambda: outbox_dispatch([locked.pk]), robust=True)
    return True


def outbox_sweep() -> int:
    """Every few seconds: re-enqueue rows that should have been sent by now (committed but never enqueued, or
    their job lost); hand back claims a dead worker held; deliver stored pulled responses; keep a pull scheduled
    for practices with responses outstanding; and give up on responses that never came. Repeating any of it is
    harmless: a worker claims each row before it touches it."""
    now = timezone.now()
    lease = now - timedelta(seconds=settings.GATEWAY_CLAIM_LEASE_SECONDS)
    orphaned = OutboxMessage.objects.filter(status=MessageStatus.SENDING, claimed_at__lt=lease)
    orphaned.filter(phase="send").update(status=MessageStatus.RETRY, claimed_by="", next_attempt_at=now)
    orphaned.filter(phase="pull").update(status=MessageStatus.AWAITING, claimed_by="", next_attempt_at=now)
    due = list(
        OutboxMessage.objects.filter(
            phase="send",
            status__in=[MessageStatus.PENDING, MessageStatus.RETRY],
            next_attempt_at__lte=now - timedelta(seconds=5),
        )
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - timedelta(seconds=30)))
        .values_list("pk", flat=True)[:5000]
    )
    if due:
        outbox_dispatch(due)
    for practice_id in PulledResponse.objects.values_list("practice_id", flat=True).distinct():
        outbox_deliver_pulled(practice_id, worker="sweeper")
    _give_up_awaiting(now - timedelta(hours=settings.GATEWAY_PULL_GIVE_UP_HOURS))
    for practice_id in (
        OutboxMessage.objects.filter(phase="pull", status=MessageStatus.AWAITING)
        .values_list("practice_id", flat=True)
        .distinct()
    ):
        _schedule_pull(practice_id, timedelta(seconds=0))
    return len(due)


def _give_up_awaiting(cutoff: Any) -> None:
    stale = list(
        OutboxMessage.objects.filter(phase="pull", status=MessageStatus.AWAITING, claimed_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:1000]
    )
    if not stale:
        return
    now = timezone.now()
    OutboxMessage.objects.filter(pk__in=stale, status=MessageStatus.AWAITING).update(
        status=MessageStatus.SENDING, claimed_at=now, claimed_by="sweeper"
    )
    hours = settings.GATEWAY_PULL_GIVE_UP_HOURS
    decisions = [
        Decision(
            m,
            MessageStatus.DEAD,
            AttemptOutcome.TRANSIENT,
            now,
            code="GATEWAY:NO_RESPONSE",
            text=f"The ATO took the message but no response came back within {hours} hours.",
            handler_outcome=Outcome(
                ok=False, kind="dead", error_code="GATEWAY:NO_RESPONSE", error_text="No response from the ATO."
            ),
        )
        for m in OutboxMessage.objects.select_related("practice").filter(pk__in=stale, claimed_by="sweeper")
    ]
    _record(decisions, "sweeper")


@dataclass(frozen=True)
class Health:
    attempts: int
    failures: int
    last_success: Any
    failing: bool

    @property
    def error_rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


def gateway_health(*, practice: Practice, window: timedelta = timedelta(minutes=10)) -> Health:
    """Recent transport health of one practice's own traffic: every figure, the last success included, counts only
    its messages, so one practice's console and banner never show (or react to) another's exchanges."""
    since = timezone.now() - window
    recent = MessageAttempt.objects.filter(started_at__gte=since, message__practice=practice)
    attempts = recent.count()
    failures = recent.filter(outcome=AttemptOutcome.TRANSIENT).exclude(error_code="EBMS:0006").count()
    last_success = (
        MessageAttempt.objects.filter(outcome=AttemptOutcome.OK, message__practice=practice)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    # Either half of a busy window failed, or the practice's latest few attempts all failed just now: an outage that
    # starts after a morning of successes is failing at once, though the earlier successes outweigh it in the
    # window (a 40-second outage never raised the banner on the ratio alone).
    failing = (attempts >= 5 and failures / attempts >= 0.5) or _latest_attempts_failed(practice)
    return Health(attempts, failures, last_success, failing)


# The outage banner's second rule: this many of the practice's latest attempts failed, all within this long.
RECENT_FAILURES_IN_A_ROW = 3
RECENT_FAILURES_WITHIN = timedelta(minutes=5)


def _latest_attempts_failed(practice: Practice) -> bool:
    latest = list(
        MessageAttempt.objects.filter(message__practice=practice)
        .order_by("-started_at", "-id")
        .values_list("outcome", "error_code", "started_at")[:RECENT_FAILURES_IN_A_ROW]
    )
    since = timezone.now() - RECENT_FAILURES_WITHIN
    return len(latest) == RECENT_FAILURES_IN_A_ROW and all(
        outcome == AttemptOutcome.TRANSIENT and code != "EBMS:0006" and at >= since for outcome, code, at in latest
    )
