"""The gateway end to end: outbox row, RQ job on a real worker and Redis, signed request over real HTTP to the
stand-in ATO process, its signed reply verified, the outcome recorded and handed to the registered handler."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client as HttpClient
from django.urls import reverse

from ato_gateway import services, tokens
from ato_gateway.handlers import Outcome
from ato_gateway.models import MachineCredential, MessageStatus, OutboxMessage
from ato_gateway.services import operations, sending
from ato_gateway.wire import keystore
from portal.models import AuditEvent, Practice
from tests.conftest import run_worker_burst
from tests.gateway_fixtures import (  # noqa: F401 - the fixtures
    DEMO_PASSWORD,
    Sandbox,
    pump,
    sandbox,
    settled,
)

pytestmark = pytest.mark.django_db(transaction=True)
FIXTURE_KEYSTORE = (
    Path(__file__).resolve().parents[1] / "ato_gateway/wire/tests/fixtures/keystores/ato-usi-test-keystore.xml"
)
FIXTURE_BYTES = FIXTURE_KEYSTORE.read_bytes()


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every outcome the gateway hands on to be recorded (sending._run_handler, which settles the message's
    question and so runs its purpose's handler), watched and passed through: a ping is no question, so no domain
    app's handler sees it."""
    seen: list = []
    run_handler = sending._run_handler

    def watching(message: OutboxMessage, outcome: Outcome) -> None:
        seen.append((message.message_id, outcome))
        run_handler(message, outcome)

    monkeypatch.setattr(sending, "_run_handler", watching)
    return seen


def ping(practice: Practice, text: str = "hello") -> OutboxMessage:
    document = f'<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>{text}</Text></PingRequest>'
    with transaction.atomic():
        return services.outbox_enqueue(
            practice=practice, service="PING", action="Ping.001.00", documents=[("PingRequest", document)]
        )


def test_round_trip_to_the_handler(credentialed, gateway, received):
    message = ping(credentialed, "round trip")
    assert message.status == MessageStatus.PENDING
    run_worker_burst()  # the job was enqueued when the transaction committed
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    assert "round trip" in message.response()["documents"]["PingResponse"]
    assert [e["code"] for e in message.response()["events"]] == ["GEN.OK"]
    assert [(mid, o.ok) for mid, o in received] == [(message.message_id, True)]
    attempt = message.attempt_log.get()
    assert attempt.http_status == 200 and attempt.outcome == "ok"
    assert "[omitted]" in attempt.request_excerpt  # the security header (SAML token, signature) is not kept
    assert "Assertion" not in attempt.request_excerpt and "SignatureValue" not in attempt.request_excerpt
    assert gateway.stats()["applied"][message.message_id] == 1
    assert AuditEvent.objects.filter(action="ato.message_done", object_id=str(message.pk)).exists()


def test_transient_failures_retry_with_the_same_message_id(credentialed, gateway, received):
    gateway.faults(next=["http_503", "reset", "timeout", "ok"])
    message = ping(credentialed)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE
    outcomes = list(message.attempt_log.values_list("outcome", "error_code"))
    assert [o for o, _ in outcomes] == ["transient", "transient", "transient", "ok"]
    assert outcomes[0][1] == "HTTP:503"
    # The reset and the timeout came after the ATO had applied the message: still applied exactly once.
    assert gateway.stats()["applied"][message.message_id] == 1
    assert len(received) == 1


def test_a_bad_signature_on_the_reply_is_permanent(credentialed, gateway, received):
    gateway.faults(next=["bad_signature"])
    message = ping(credentialed)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.attempts == 1
    assert "signature" in message.error_text.lower()
    assert received[0][1].ok is False


def test_outage_leads_to_a_dead_letter_then_resend_succeeds(credentialed, gateway, received, admin, login):
    gateway.faults(outage_seconds=60)
    message = ping(credentialed)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD and message.attempts == 6
    http = login(admin)
    page = http.get(reverse("ato_gateway:console"), {"status": "dead"}).content.decode()
    assert message.message_id[:8] in page or "PING" in page
    assert "The ATO is not answering reliably" in page  # the banner every user sees
    gateway.clear_faults()
    http.post(reverse("ato_gateway:resend", args=[message.pk]))
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE
    assert gateway.stats()["applied"][message.message_id] == 1


def test_expired_credential_is_refused_with_a_reason(practice, admin, gateway):
    imported = services.credential_import(
        practice=practice,
        data=FIXTURE_BYTES,
        filename="keystore.xml",
        password="Password1!",
        actor=admin,
    )
    assert sorted(c.abn for c in imported) == ["11000002568", "27809366375"]
    assert all(c.is_expired and not c.is_selected for c in imported)
    MachineCredential.objects.filter(pk=imported[0].pk).update(is_selected=True)
    message = ping(practice)
    run_worker_burst()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and "expired on 12 September 2024" in message.error_text


def test_wrong_keystore_password_is_explained(practice, admin):
    with pytest.raises(services.CredentialProblem, match="wrong password"):
        services.credential_import(
            practice=practice,
            data=FIXTURE_BYTES,
            filename="keystore.xml",
            password="nope",
            actor=admin,
        )
    assert not MachineCredential.objects.exists()


def test_a_credential_the_ato_does_not_trust_is_permanent(practice, admin, gateway):
    now = datetime.now(UTC)
    ca_key = keystore.new_rsa_key()
    ca_cert = keystore.make_ca(ca_key, "Not the ATO", now=now)
    key = keystore.new_rsa_key()
    cert = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca_cert, public_key=key.public_key(), common_name="Stranger", abn=practice.abn
    )
    data = keystore.write_keystore([(key, [cert, ca_cert])], "pw-123456")
    services.credential_import(practice=practice, data=data, filename="k.xml", password="pw-123456", actor=admin)
    message = ping(practice)
    pump(settled(message))
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and message.attempts == 1


def test_sweeper_recovers_a_lost_job_and_a_dead_workers_claim(credentialed, gateway, received):
    import django_rq

    lost = ping(credentialed, "lost job")
    django_rq.get_connection("high").flushdb()  # the job never reaches a worker
    orphan = ping(credentialed, "orphan")
    django_rq.get_connection("high").flushdb()
    OutboxMessage.objects.filter(pk=orphan.pk).update(
        status=MessageStatus.SENDING, claimed_by="dead-worker", claimed_at=datetime.now(UTC) - timedelta(hours=1)
    )
    OutboxMessage.objects.filter(pk=lost.pk).update(
        enqueued_at=datetime.now(UTC) - timedelta(minutes=5), next_attempt_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    assert services.outbox_sweep() == 1  # the lost job, re-enqueued
    orphan.refresh_from_db()
    assert orphan.status == MessageStatus.RETRY and orphan.claimed_by == ""  # the dead worker's claim released
    OutboxMessage.objects.filter(pk=orphan.pk).update(
        enqueued_at=None, next_attempt_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    assert services.outbox_sweep() == 1  # and now the orphan, due again
    run_worker_burst()
    assert {m.status for m in OutboxMessage.objects.filter(pk__in=[lost.pk, orphan.pk])} == {MessageStatus.DONE}


def test_console_masks_tfns_and_is_for_admins(credentialed, gateway, admin, reader, login):
    message = ping(credentialed, "tfn 123456782")
    run_worker_burst()
    http = login(admin)
    page = http.get(reverse("ato_gateway:message", args=[message.pk])).content.decode()
    assert "123456782" not in page and "[TFN REDACTED]" in page
    assert AuditEvent.objects.filter(action="gateway.message_viewed", actor=admin).exists()
    assert login(reader).get(reverse("ato_gateway:console")).status_code == 403
    assert HttpClient().get(reverse("ato_gateway:console")).status_code == 302


def test_credential_import_page(practice, admin, login, gateway):
    http = login(admin)
    with open(gateway.demo_keystore, "rb") as f:
        response = http.post(reverse("ato_gateway:credentials"), {"file": f, "password": "wrong"})
    assert "wrong password" in response.content.decode()
    with open(gateway.demo_keystore, "rb") as f:
        http.post(reverse("ato_gateway:credentials"), {"file": f, "password": DEMO_PASSWORD})
    page = http.get(reverse("ato_gateway:credentials")).content.decode()
    assert "In use" in page and "53004085616" in page


def _pkcs12_for(practice: Practice, *, days: int) -> bytes:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    ca_key = keystore.new_rsa_key()
    ca_cert = keystore.make_ca(ca_key, "Test CA")
    key = keystore.new_rsa_key()
    cert = keystore.issue_certificate(
        ca_key=ca_key,
        ca_certificate=ca_cert,
        public_key=key.public_key(),
        common_name="Renewal",
        abn=practice.abn,
        valid_for=timedelta(days=days),
    )
    return pkcs12.serialize_key_and_certificates(b"renewal", key, cert, [ca_cert], BestAvailableEncryption(b"pw-1234"))


def test_pkcs12_import_and_the_expiry_warning(practice, admin, login):
    services.credential_import(
        practice=practice, data=_pkcs12_for(practice, days=20), filename="renewal.p12", password="pw-1234", actor=admin
    )
    credential = MachineCredential.objects.get(practice=practice)
    assert credential.is_selected and credential.source == "pkcs12" and credential.expires_soon
    page = login(admin).get(reverse("portal:dashboard")).content.decode()
    assert "The machine credential expires in 19 days" in page or "expires in 20 days" in page


def test_import_command_reads_the_password_from_a_file(practice, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    keystore_file = tmp_path / "keystore.xml"
    keystore_file.write_bytes(FIXTURE_BYTES)
    password_file = tmp_path / "password"
    password_file.write_text("Password1!\n")
    call_command(
        "import_machine_credential",
        str(keystore_file),
        "--practice",
        str(practice.pk),
        "--password-file",
        str(password_file),
    )
    assert MachineCredential.objects.filter(practice=practice).count() == 2
    with pytest.raises(CommandError, match="no practice"):
        call_command(
            "import_machine_credential",
            str(keystore_file),
            "--practice",
            "999999",
            "--password-file",
            str(password_file),
        )


MAAS_EMPTY_BATCH = '<SPRMBRINFO xmlns="http://www.sbr.gov.au/ato/sprmbrinfo"/>'  # valid against maas.xsd


def maas(practice: Practice) -> OutboxMessage:
    with transaction.atomic():
        return services.outbox_enqueue(
            practice=practice, service="MAAS", action="Submit.001.00", documents=[("SPRMBRINFO", MAAS_EMPTY_BATCH)]
        )


def test_push_then_pull_delivers_the_response(credentialed, gateway):
    message = maas(credentialed)
    run_worker_burst()
    message.refresh_from_db()
    assert (message.status, message.phase) == (MessageStatus.AWAITING, "pull")
    services.outbox_pull(credentialed.pk, worker="test")
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    assert [a.kind for a in message.attempt_log.all()] == ["send", "pull"]


@pytest.mark.parametrize("fault", ["reset", "malformed", "bad_signature"])
def test_a_failed_pull_loses_nothing(credentialed, gateway, fault):
    """The ATO hands the response over on the first pull, but its reply is lost (a reset) or spoilt (malformed, or
    badly signed) on the way back. The next pull names the same pushed message and gets the same response: the
    message completes with it, and the ATO applied the push exactly once."""
    message = maas(credentialed)
    run_worker_burst()
    message.refresh_from_db()
    assert (message.status, message.phase) == (MessageStatus.AWAITING, "pull")
    gateway.faults(next=[fault])  # the token is cached since the push: the next request is the pull itself
    services.outbox_pull(credentialed.pk, worker="test")
    assert gateway.control("GET", "faults")["next"] == []  # the fault was spent on the pull
    message.refresh_from_db()
    assert message.status == MessageStatus.AWAITING, message.error_text  # waiting still, nothing lost
    deadline = time.monotonic() + 10
    while message.status == MessageStatus.AWAITING and time.monotonic() < deadline:
        time.sleep(0.05)  # the pulls of a waiting message are paced (here 0.05 to 0.2 s apart)
        services.outbox_pull(credentialed.pk, worker="test")
        message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    assert [e["code"] for e in message.response()["events"]], message.response()
    assert [a.kind for a in message.attempt_log.all()] == ["send", "pull"]
    assert gateway.stats()["applied"][message.message_id] == 1


def test_a_message_waiting_for_its_response_is_not_pulled_every_round(credentialed, gateway, settings):
    """A response that is not ready (EBMS:0006) is asked for again only after an interval that grows with the
    wait, however often the pull job runs; then it is pulled and delivered."""
    settings.GATEWAY_BACKOFF_BASE_SECONDS, settings.GATEWAY_BACKOFF_CAP_SECONDS = 5, 600
    message = maas(credentialed)
    run_worker_burst()
    gateway.faults(empty_pulls=1)
    services.outbox_pull(credentialed.pk, worker="test")
    message.refresh_from_db()
    assert message.status == MessageStatus.AWAITING
    assert message.next_attempt_at - datetime.now(UTC) > timedelta(seconds=4)
    received = gateway.stats()["received"]
    services.outbox_pull(credentialed.pk, worker="test")  # the next round, at once: nothing is due
    assert gateway.stats()["received"] == received
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=datetime.now(UTC))
    services.outbox_pull(credentialed.pk, worker="test")
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE, message.error_text
    assert gateway.stats()["received"] == received + 1


def test_an_applied_twice_check_can_fail(credentialed, gateway):
    """The count the tests above rely on is the stand-in's record of effects: a message it is made to apply a
    second time (its first answer forgotten, as if de-duplication failed) counts 2."""
    message = ping(credentialed, "twice")
    run_worker_burst()
    assert gateway.stats()["applied"][message.message_id] == 1
    gateway.control("POST", "forget", json={"message_id": message.message_id})
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.RETRY, phase="send", next_attempt_at=datetime.now(UTC)
    )
    pump(settled(message))
    assert gateway.stats()["applied"][message.message_id] == 2


def test_a_response_pulled_while_the_push_awaits_a_retry_is_kept(credentialed, gateway, settings):
    """The push's receipt is lost on the way back (the ATO has the message), so the row waits to retry; a pull for
    the practice meanwhile brings its response. It must be kept and delivered, never dropped."""
    # A backoff long enough that the retry is scheduled, not run by this burst (a backoff of a few milliseconds
    # was already due when recorded on a busy machine, so the burst retried at once and the row was no longer
    # waiting).
    settings.GATEWAY_BACKOFF_BASE_SECONDS = settings.GATEWAY_BACKOFF_CAP_SECONDS = 600
    tokens.saml_token(MachineCredential.objects.get(practice=credentialed))  # so the fault hits the push itself
    gateway.faults(next=["reset"])
    message = maas(credentialed)
    run_worker_burst()
    message.refresh_from_db()
    assert message.status == MessageStatus.RETRY
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
    services.outbox_pull(credentialed.pk, worker="test")
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE and gateway.stats()["applied"][message.message_id] == 1


def test_resend_after_a_handler_failure_redelivers_the_stored_answer(credentialed, gateway, admin, login, monkeypatch):
    calls: list[bool] = []
    settle = sending.answer_settle

    def flaky(message: OutboxMessage, outcome: Outcome) -> None:
        # Recording the answer fails once, as a bug in a domain app's handler would make it (a ping is no question,
        # so the failure is put where the gateway records every answer).
        calls.append(outcome.ok)
        if len(calls) == 1:
            raise RuntimeError("a bug in the domain app")
        settle(message, outcome)

    monkeypatch.setattr(sending, "answer_settle", flaky)  # where a worker records answers
    monkeypatch.setattr(operations, "answer_settle", flaky)  # where a console resend delivers a stored one
    message = ping(credentialed)
    run_worker_burst()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (MessageStatus.FAILED, "HANDLER")
    login(admin).post(reverse("ato_gateway:resend", args=[message.pk]))
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE and calls == [True, True]
    assert gateway.stats()["applied"][message.message_id] == 1


def test_one_broken_message_does_not_lose_its_batch(credentialed, gateway):
    good, broken = ping(credentialed, "good"), ping(credentialed, "broken")
    OutboxMessage.objects.filter(pk=broken.pk).update(payloads_encrypted="not-a-fernet-token")
    import django_rq

    django_rq.get_connection("high").flushdb()
    services.outbox_send_batch([good.pk, broken.pk], worker="test")
    good.refresh_from_db()
    broken.refresh_from_db()
    assert good.status == MessageStatus.DONE
    assert (broken.status, broken.error_code) == (MessageStatus.RETRY, "GATEWAY:INTERNAL")


def test_pulls_are_scheduled_once_per_practice(credentialed):
    import django_rq
    from rq.registry import ScheduledJobRegistry

    for _ in range(5):
        sending._schedule_pull(credentialed.pk, timedelta(seconds=30))
    registry = ScheduledJobRegistry(queue=django_rq.get_queue("high"))
    assert len(registry.get_job_ids()) == 1


def test_a_mangled_token_reply_is_retried_not_fatal_for_the_batch(credentialed, gateway, received):
    """The first exchange of a batch is the token request; a malformed reply to it must not fail the batch."""
    gateway.faults(next=["malformed"])
    first, second = ping(credentialed, "one"), ping(credentialed, "two")
    pump(settled(first, second))
    assert {m.status for m in OutboxMessage.objects.filter(pk__in=[first.pk, second.pk])} == {MessageStatus.DONE}
    assert OutboxMessage.objects.get(pk=first.pk).attempt_log.first().error_code == "REPLY:TOKEN"


def test_a_token_is_shared_between_processes_encrypted_and_forgotten_everywhere(credentialed, gateway):
    """RQ forks a work horse per job: the token must outlive the job (shared cache), never sit there in clear, and
    be dropped everywhere when the ATO refuses one."""
    from django.core.cache import cache

    credential = MachineCredential.objects.get(practice=credentialed)
    assertion = tokens.saml_token(credential)
    asked = gateway.stats()["received"]
    tokens._cache.clear()  # a new work horse: nothing in its memory
    assert tokens.saml_token(credential) == assertion
    assert gateway.stats()["received"] == asked  # from the shared cache, not the token service
    shared = cache.get(tokens._shared_key(credential.fingerprint_sha256))
    assert shared and assertion.decode() not in str(shared) and b"Assertion" not in str(shared).encode()
    tokens.forget_tokens()
    tokens.saml_token(credential)
    assert gateway.stats()["received"] == asked + 1  # forgotten in the shared cache too: asked again


def test_rows_are_marked_enqueued_before_their_job_exists(practice, monkeypatch, django_capture_on_commit_callbacks):
    """An idle worker takes a job the moment it is pushed, and its claim skips locked rows: rows still being marked
    as enqueued when the job appears would be skipped, and sent only when the sweeper finds them 30 s later."""
    from rq import Queue

    unmarked_at_push: list[int] = []
    push = Queue.enqueue

    def watching_push(self, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        unmarked_at_push.append(OutboxMessage.objects.filter(pk__in=args[0], enqueued_at__isnull=True).count())
        return push(self, f, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue", watching_push)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        rows = services.outbox_enqueue_many(
            practice=practice,
            service=services.PING_SERVICE,
            action=services.PING_ACTION,
            batch=[([("PingRequest", f"<PingRequest><Text>{i}</Text></PingRequest>")], None) for i in range(120)],
        )
    assert unmarked_at_push == [0, 0, 0]  # three jobs of up to 50, each pushed after its rows were marked
    assert not OutboxMessage.objects.filter(pk__in=[r.pk for r in rows], enqueued_at__isnull=True).exists()
