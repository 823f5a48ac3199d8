"""What every business action of the stand-in ATO is given, and how it answers (docs/business-services.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NoReturn, TypeVar

from ato_gateway.wire.documents.codec import Document
from ato_gateway.wire.events import EventItem
from ato_gateway.wire.server import InboundRequest

from .. import errors, register

Handler = Callable[["Context", Any], Document | None]
F = TypeVar("F", bound=Handler)


@dataclass(frozen=True)
class Registration:
    function: Handler
    agent_required: bool


HANDLERS: dict[str, Registration] = {}


def handles(service_action: str, *, agent_required: bool = True) -> Callable[[F], F]:
    """Register the function that applies one action. ``agent_required``: the sender must be a registered agent
    (its agent number in the From party); MAAS is sent by funds for themselves and says False."""

    def decorate(function: F) -> F:
        if service_action in HANDLERS:
            raise ValueError(f"{service_action} is handled twice")
        HANDLERS[service_action] = Registration(function, agent_required)
        return function

    return decorate


class Failure(Exception):
    """Stops an action: its changes roll back and the answer carries these error items and no document."""

    def __init__(self, items: list[EventItem]) -> None:
        super().__init__("; ".join(i.code for i in items))
        self.items = items


@dataclass
class Context:
    db: sqlite3.Connection
    request: InboundRequest
    agent: dict[str, Any] | None
    today: date
    items: list[EventItem] = field(default_factory=list)
    # Accepted in part: some of the request applied, the rest refused (MaximumSeverity.Code "Partial").
    partial: bool = False

    @property
    def agent_id(self) -> int:
        if self.agent is None:
            raise RuntimeError("this action has no acting agent")
        return int(self.agent["id"])

    def warn(self, code: str, **parameters: object) -> None:
        self.items.append(errors.item(code, **parameters))

    def inform(self, code: str, **parameters: object) -> None:
        self.items.append(errors.item(code, **parameters))

    def fail(self, code: str, **parameters: object) -> NoReturn:
        raise Failure([errors.item(code, **parameters)])

    def fail_all(self, items: list[EventItem]) -> NoReturn:
        raise Failure(items)

    def find_taxpayer(
        self, *, tfn: str | None = None, abn: str | None = None, wpn: str | None = None
    ) -> dict[str, Any] | None:
        return register.find_taxpayer(self.db, tfn=tfn, abn=abn, wpn=wpn)

    def require_link(self, taxpayer_id: int, account_id: int | None = None, role: str | None = None) -> None:
        """CMN.ATO.AUTH.002 unless the agent has a current link covering the client, the account or the role."""
        if not register.has_access(self.db, self.agent_id, taxpayer_id, account_id=account_id, role=role):
            level = f"role {role}" if role else ("this account" if account_id else "this client")
            self.fail("CMN.ATO.AUTH.002", Level=level)
