"""A purpose registered with ``many`` takes a batch's answers in one call, its questions settled in one statement;
should that call fail, each answer is recorded on its own as for any other purpose, so one answer that cannot be
recorded fails its own message alone. Driven through ``sending._run_handlers`` with questions made by hand (no
stand-in ATO): what a worker's batch hands on once its exchanges are decided."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from ato_gateway import handlers
from ato_gateway.api import Question, QuestionState, Reply
from ato_gateway.handlers import Outcome
from ato_gateway.models import MessageStatus, OutboxMessage
from ato_gateway.services import sending
from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec, cudtl
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from portal.models import Practice
from tests.questions import fabricate_question

pytestmark = pytest.mark.django_db
MANY, SINGLY = "tests.many", "tests.singly"
Answers = list[tuple[Question, Reply[Any]]]


class Handled:
    """What each handler was handed; ``fail_many`` and ``fail_for`` make them raise."""

    def __init__(self) -> None:
        self.many: list[Answers] = []
        self.one: list[tuple[str, Question, Reply[Any]]] = []
        self.fail_many = False
        self.fail_for: set[int] = set()

    def on_many(self, answers: Answers) -> None:
        self.many.append(list(answers))
        # A write of its own, which a failure must roll back with the questions' states.
        Question.objects.filter(pk__in=[q.pk for q, _ in answers]).update(subject_repr="written by many")
        if self.fail_many:
            raise RuntimeError("the batch cannot be recorded")

    def on_one(self, purpose: str) -> handlers.Handler:
        def handler(question: Question, reply: Reply[Any]) -> None:
            self.one.append((purpose, question, reply))
            if question.pk in self.fail_for:
                raise RuntimeError("this answer cannot be recorded")

        return handler


@pytest.fixture
def handled() -> Iterator[Handled]:
    seen = Handled()
    handlers.register(MANY, seen.on_one(MANY), many=seen.on_many)
    handlers.register(SINGLY, seen.on_one(SINGLY))
    yield seen
    handlers.unregister(MANY)
    handlers.unregister(SINGLY)


def _asked(practice: Practice, purpose: str, name: str, state: str = QuestionState.WAITING) -> Question:
    request = cudtl.GetRequest(client=ClientIdentifier.of(tfn="123456782"))
    answer = cudtl.GetResponse(client=cudtl.ClientProfile(entity_type="IND", person_name=PersonName(name, "An")))
    return fabricate_question(
        practice=practice, by=None, purpose=purpose, request=request, response=answer, state=state
    )


def _answer(name: str) -> Outcome:
    document = cudtl.GetResponse(client=cudtl.ClientProfile(entity_type="IND", person_name=PersonName(name, "An")))
    action = registry.get(cudtl.GetRequest.SERVICE_ACTION)
    return Outcome(ok=True, kind="user", documents={action.response_document: codec.encode(document).decode()})


def _settle(settling: list[tuple[OutboxMessage, Outcome]]) -> None:
    for message, _ in settling:
        message.status = MessageStatus.DONE  # as _record leaves it before the handlers run
    with transaction.atomic():
        sending._run_handlers(settling)


def _names(answers: Answers) -> list[str]:
    return [reply.document.client.person_name.family_name for _, reply in answers if reply.document is not None]


def _state(question: Question) -> str:
    return str(Question.objects.get(pk=question.pk).state)


def test_a_batchs_answers_go_to_a_many_handler_in_one_call(practice: Practice, handled: Handled) -> None:
    many = [_asked(practice, MANY, name) for name in ("ADAMS", "BROWN", "CHEN")]
    singly = _asked(practice, SINGLY, "DAVIS")
    ping = OutboxMessage.objects.create(practice=practice, service="PING", action="Ping.001.00", message_id="p@t")
    refused = Outcome(ok=False, kind="failed", error_code="GATEWAY:ENDPOINT", error_text="not configured")
    settling = [
        (many[0].message, _answer("ADAMS")),
        (singly.message, _answer("DAVIS")),
        (ping, _answer("EVANS")),  # no question: nothing to settle, no handler told
        (many[1].message, _answer("BROWN")),
        (many[2].message, refused),
    ]
    _settle(settling)
    [answers] = handled.many
    assert [q.pk for q, _ in answers] == [q.pk for q in many]  # in the order the messages were sent
    assert _names(answers[:2]) == ["ADAMS", "BROWN"] and answers[2][1].failure.startswith("GATEWAY:ENDPOINT")
    # Settled before the handler is told, in the database as in the objects it is handed.
    assert [q.state for q, _ in answers] == [QuestionState.ANSWERED, QuestionState.ANSWERED, QuestionState.FAILED]
    assert [_state(q) for q in many] == [QuestionState.ANSWERED, QuestionState.ANSWERED, QuestionState.FAILED]
    assert Question.objects.get(pk=many[2].pk).failure_code == "GATEWAY:ENDPOINT"
    assert [(purpose, q.pk) for purpose, q, _ in handled.one] == [(SINGLY, singly.pk)]
    assert _state(singly) == QuestionState.ANSWERED


def test_an_answer_already_applied_is_not_handed_on_again(practice: Practice, handled: Handled) -> None:
    applied = _asked(practice, MANY, "ADAMS", state=QuestionState.ANSWERED)
    waiting = _asked(practice, MANY, "BROWN")
    _settle([(applied.message, _answer("ADAMS")), (waiting.message, _answer("BROWN"))])
    [answers] = handled.many
    assert [q.pk for q, _ in answers] == [waiting.pk]


def test_answers_that_fail_together_are_recorded_one_at_a_time(practice: Practice, handled: Handled) -> None:
    questions = [_asked(practice, MANY, name) for name in ("ADAMS", "BROWN", "CHEN")]
    handled.fail_many = True
    handled.fail_for = {questions[1].pk}
    settling = [(q.message, _answer(q.subject_repr or "X")) for q in questions]
    _settle(settling)
    assert len(handled.many) == 1
    # Rolled back whole, the many handler's own write with it; then each answer on its own.
    assert not Question.objects.filter(subject_repr="written by many").exists()
    assert [q.pk for _, q, _ in handled.one] == [q.pk for q in questions]
    assert [_state(q) for q in questions] == [QuestionState.ANSWERED, QuestionState.FAILED, QuestionState.ANSWERED]
    assert Question.objects.get(pk=questions[1].pk).failure_code == "HANDLER"
    assert [m.status for m, _ in settling] == [MessageStatus.DONE, MessageStatus.FAILED, MessageStatus.DONE]
    assert settling[1][0].error_code == "HANDLER"


def test_a_batch_of_answers_costs_the_queries_of_a_few(practice: Practice, handled: Handled) -> None:
    def queries(n: int) -> int:
        settling = [(q.message, _answer("ADAMS")) for q in (_asked(practice, MANY, "ADAMS") for _ in range(n))]
        with CaptureQueriesContext(connection) as captured:
            _settle(settling)
        return len(captured)

    assert queries(20) == queries(2)
