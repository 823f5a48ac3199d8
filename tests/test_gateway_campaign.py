"""The fault campaign: 1,000 messages through real RQ worker processes to the stand-in ATO while it injects
random faults, and one worker is killed with SIGKILL in the middle of a batch. Every message must reach a
terminal state, none may be lost, and the stand-in ATO must apply none twice (it counts per MessageId)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import transaction

from ato_gateway import services, tokens
from ato_gateway.models import MessageStatus, OutboxMessage
from portal.models import AuditEvent
from tests.gateway_fixtures import Sandbox, sandbox  # noqa: F401 - the fixture
from tests.test_gateway import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
COUNT = 1000
LEASE = 8


def start_worker(env: dict[str, str], log_path: str) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the process
    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "high", "--with-scheduler"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_fault_campaign(practice, admin, sandbox: Sandbox, settings, tmp_path):  # noqa: F811
    for name, value in sandbox.env().items():
        setattr(settings, name, value)
    settings.GATEWAY_CLAIM_LEASE_SECONDS = LEASE
    tokens.forget_tokens()
    services.credential_import(
        practice=practice,
        data=sandbox.demo_keystore.read_bytes(),
        filename="demo-keystore.xml",
        password=DEMO_PASSWORD,
        actor=admin,
    )
    sandbox.faults(
        http_500=0.04,
        http_503=0.04,
        reset=0.04,
        timeout=0.01,
        malformed=0.03,
        bad_signature=0.005,
        latency_ms=0,
        seed=20261123,
    )

    env = {
        **os.environ,
        **sandbox.env(),
        "DATABASE_URL": f"postgres:///{settings.DATABASES['default']['NAME']}",
        "GATEWAY_BACKOFF_BASE_SECONDS": "0.1",
        "GATEWAY_BACKOFF_CAP_SECONDS": "1",
        "GATEWAY_MAX_ATTEMPTS": "10",
        "GATEWAY_CLAIM_LEASE_SECONDS": str(LEASE),
        "ATO_READ_TIMEOUT_SECONDS": "1.5",
    }
    document = '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>campaign {}</Text></PingRequest>'
    with transaction.atomic():
        messages = services.outbox_enqueue_many(
            practice=practice,
            service="PING",
            action="Ping.001.00",
            batch=[([("PingRequest", document.format(i))], None) for i in range(COUNT)],
        )
    ids = [m.pk for m in messages]
    # The victim works alone until it is in the middle of a batch, so the rows being sent are its own when it is
    # killed (with two workers from the start, a fast run could find only the other's rows in flight).
    victim = start_worker(env, str(tmp_path / "worker-1.log"))
    survivor = None
    try:
        # Kill one worker (and the work horse it forked) while it is in the middle of a batch.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (
                OutboxMessage.objects.filter(pk__in=ids, status=MessageStatus.DONE).count() >= COUNT // 5
                and OutboxMessage.objects.filter(pk__in=ids, status=MessageStatus.SENDING).exists()
            ):
                break
            time.sleep(0.05)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        stranded = OutboxMessage.objects.filter(pk__in=ids, status=MessageStatus.SENDING).count()
        survivor = start_worker(env, str(tmp_path / "worker-2.log"))
        replacement = start_worker(env, str(tmp_path / "worker-3.log"))

        # The cron sweeper's job, every couple of seconds: release dead claims, re-enqueue what is due.
        deadline = time.monotonic() + 300
        while (
            OutboxMessage.objects.filter(pk__in=ids)
            .exclude(status__in=[MessageStatus.DONE, MessageStatus.FAILED, MessageStatus.DEAD])
            .exists()
        ):
            assert time.monotonic() < deadline, Counter(
                OutboxMessage.objects.filter(pk__in=ids).values_list("status", flat=True)
            )
            services.outbox_sweep()
            time.sleep(2)
    finally:
        for process in (victim, survivor, locals().get("replacement")):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        sandbox.clear_faults()

    statuses = Counter(OutboxMessage.objects.filter(pk__in=ids).values_list("status", flat=True))
    applied = sandbox.stats()["applied"]
    mine = {m.message_id for m in OutboxMessage.objects.filter(pk__in=ids)}
    twice = {mid: n for mid, n in applied.items() if mid in mine and n > 1}
    print(
        f"\ncampaign: {dict(statuses)}; stranded by the kill: {stranded}; "
        f"attempts: {sum(OutboxMessage.objects.filter(pk__in=ids).values_list('attempts', flat=True))}"
    )
    assert sum(statuses.values()) == COUNT  # none lost
    assert twice == {}  # none applied twice
    done = set(OutboxMessage.objects.filter(pk__in=ids, status=MessageStatus.DONE).values_list("message_id", flat=True))
    assert all(applied.get(mid) == 1 for mid in done)
    assert statuses[MessageStatus.DONE] >= COUNT * 0.95
    # Each terminal message told its outcome exactly once.
    finals = Counter(
        AuditEvent.objects.filter(
            action__in=["ato.message_done", "ato.message_failed", "ato.message_dead"]
        ).values_list("object_id", flat=True)
    )
    assert len(finals) == COUNT and set(finals.values()) == {1}
    assert stranded >= 1, "the kill should have caught a worker mid-batch"
