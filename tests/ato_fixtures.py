"""A practice that is a registered agent at the stand-in ATO, with a generated register behind it, for the tests of
the business services. Every call goes the whole way: typed API, outbox, a real RQ worker, signed HTTP to the
stand-in ATO process, its rules over its register, and the signed answer decoded again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from django.db import transaction

from ato_gateway import api, services, tokens
from ato_gateway.answers import outcome_of, reply_of
from ato_gateway.api import Question, Reply
from ato_gateway.handlers import Outcome
from ato_gateway.models import MessageStatus, OutboxMessage
from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec
from portal.models import Practice, User
from tests.gateway_fixtures import Sandbox, pump, settled

AGENT_TAN = "25123456"
OTHER_AGENT_TAN = "25987654"
DEMO_ABN = "53004085616"  # the ABN of the stand-in ATO's demo machine credential, and of the test practice
D = TypeVar("D", bound=codec.Document)
D_REQ = TypeVar("D_REQ", bound=codec.Document)


@dataclass
class Ato:
    sandbox: Sandbox
    practice: Practice
    user: User

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Read the stand-in ATO's register (read-only) to find test data and to see effects."""
        return self.sandbox.control("POST", "query", json={"sql": sql, "params": list(params)})["rows"]

    def regenerate(self, **spec: Any) -> dict[str, Any]:
        return self.sandbox.control("POST", "register", json=spec)

    def ask(self, document: codec.Document, *, purpose: str = "tests.ask") -> Question:
        """Ask the ATO as a domain app would (``api.ask`` in a transaction), and run the gateway until the
        question's message is settled."""
        with transaction.atomic():
            question = api.ask(document, practice=self.practice, by=self.user, purpose=purpose)
        self.settle(question.message)
        question.refresh_from_db()
        return question

    def result(self, document: D_REQ) -> Reply[Any]:
        """The typed reply to one document, as a handler gets it (decoded once, validated against its XSD)."""
        question = self.ask(document)
        message = question.message
        assert message.status == MessageStatus.DONE, f"{message.status}: {message.error_code} {message.error_text}"
        return api.reply(question)

    def send_raw(self, service_action: str, document: str) -> OutboxMessage:
        """Send a document the typed API would refuse to build (malformed-document cases)."""
        action = registry.get(service_action)
        with transaction.atomic():
            message = services.outbox_enqueue(
                practice=self.practice,
                service=action.service,
                action=action.action,
                documents=[(action.request_document, document)],
            )
        return self.settle(message)

    @staticmethod
    def settle(message: OutboxMessage) -> OutboxMessage:
        pump(settled(message), timeout=60)
        message.refresh_from_db()
        return message

    @staticmethod
    def outcome(message: OutboxMessage) -> Outcome:
        """The outcome as the gateway recorded it."""
        return outcome_of(message)

    def reply(self, message: OutboxMessage, cls: type[D]) -> Reply[D]:
        """The typed reply to a message sent with ``send_raw``."""
        assert message.status == MessageStatus.DONE, f"{message.status}: {message.error_code} {message.error_text}"
        return reply_of(cls.SERVICE_ACTION, self.outcome(message))

    def stream(self, message: OutboxMessage, cls: type[D], field: str) -> Reply[D]:
        """The reply with its list field ``field`` as a stream (``reply.stream``), as a list purpose gets it."""
        return reply_of(cls.SERVICE_ACTION, self.outcome(message), stream=field)


def error_codes(reply: Reply[Any]) -> list[str]:
    return [i.code for i in reply.errors]


def redeliver(message: OutboxMessage) -> None:
    """Hand a settled message's stored answer to its handler a second time, the way the gateway does when an answer
    arrives twice (a console resend after a handler failure, a pulled response delivered again): in a transaction,
    through the gateway's settling of the answer. The one place the tests of "delivered twice changes nothing"
    reach into the gateway, so that they follow it when the handler API changes."""
    from ato_gateway.answers import answer_settle, outcome_of

    message.refresh_from_db()
    assert message.response(), f"{message.message_id} holds no answer to deliver again"
    with transaction.atomic():
        answer_settle(message, outcome_of(message))


def agent_practice_at_sandbox(
    sandbox: Sandbox, practice: Practice, admin: User, *, clients: int = 60, taxpayers: int = 400
) -> Ato:
    """Make `practice` registered agent AGENT_TAN at the stand-in ATO (its demo credential imported) and generate
    a register in which it has `clients` clients among `taxpayers`, with a second agent (OTHER_AGENT_TAN, 40
    clients) for the rules between agents. For live-server tests call it once the server is up. The portal's
    own settings (ATO_* URLs) must point at the sandbox: `sandbox.env()`."""
    sandbox.clear_faults()
    sandbox.control("POST", "today", json={"today": "2026-11-30"})
    Practice.objects.filter(pk=practice.pk).update(agent_number=AGENT_TAN, abn=DEMO_ABN)
    practice.refresh_from_db()
    services.credential_import(
        practice=practice,
        data=sandbox.demo_keystore.read_bytes(),
        filename="demo-keystore.xml",
        password="demo-keystore-password",
        actor=admin,
    )
    world = Ato(sandbox, practice, admin)
    world.regenerate(
        seed=7,
        taxpayers=taxpayers,
        agents=[
            {"tan": AGENT_TAN, "abn": DEMO_ABN, "name": practice.name, "kind": "TAX", "clients": clients},
            {"tan": OTHER_AGENT_TAN, "abn": "51824753556", "name": "Other Agents", "kind": "TAX", "clients": 40},
        ],
    )
    return world


@pytest.fixture
def ato(settings: Any, sandbox: Sandbox, practice: Practice, admin: User) -> Iterator[Ato]:
    """The test practice as registered agent AGENT_TAN, linked at the stand-in ATO to 60 of its 400 taxpayers,
    with a second agent (OTHER_AGENT_TAN) for rules between agents."""
    for name, value in sandbox.env().items():
        setattr(settings, name, value)
    settings.GATEWAY_BACKOFF_BASE_SECONDS = 0.05
    settings.GATEWAY_BACKOFF_CAP_SECONDS = 0.2
    settings.ATO_READ_TIMEOUT_SECONDS = 10
    tokens.forget_tokens()
    yield agent_practice_at_sandbox(sandbox, practice, admin)
    sandbox.clear_faults()
