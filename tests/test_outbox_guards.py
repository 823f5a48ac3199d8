"""The outbox's claim, decision and record, where a wrong step would send twice, retry what must not be retried or
trust a forged reply (issue 18, items 7, 9, 10 and 11). Each test was seen to fail with its behaviour broken."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ato_gateway import services
from ato_gateway.handlers import Outcome
from ato_gateway.models import AttemptOutcome, MessageAttempt, MessageStatus, OutboxMessage
from ato_gateway.services import sending
from portal.models import AuditEvent, Practice
from tests.gateway_fixtures import (  # noqa: F401 - the fixtures
    DEMO_PASSWORD,
    Sandbox,
    pump,
    sandbox,
    settled,
)

pytestmark = pytest.mark.django_db(transaction=True)
PING_DOCUMENT = '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>{}</Text></PingRequest>'


@pytest.fixture
def received(monkeypatch) -> list:
    """Every outcome the gateway hands on to be recorded (sending._run_handler, which runs the domain app's
    handler), watched and passed through: independent of how domain apps register their handlers."""
    seen: list = []
    run_handler = sending._run_handler

    def watching(message: OutboxMessage, outcome: Outcome) -> None:
        seen.append((message.message_id, outcome))
        run_handler(message, outcome)

    monkeypatch.setattr(sending, "_run_handler", watching)
    return seen


def ping(practice: Practice, document: str | None = None) -> OutboxMessage:
    with transaction.atomic():
        return services.outbox_enqueue(
            practice=practice,
            service=services.PING_SERVICE,
            action=services.PING_ACTION,
            documents=[("PingRequest", document or PING_DOCUMENT.format("hello"))],
        )


def test_a_resend_after_a_dead_letter_keeps_the_message_id(credentialed, gateway, received, admin, login):
    gateway.faults(outage_seconds=60)
    message = ping(credentialed)
    original_id = OutboxMessage.objects.get(pk=message.pk).message_id
    pump(settled(message))
    assert OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.DEAD
    gateway.clear_faults()
    assert login(admin).post(reverse("ato_gateway:resend", args=[message.pk])).status_code == 302
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE
    assert message.message_id == original_id
    assert gateway.stats()["applied"][original_id] == 1
    assert [(mid, o.ok) for mid, o in received] == [(original_id, False), (original_id, True)]


def test_a_worker_that_lost_its_claim_records_nothing(practice, received, settings):
    message = ping(practice)
    [held_by_first] = sending._claim([message.pk], "worker-1")
    # Worker 1 stalls past its lease: the sweeper hands the row back and worker 2 claims it.
    OutboxMessage.objects.filter(pk=message.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.GATEWAY_CLAIM_LEASE_SECONDS + 60)
    )
    services.outbox_sweep()
    assert [m.pk for m in sending._claim([message.pk], "worker-2")] == [message.pk]
    audits_before = AuditEvent.objects.count()
    late = services.Decision(
        held_by_first,
        MessageStatus.DONE,
        AttemptOutcome.OK,
        timezone.now(),
        handler_outcome=Outcome(ok=True, kind="user"),
        response={"documents": {}, "events": []},
    )
    sending._record([late], "worker-1")
    assert received == []
    message.refresh_from_db()
    assert (message.status, message.claimed_by) == (MessageStatus.SENDING, "worker-2")
    assert not MessageAttempt.objects.filter(message=message).exists()
    assert AuditEvent.objects.count() == audits_before


def test_a_permanent_ebms_error_fails_the_message_after_one_attempt(credentialed, gateway, received):
    # The stand-in ATO answers a PING whose part is not a PingRequest with EBMS:0004, as the ATO would.
    message = ping(credentialed, '<NotAPing xmlns="http://www.sbr.gov.au/ato/ping"/>')
    pump(settled(message))
    message.refresh_from_db()
    assert (message.status, message.error_code, message.attempts) == (MessageStatus.FAILED, "EBMS:0004", 1)
    assert list(message.attempt_log.values_list("outcome", flat=True)) == [AttemptOutcome.PERMANENT]
    assert [o.ok for _, o in received] == [False]


def test_a_forged_ebms_reply_fails_the_message_for_good(credentialed, gateway, received):
    """With the token already cached, the damaged reply is the ebMS one, not the token service's."""
    first = ping(credentialed)
    pump(settled(first))
    assert OutboxMessage.objects.get(pk=first.pk).status == MessageStatus.DONE
    received_before = gateway.stats()["received"]
    gateway.faults(next=["bad_signature"])
    message = ping(credentialed)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert "signature" in message.error_text.lower()
    assert message.attempt_log.count() == 1
    # One exchange reached the stand-in: the ebMS one. No token was asked for, so the damaged reply was ebMS's.
    assert gateway.stats()["received"] - received_before == 1
    assert [o.ok for _, o in received] == [True, False]
