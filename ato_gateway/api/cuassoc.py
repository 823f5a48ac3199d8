"""CUASSOC: a client's associates. The function records one request; the answer goes to the handler registered for
the action (``ato_gateway.handlers``), which reads it with ``base.read`` (or ``base.stream`` for a long list)."""

from __future__ import annotations

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import cuassoc
from ato_gateway.wire.documents.common import ClientIdentifier
from portal.models import Practice, User

from . import base

LIST = cuassoc.ListRequest.SERVICE_ACTION


def list_associates(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    include_history: bool = False,
    continuation: str | None = None,
    page_size: int | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """One page of the client's associates (only the current ones unless ``include_history``); the handler asks for
    the next page with the response's ``continuation`` until there is none."""
    document = cuassoc.ListRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        include_history=include_history,
        continuation=continuation,
        page_size=page_size,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
