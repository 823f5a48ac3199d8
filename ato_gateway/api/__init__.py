"""What domain apps use of the gateway, and all they use of it (with the documents of ``ato_gateway.wire.documents``):
ask the ATO a question, register the handler of a kind of question, read the typed reply, and say it in plain
words. See docs/asking-the-ato.md."""

from ato_gateway.answers import question_reply as reply
from ato_gateway.handlers import register
from ato_gateway.models import Question, QuestionState
from ato_gateway.services import Subject
from ato_gateway.wire.documents.codec import DocumentError

from .base import Item, Reply
from .questions import (
    ask,
    ask_many,
    item_in_plain_words,
    practices_able_to_ask,
    question_receipt_at,
    question_request,
    question_send_now,
    questions_resend,
    refusal_in_plain_words,
)
from .words import failure_in_plain_words, in_plain_words

__all__ = [
    "DocumentError",
    "Item",
    "Question",
    "QuestionState",
    "Reply",
    "Subject",
    "ask",
    "ask_many",
    "failure_in_plain_words",
    "in_plain_words",
    "item_in_plain_words",
    "practices_able_to_ask",
    "question_receipt_at",
    "question_request",
    "question_send_now",
    "questions_resend",
    "refusal_in_plain_words",
    "register",
    "reply",
]
