"""What every typed API function shares: record a document in the outbox, and read the answer a handler gets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ato_gateway.handlers import Outcome
from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject, outbox_enqueue, outbox_enqueue_many
from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec
from portal.models import Practice, User

D = TypeVar("D", bound=codec.Document)


def send(
    document: codec.Document,
    *,
    practice: Practice,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Encode (and so validate) the request and record it in the caller's transaction; the send job is enqueued
    when that transaction commits, and the answer goes to the handler registered for the action."""
    action = registry.get(document.SERVICE_ACTION)
    body = codec.encode(document).decode("utf-8")
    return outbox_enqueue(
        practice=practice,
        service=action.service,
        action=action.action,
        documents=[(action.request_document, body)],
        subject=subject,
        created_by=created_by,
    )


def send_many(
    documents: Sequence[tuple[codec.Document, Subject | None]],
    *,
    practice: Practice,
    created_by: User | None = None,
) -> list[OutboxMessage]:
    """``send`` for many documents of one action (a bulk link's rows): one insert, one audit entry and send jobs
    of a gateway batch each, rather than a job per message. Returns the messages in the documents' order."""
    if not documents:
        return []
    actions = {d.SERVICE_ACTION for d, _ in documents}
    if len(actions) != 1:
        raise ValueError(f"send_many takes documents of one action, not {sorted(actions)}.")
    action = registry.get(actions.pop())
    batch = [([(action.request_document, codec.encode(d).decode("utf-8"))], subject) for d, subject in documents]
    return outbox_enqueue_many(
        practice=practice, service=action.service, action=action.action, batch=batch, created_by=created_by
    )


@dataclass(frozen=True)
class Item:
    """One event item of the ATO's answer."""

    code: str
    severity: str
    text: str
    detail: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_outcome(cls, event: dict[str, Any]) -> Item:
        return cls(
            code=event.get("code", ""),
            severity=event.get("severity", ""),
            text=event.get("short_description", ""),
            detail=event.get("detailed_description", ""),
            parameters={str(k): str(v) for k, v in event.get("parameters", [])},
        )


@dataclass(frozen=True)
class Reply(Generic[D]):
    """The answer to one request: the response document (None when the ATO refused it) and every event item.
    When the message itself failed (a dead letter, an ebMS error) there are no items and ``failure`` says why."""

    document: D | None
    items: list[Item]
    failure: str = ""

    @property
    def errors(self) -> list[Item]:
        return [i for i in self.items if i.severity == "Error"]

    @property
    def warnings(self) -> list[Item]:
        return [i for i in self.items if i.severity == "Warning"]

    @property
    def ok(self) -> bool:
        return not self.failure and not self.errors


def _items(outcome: Outcome) -> list[Item]:
    return [Item.from_outcome(e) for e in outcome.events]


def _failure(outcome: Outcome) -> str:
    if outcome.ok:
        return ""
    return f"{outcome.error_code}: {outcome.error_text}" if outcome.error_code else outcome.error_text or "failed"


def read(outcome: Outcome, cls: type[D]) -> Reply[D]:
    """Decode the answer: the response document if the ATO sent one (validated against its XSD)."""
    action = registry.get(cls.SERVICE_ACTION)
    text = outcome.documents.get(action.response_document) if outcome.ok else None
    document = codec.decode(cls, text) if text else None
    return Reply(document, _items(outcome), _failure(outcome))


def stream(outcome: Outcome, cls: type[D], field_name: str) -> tuple[Reply[D], codec.Stream[D, Any] | None]:
    """For long lists: the reply without its document, and a stream of the list's items (None when the ATO sent
    no document). After the stream is exhausted, ``stream.document`` holds the other fields (the continuation)."""
    action = registry.get(cls.SERVICE_ACTION)
    text = outcome.documents.get(action.response_document) if outcome.ok else None
    return Reply(None, _items(outcome), _failure(outcome)), (codec.stream(cls, text, field_name) if text else None)
