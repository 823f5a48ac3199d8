"""CC: the ATO's letters to the practice's clients. Each function records one request; the answer goes to the
handler registered for the action (``ato_gateway.handlers``), which reads a list with ``base.stream`` (asking for
the next page with ``continuation`` until the response has none) and a letter with ``base.read``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import cc
from ato_gateway.wire.documents.common import ClientIdentifier
from portal.models import Practice, User

from . import base

LIST = cc.ListRequest.SERVICE_ACTION
GET = cc.GetRequest.SERVICE_ACTION
MAX_CLIENTS = 100  # clients one List request may name: batch larger selections
MAX_YEARS = 5  # the longest date range one List request may cover


def list_communications(
    *,
    practice: Practice,
    issued_from: date,
    issued_to: date,
    clients: Sequence[ClientIdentifier] = (),
    continuation: str | None = None,
    page_size: int | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """One page of the letters issued from ``issued_from`` to ``issued_to`` (both included), oldest first, to the
    ``clients`` named (at most MAX_CLIENTS) or, with none named, to every client of the practice."""
    document = cc.ListRequest(
        clients=list(clients),
        issued_from=issued_from,
        issued_to=issued_to,
        continuation=continuation,
        page_size=page_size,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def get_communication(
    *,
    practice: Practice,
    communication_id: str,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """One letter by the id a list gave, with its document (``attachment``: a PDF)."""
    document = cc.GetRequest(id=communication_id)
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
