"""Asking the ATO a question: the one facility every domain app uses (docs/asking-the-ato.md).

``ask(document, practice=..., by=..., about=..., purpose=...)`` records a ``Question`` and its outbox message in the
caller's transaction; the gateway sends it once that commits, retries it, pulls a pushed message's response, decodes
the answer once and hands the typed reply to the handler registered for ``purpose``. A page shows the question with
the ``ato_gateway/_question.html`` fragment, pending and then answered, without a reload."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ato_gateway.answers import question_reply
from ato_gateway.models import (
    AttemptOutcome,
    MachineCredential,
    MessageAttempt,
    MessageStatus,
    OutboxMessage,
    Question,
    QuestionState,
)
from ato_gateway.replies import Item, Reply
from ato_gateway.services import Subject, outbox_enqueue_many, outbox_resend, outbox_send_one
from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec
from portal.models import Practice, User

from .words import failure_in_plain_words, in_plain_words

log = logging.getLogger(__name__)


def ask(
    document: codec.Document, *, practice: Practice, by: User | None, purpose: str, about: Subject | None = None
) -> Question:
    """Record one question in the caller's transaction. The document is encoded (and so validated against its XSD)
    here: a document the ATO would refuse as malformed is a programming error, raised now."""
    return ask_many([(document, about)], practice=practice, by=by, purpose=purpose)[0]


def ask_many(
    documents: Sequence[tuple[codec.Document, Subject | None]],
    *,
    practice: Practice,
    by: User | None,
    purpose: str,
) -> list[Question]:
    """``ask`` for many documents of one action (a bulk link's rows, a bulk address change): one insert and one
    audit entry, sent in the gateway's batches rather than a job per message. The questions come back in the
    documents' order."""
    if not documents:
        return []
    actions = {d.SERVICE_ACTION for d, _ in documents}
    if len(actions) != 1:
        raise ValueError(f"ask_many takes documents of one action, not {sorted(actions)}.")
    service_action = actions.pop()
    for document, _ in documents:
        if problems := document.problems():
            raise ValueError("; ".join(problems))
    action = registry.get(service_action)
    batch = [([(action.request_document, codec.encode(d).decode("utf-8"))], about) for d, about in documents]
    messages = outbox_enqueue_many(
        practice=practice, service=action.service, action=action.action, batch=batch, created_by=by
    )
    questions = [
        Question(
            practice=practice,
            asked_by=by,
            purpose=purpose,
            service_action=service_action,
            subject_type=message.subject_type,
            subject_id=message.subject_id,
            subject_repr=message.subject_repr,
            message=message,
        )
        for message in messages
    ]
    return Question.objects.bulk_create(questions)


def question_request(question: Question) -> codec.Document:
    """The typed document that was asked (decoded from the message's sealed payload)."""
    action = registry.get(question.service_action)
    cls = codec.document_class(question.service_action, action.request_document)
    assert cls is not None, question.service_action
    texts = dict(question.message.payloads())
    return codec.decode(cls, texts[action.request_document])


def item_in_plain_words(item: Item) -> str:
    """One item of the ATO's answer (an error, a warning, a note) in words an agent can act on."""
    return in_plain_words(item.code, item.text, item.parameters)


def refusal_in_plain_words(question: Question, reply: Reply[Any] | None = None) -> list[str]:
    """Why the ATO refused the question, or why it could not be completed, in words an agent can act on: never a
    code, and never a TFN (a gateway failure can quote what was sent)."""
    if question.state == QuestionState.FAILED:
        if question.message.status == MessageStatus.DEAD:
            # A dead letter: every attempt failed the same transient way, so what each attempt met matters less
            # than that the portal has stopped trying.
            n = question.attempts
            return [
                f"The ATO could not be reached. The request was tried {n} time{'s' if n != 1 else ''} and has been "
                "given up; try again later."
            ]
        return [failure_in_plain_words(question.failure_code, question.failure)]
    reply = reply if reply is not None else question_reply(question)
    return [item_in_plain_words(i) for i in reply.errors] or ["The ATO refused the request without saying why."]


def questions_resend(questions: Sequence[Question], *, by: User) -> list[Question]:
    """Ask again the questions that could not be completed (the ATO could not be reached, or the portal gave up):
    each is sent again under its own MessageId, which the ATO applies at most once, so one the ATO had applied
    before the failure is answered as it was and not applied again. Each is waiting again, so its handler hears of
    its next answer, or of its next failure. Questions answered or still waiting are left as they are; returns
    those asked again."""
    again = []
    with transaction.atomic():
        failed = (
            Question.objects.select_for_update(of=("self",))
            .select_related("message")
            .filter(pk__in=[q.pk for q in questions], state=QuestionState.FAILED)
            .filter(message__status__in=[MessageStatus.FAILED, MessageStatus.DEAD])
            .order_by("pk")
        )
        for question in failed:
            try:
                with transaction.atomic():
                    # Waiting first: a stored answer that only needed recording is settled by the resend itself.
                    Question.objects.filter(pk=question.pk).update(
                        state=QuestionState.WAITING, failure="", failure_code="", answered_at=None
                    )
                    if not outbox_resend(user=by, message=question.message):  # sent again meanwhile by another
                        transaction.set_rollback(True)
                        continue
            except Exception:
                # A stored answer whose handler fails again stays failed, on its own: the others are asked again.
                log.exception("question %s could not be asked again", question.pk)
                continue
            again.append(question)
    return again


def question_receipt_at(question: Question) -> datetime | None:
    """When the ATO's technical receipt of a pushed message came: the end of the send attempt it answered (the
    obligation to lodge is met then). None while the message has not been received."""
    attempt = (
        MessageAttempt.objects.filter(message_id=question.message_id, kind="send", outcome=AttemptOutcome.OK)
        .order_by("number")
        .first()
    )
    return attempt.started_at + timedelta(milliseconds=attempt.duration_ms) if attempt is not None else None


def question_send_now(question: Question, *, worker: str) -> bool:
    """Send a waiting question in this process if it is due, through the workers' own send path (for a command run
    where no worker listens). Returns False when it is not due yet (a retry waits) or another sender has it."""
    due = OutboxMessage.objects.filter(
        pk=question.message_id,
        status__in=[MessageStatus.PENDING, MessageStatus.RETRY],
        next_attempt_at__lte=timezone.now(),
    ).exists()
    return due and outbox_send_one(question.message_id, worker=worker) is not None


def practices_able_to_ask() -> QuerySet[Practice]:
    """The practices that can speak to the ATO: an agent number and a selected machine credential (for nightly
    jobs, which ask for every such practice)."""
    selected = MachineCredential.objects.filter(is_selected=True).values("practice_id")
    return Practice.objects.filter(pk__in=selected).exclude(agent_number="").order_by("pk")
