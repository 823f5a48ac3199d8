"""Where answers go. A domain app registers, in its AppConfig.ready(), the function that takes the answers to one
kind of question (its *purpose*, for example "relationships.search" or "demographics.snapshot"); the gateway
calls it and imports no domain app. Purposes, not (service, action) pairs, name the handler, so one ATO action can
serve two apps, or two purposes in one app.

A handler runs in the transaction that marks the message done, so the domain change and the message's final
state commit together. The gateway calls it once per change of the question's state (waiting to answered or
refused, waiting to failed, and failed to answered or refused when the ATO's answer arrives after the portal had
given up: the ATO's answer always wins), and never again once the ATO's answer has been applied.

A purpose whose answers come in crowds (a nightly watch of every client) may also register ``many``: the answers
of one of the gateway's batches handed over together, their questions already settled, so that the handler can
read and write set-wise instead of a few queries an answer. It must do what the handler would do for each answer
in turn; should it fail, the gateway rolls it back and calls the handler for each answer instead, one at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ato_gateway.models import Question
    from ato_gateway.replies import Reply


@dataclass(frozen=True)
class Outcome:
    """What the ATO said, or why it could not be asked. `ok` is False for failures and dead letters."""

    ok: bool
    kind: str  # "user", "receipt", "error", "failed", "dead"
    documents: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    error_code: str = ""
    error_text: str = ""


Handler = Callable[["Question", "Reply[Any]"], None]
ManyHandler = Callable[[list[tuple["Question", "Reply[Any]"]]], None]


@dataclass(frozen=True)
class Registration:
    handler: Handler
    # For long lists: the name of the response's repeated field, which the handler reads as a stream
    # (``reply.stream``) instead of a document decoded whole into memory.
    stream: str | None = None
    # The answers of one batch together, in the order their messages were sent (see the module's docstring).
    many: ManyHandler | None = None


_HANDLERS: dict[str, Registration] = {}


def register(purpose: str, handler: Handler, *, stream: str | None = None, many: ManyHandler | None = None) -> None:
    registration = Registration(handler, stream, many)
    if purpose in _HANDLERS and _HANDLERS[purpose] != registration:
        raise ValueError(f"A handler for the purpose {purpose!r} is already registered.")
    _HANDLERS[purpose] = registration


def registration_for(purpose: str) -> Registration | None:
    return _HANDLERS.get(purpose)


def unregister(purpose: str) -> None:
    """For tests that install a handler of their own."""
    _HANDLERS.pop(purpose, None)
