"""Settling a question: the gateway decodes the ATO's answer once, moves the question to its new state and hands
the typed reply to the handler registered for the question's purpose.

The ATO's answer always wins. A question the portal had given up on (a dead letter, a retry that outlived the
failure shown) is still settled by an answer that arrives later, after a console resend for example: the ATO has
applied the change, so the portal must record it. Once the ATO's answer (answered or refused) has been applied,
the question is settled for good and a second delivery of the same answer changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from ato_gateway.handlers import Outcome, registration_for
from ato_gateway.models import OutboxMessage, Question, QuestionState
from ato_gateway.replies import Item, Reply
from ato_gateway.wire import documents, registry  # noqa: F401 - importing it registers every document
from ato_gateway.wire.documents import codec
from portal.db.bulk import update_many

FINAL = (QuestionState.ANSWERED, QuestionState.REFUSED)


def response_class(service_action: str) -> type[codec.Document]:
    """The response document's class of an action (every document module is registered by ``documents``)."""
    action = registry.get(service_action)
    cls = codec.document_class(service_action, action.response_document)
    if cls is None:
        raise LookupError(f"No response document is defined for {service_action}.")
    return cls


def outcome_of(message: OutboxMessage) -> Outcome:
    """The outcome as the message recorded it: the ATO's answer if one came, else why it failed."""
    stored = message.response()
    if stored:
        return Outcome(ok=True, kind="user", documents=stored.get("documents", {}), events=stored.get("events", []))
    kind = "dead" if message.status == "dead" else "failed"
    return Outcome(ok=False, kind=kind, error_code=message.error_code, error_text=message.error_text)


def reply_of(service_action: str, outcome: Outcome, *, stream: str | None = None) -> Reply[Any]:
    """Decode the answer: the response document if the ATO sent one (validated against its XSD), or a stream of
    its list field ``stream``."""
    items = [Item.from_event(e) for e in outcome.events]
    if not outcome.ok:
        code = outcome.error_code
        failure = f"{code}: {outcome.error_text}" if code else outcome.error_text or "failed"
        return Reply(None, items, failure, code or outcome.kind, gave_up=outcome.kind == "dead")
    cls = response_class(service_action)
    text = outcome.documents.get(registry.get(service_action).response_document)
    if not text:
        return Reply(None, items)
    if stream:
        return Reply(None, items, stream=codec.stream(cls, text, stream))
    return Reply(codec.decode(cls, text), items)


def question_reply(question: Question) -> Reply[Any]:
    """The typed answer of a settled question, for the pages that show it (decoded whole: a list page is bounded by
    its page size)."""
    return reply_of(question.service_action, outcome_of(question.message))


def answer_settle(message: OutboxMessage, outcome: Outcome) -> None:
    """Called by the gateway, in the transaction that records the message's outcome, for every message that
    settles (done, failed or dead). Messages that are no question (the connection test) are left alone."""
    question = Question.objects.select_for_update().filter(message_id=message.pk).first()
    if question is None or question.state in FINAL:
        return
    question.message = message  # the instance being recorded: its new status is not in the database yet
    registration = registration_for(question.purpose)
    reply = reply_of(question.service_action, outcome, stream=registration.stream if registration else None)
    changed = _settle(question, reply, timezone.now())
    question.save(update_fields=_SETTLED_FIELDS)
    if changed and registration is not None:
        registration.handler(question, reply)


def answers_settle_many(settling: Sequence[tuple[OutboxMessage, Outcome]]) -> list[tuple[OutboxMessage, Outcome]]:
    """``answer_settle`` for a batch's messages, as far as their purposes take their answers many at a time
    (registered with ``many``): those questions are settled in one statement and handed to their handler in one
    call per purpose. Returns the messages left for ``answer_settle`` one at a time: every message whose question's
    purpose takes its answers singly, and every message that is no question."""
    questions = {
        q.message_id: q
        for q in Question.objects.select_for_update().filter(message_id__in=[m.pk for m, _ in settling]).order_by("pk")
    }
    left: list[tuple[OutboxMessage, Outcome]] = []
    settled: list[Question] = []
    answers: dict[str, list[tuple[Question, Reply[Any]]]] = {}
    now = timezone.now()
    for message, outcome in settling:
        question = questions.get(message.pk)
        registration = registration_for(question.purpose) if question is not None else None
        if question is None or registration is None or registration.many is None:
            left.append((message, outcome))
            continue
        if question.state in FINAL:
            continue
        question.message = message  # the instance being recorded, as answer_settle has it
        reply = reply_of(question.service_action, outcome, stream=registration.stream)
        if _settle(question, reply, now):
            answers.setdefault(question.purpose, []).append((question, reply))
        settled.append(question)
    update_many(settled, _SETTLED_FIELDS)
    for purpose, replies in answers.items():
        many = registration_for(purpose).many  # type: ignore[union-attr]
        assert many is not None
        many(replies)
    return left


_SETTLED_FIELDS = ["state", "failure", "failure_code", "answered_at"]


def _settle(question: Question, reply: Reply[Any], now: datetime) -> bool:
    """Move the question to the state its reply says; whether that is a change its handler is told of (a failure
    again, after one already shown, is not)."""
    if reply.failure:
        changed = question.state != QuestionState.FAILED
        question.state, question.failure, question.failure_code = (
            QuestionState.FAILED,
            reply.failure,
            reply.failure_code,
        )
    else:
        changed = True
        question.state = QuestionState.ANSWERED if reply.answered else QuestionState.REFUSED
        question.failure, question.failure_code = "", ""
    question.answered_at = now
    return changed


def answer_unrecorded(message: OutboxMessage, reason: str) -> None:
    """The ATO answered but the handler failed (its savepoint rolled back): the question shows why and how to
    recover, instead of waiting for ever. A console resend delivers the stored answer again."""
    Question.objects.filter(message_id=message.pk).exclude(state__in=FINAL).update(
        state=QuestionState.FAILED, failure=reason, failure_code="HANDLER", answered_at=timezone.now()
    )
