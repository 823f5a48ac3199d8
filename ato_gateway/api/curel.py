"""CUREL: client-agent relationships. Each function records one request; the answer goes to the handler
registered for the action (``ato_gateway.handlers``), which reads it with ``base.read``."""

from __future__ import annotations

from datetime import date

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from portal.models import Practice, User

from . import base

SEARCH = curel.SearchRequest.SERVICE_ACTION


def search(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    organisation_name: str | None = None,
    birth_date: date | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Find a client before linking: one identifier, plus the family name and date of birth of an individual or
    the name of an organisation."""
    document = curel.SearchRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        person_name=PersonName(family_name, given_name) if family_name else None,
        organisation_name=organisation_name or None,
        birth_date=birth_date,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
