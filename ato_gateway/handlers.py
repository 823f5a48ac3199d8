"""Where results go. Each domain app registers, in its AppConfig.ready(), the function that takes the outcome of
its service and action; the gateway calls it and imports no domain app.

A handler runs in the transaction that marks the message done, so the domain change and the message's final
state commit together. It must be idempotent: after a crash between the ATO's answer and that commit, the same
outcome is delivered again (the ATO answers a repeated MessageId with its first answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ato_gateway.models import OutboxMessage


@dataclass(frozen=True)
class Outcome:
    """What the ATO said, or why it could not be asked. `ok` is False for failures and dead letters."""

    ok: bool
    kind: str  # "user", "receipt", "error", "failed", "dead"
    documents: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    error_code: str = ""
    error_text: str = ""


Handler = Callable[["OutboxMessage", Outcome], None]
_HANDLERS: dict[tuple[str, str], Handler] = {}


def register(service: str, action: str, handler: Handler) -> None:
    key = (service, action)
    if key in _HANDLERS and _HANDLERS[key] is not handler:
        raise ValueError(f"A handler for {service} {action} is already registered.")
    _HANDLERS[key] = handler


def handler_for(service: str, action: str) -> Handler | None:
    return _HANDLERS.get((service, action))


def unregister(service: str, action: str) -> None:
    """For tests that install a handler of their own."""
    _HANDLERS.pop((service, action), None)
