from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from portal.models import Practice, User
from portal.sealing import CREDENTIAL_KEYS, SealedField, seal_bytes, seal_json, unseal_bytes, unseal_json

_KEYS: dict[tuple[int | None, str], RSAPrivateKey] = {}
_CHAINS: dict[str, list[x509.Certificate]] = {}  # PEM chain -> its certificates


class CredentialQuerySet(models.QuerySet["MachineCredential"]):
    def for_practice(self, practice: Practice) -> CredentialQuerySet:
        return self.filter(practice=practice)

    def expiring_within(self, days: int) -> CredentialQuerySet:
        return self.filter(not_after__lte=timezone.now() + timedelta(days=days))


class MachineCredential(models.Model):
    """An ATO machine credential (the practice's device certificate and key) used to sign every message. The
    private key is kept encrypted under CREDENTIAL_ENCRYPTION_KEYS and decrypted only in the worker to sign."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="machine_credentials")
    legal_name = models.CharField(max_length=200)
    abn = models.CharField("ABN", max_length=11)
    serial_number = models.CharField(max_length=80)
    fingerprint_sha256 = models.CharField(max_length=64)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    certificate_chain_pem = models.TextField(help_text="Leaf first, then intermediates.")
    private_key_encrypted = SealedField(keyring=CREDENTIAL_KEYS)
    source = models.CharField(max_length=20, default="keystore")
    is_selected = models.BooleanField(default=False)
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["-is_selected", "-not_after"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "fingerprint_sha256"], name="credential_unique_per_practice"),
            models.UniqueConstraint(
                fields=["practice"], condition=Q(is_selected=True), name="one_selected_credential_per_practice"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.legal_name} (ABN {self.abn}, serial {self.serial_number})"

    @property
    def is_expired(self) -> bool:
        return self.not_after <= timezone.now()

    @property
    def is_current(self) -> bool:
        now = timezone.now()
        return self.not_before <= now < self.not_after

    @property
    def days_left(self) -> int:
        return (self.not_after - timezone.now()).days

    @property
    def expires_soon(self) -> bool:
        return not self.is_expired and self.days_left < settings.CREDENTIAL_EXPIRY_WARNING_DAYS

    def certificates(self) -> list[x509.Certificate]:
        """Parsed once per process and chain: every message a worker signs carries the certificate."""
        chain = _CHAINS.get(self.certificate_chain_pem)
        if chain is None:
            chain = _CHAINS[self.certificate_chain_pem] = x509.load_pem_x509_certificates(
                self.certificate_chain_pem.encode()
            )
        return list(chain)

    def certificate(self) -> x509.Certificate:
        return self.certificates()[0]

    def private_key(self) -> RSAPrivateKey:
        """Decrypted once per worker process and kept in memory: loading validates the RSA key, which costs
        about 46 ms here, more than everything else in sending a message together."""
        cache_key = (self.pk, self.private_key_encrypted)
        key = _KEYS.get(cache_key)
        if key is None:
            der = unseal_bytes(self.private_key_encrypted, keyring=CREDENTIAL_KEYS)
            loaded = serialization.load_der_private_key(der, password=None)
            assert isinstance(loaded, RSAPrivateKey)
            _KEYS[cache_key] = key = loaded
        return key

    @staticmethod
    def encrypt_private_key(key: RSAPrivateKey) -> str:
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return seal_bytes(der, keyring=CREDENTIAL_KEYS)


def get_credential_or_404(user: User, pk: int) -> MachineCredential:
    return get_object_or_404(MachineCredential.objects.for_practice(user.tenant), pk=pk)


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Waiting to send"
    SENDING = "sending", "Sending"
    RETRY = "retry", "Will retry"
    AWAITING = "awaiting", "Sent; waiting for the ATO's response"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Gave up (dead letter)"


TERMINAL = (MessageStatus.DONE, MessageStatus.FAILED, MessageStatus.DEAD)


class OutboxQuerySet(models.QuerySet["OutboxMessage"]):
    def for_practice(self, practice: Practice) -> OutboxQuerySet:
        return self.filter(practice=practice)

    def due(self, now: Any = None) -> OutboxQuerySet:
        now = now or timezone.now()
        return self.filter(
            status__in=[MessageStatus.PENDING, MessageStatus.RETRY, MessageStatus.AWAITING], next_attempt_at__lte=now
        )


class OutboxMessage(models.Model):
    """One outbound ATO interaction. Written in the same transaction as the domain change that needs it; sent by
    a worker; retried with the same MessageId; its outcome is handed to the handler its domain app registered."""

    # Every claim and every outcome rewrites the row and so every index on it: the indexes are the few that
    # queries use (see Meta), and Meta declares them so that no pattern-ops copies ("_like") are made.
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+", db_index=False)
    credential = models.ForeignKey(MachineCredential, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    service = models.CharField(max_length=40)
    action = models.CharField(max_length=40)
    message_id = models.CharField(max_length=120)
    conversation_id = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    # "send" until the ATO has it; "pull" while a pushed message waits for its response to be pulled.
    phase = models.CharField(max_length=4, default="send")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=120, blank=True)
    # Business documents, encrypted at rest: they carry TFNs. [[document name, XML text], ...]
    payloads_encrypted = SealedField()
    response_encrypted = SealedField(blank=True)
    # NULL rather than "": the unique constraint must allow any number of messages that have no reply yet.
    response_message_id = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001
    error_code = models.CharField(max_length=60, blank=True)
    error_text = models.TextField(blank=True)
    # What the message is about, for filtering the console (for example a client); set by the domain app.
    subject_type = models.CharField(max_length=60, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    subject_repr = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = OutboxQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], name="outbox_message_id_unique"),
            # A reply's MessageId is held by one message only: a second is a replay.
            models.UniqueConstraint(fields=["response_message_id"], name="outbox_response_message_id_unique"),
        ]
        indexes = [
            # The workers' and the sweeper's queries: by status, and when due.
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            # The console: one practice's messages, newest first (also serves the practice foreign key).
            models.Index(fields=["practice", "-created_at", "-id"], name="outbox_console"),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.action} {self.message_id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def set_payloads(self, payloads: list[tuple[str, str]]) -> None:
        self.payloads_encrypted = seal_json(payloads)

    def payloads(self) -> list[tuple[str, str]]:
        return [(name, text) for name, text in unseal_json(self.payloads_encrypted)]

    def set_response(self, response: dict[str, Any]) -> None:
        self.response_encrypted = seal_json(response)

    def response(self) -> dict[str, Any]:
        return unseal_json(self.response_encrypted) if self.response_encrypted else {}  # type: ignore[no-any-return]


def get_message_or_404(user: User, pk: int) -> OutboxMessage:
    messages = OutboxMessage.objects.for_practice(user.tenant)
    if user.restricted_to_groups:
        from portal.apps import restricted_visible

        messages = messages.filter(restricted_visible(user, type_field="subject_type", id_field="subject_id"))
    return get_object_or_404(messages, pk=pk)


class PulledResponse(models.Model):
    """A response the ATO handed over on a pull, kept until the message it answers can take it. Stored before
    anything else is done with it, and only once it verified: while it is here the message is not pulled for
    again (a pull whose reply failed leaves nothing here, and the next selective pull asks for it again)."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    ref_to_message_id = models.CharField(max_length=120, unique=True)
    reply_encrypted = SealedField()  # {"content_type": ..., "body": base64}: it may carry TFNs
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"pulled response to {self.ref_to_message_id}"

    def set_reply(self, content_type: str, body: bytes) -> None:
        self.reply_encrypted = seal_json({"content_type": content_type, "body": base64.b64encode(body).decode()})

    def reply(self) -> tuple[str, bytes]:
        data = unseal_json(self.reply_encrypted)
        return data["content_type"], base64.b64decode(data["body"])


class AttemptOutcome(models.TextChoices):
    OK = "ok", "Answered"
    TRANSIENT = "transient", "Transient failure"
    PERMANENT = "permanent", "Permanent failure"


class MessageAttempt(models.Model):
    """Every send: what went, what came back, how long it took. Bodies are stored with TFNs masked and
    security tokens cut out, for the console; the originals are never kept."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, default="send")  # send or pull
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=AttemptOutcome.choices)
    error_code = models.CharField(max_length=60, blank=True)
    error_text = models.TextField(blank=True)
    worker = models.CharField(max_length=120, blank=True)
    request_excerpt = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["message", "number"]
        indexes = [models.Index(fields=["started_at"], name="attempt_started")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.message_id}: {self.outcome}"


class QuestionState(models.TextChoices):
    WAITING = "waiting", "Waiting for the ATO"
    ANSWERED = "answered", "Answered"
    REFUSED = "refused", "Refused by the ATO"
    FAILED = "failed", "Could not be completed"


class QuestionQuerySet(models.QuerySet["Question"]):
    def for_practice(self, practice: Practice) -> QuestionQuerySet:
        return self.filter(practice=practice)

    def waiting(self) -> QuestionQuerySet:
        return self.filter(state=QuestionState.WAITING)


class Question(models.Model):
    """One question a domain app put to the ATO: who asked, for which practice, about what, for which purpose (the
    kind of question, which names the handler its answer goes to), its outbox message, and where it stands. The
    request document and the ATO's answer are the message's own sealed payload and response, decoded on demand:
    nothing is stored twice, and no TFN lies here in clear."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+", db_index=False)
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    purpose = models.CharField(max_length=60)
    service_action = models.CharField(max_length=80)  # the registry's key, e.g. CUREL.Search (the request's type)
    subject_type = models.CharField(max_length=60, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    subject_repr = models.CharField(max_length=200, blank=True)  # masked: shown to people
    message = models.OneToOneField(OutboxMessage, on_delete=models.PROTECT, related_name="question")
    state = models.CharField(max_length=10, choices=QuestionState.choices, default=QuestionState.WAITING)
    failure = models.TextField(blank=True)  # why it could not be completed, as the gateway recorded it
    failure_code = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    objects = QuestionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["practice", "purpose", "-created_at"], name="question_by_purpose")]

    def __str__(self) -> str:
        return f"{self.purpose}: {self.subject_repr or self.service_action}"

    @property
    def is_settled(self) -> bool:
        return self.state != QuestionState.WAITING

    @property
    def is_answered(self) -> bool:
        return self.state == QuestionState.ANSWERED

    @property
    def is_retrying(self) -> bool:
        """Still waiting, and the ATO has not answered the attempts so far: the page says the portal keeps trying."""
        return self.state == QuestionState.WAITING and self.message.status == MessageStatus.RETRY

    @property
    def attempts(self) -> int:
        return self.message.attempts

    @property
    def ebms_message_id(self) -> str:
        """The MessageId the question went under: what a domain app's history records as the change's reference."""
        return self.message.message_id
