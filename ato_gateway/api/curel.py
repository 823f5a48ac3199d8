"""CUREL: client-agent relationships. Each function records one request; the answer goes to the handler
registered for the action (``ato_gateway.handlers``), which reads it with ``base.read``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import ClientIdentifier, Period, PersonName
from portal.models import Practice, User

from . import base

SEARCH = curel.SearchRequest.SERVICE_ACTION
VALIDATE = curel.ValidateRequest.SERVICE_ACTION
SUBMIT = curel.SubmitRequest.SERVICE_ACTION
VALIDATE_REMOVE = curel.ValidateRemoveRequest.SERVICE_ACTION
REMOVE = curel.RemoveRequest.SERVICE_ACTION
LIST = curel.ListRequest.SERVICE_ACTION

# The levels a link is at, for ``links=``: Relationship.client(), Relationship.of_account("AS", "001"),
# Relationship.of_role("PAYGW", "001").
Relationship = curel.Relationship


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


def _add_links(
    cls: type[curel.ValidateRequest] | type[curel.SubmitRequest],
    client: ClientIdentifier,
    links: Sequence[curel.Relationship],
    family_name: str | None,
    given_name: str | None,
    organisation_name: str | None,
    birth_date: date | None,
) -> curel.ValidateRequest | curel.SubmitRequest:
    return cls(
        client=client,
        person_name=PersonName(family_name, given_name) if family_name else None,
        organisation_name=organisation_name or None,
        birth_date=birth_date,
        relationships=list(links),
    )


def validate(
    *,
    practice: Practice,
    links: Sequence[curel.Relationship],
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
    """What ``submit`` would do, changing nothing: its warnings name every other agent whose link it would end.
    The client is identified as for ``search``."""
    client = ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn)
    document = _add_links(curel.ValidateRequest, client, links, family_name, given_name, organisation_name, birth_date)
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def submit(
    *,
    practice: Practice,
    links: Sequence[curel.Relationship],
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
    """Add links to the client from today; any other agent's link they cover ends (call ``validate`` first and show
    its warnings). A link the practice already has is reported, not added again."""
    client = ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn)
    document = _add_links(curel.SubmitRequest, client, links, family_name, given_name, organisation_name, birth_date)
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


@dataclass(frozen=True)
class LinkRequest:
    """One client's links to validate or submit, named as for ``validate``: for ``validate_many`` and
    ``submit_many``."""

    links: Sequence[curel.Relationship]
    tfn: str | None = None
    abn: str | None = None
    wpn: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    organisation_name: str | None = None
    birth_date: date | None = None

    def document(
        self, cls: type[curel.ValidateRequest] | type[curel.SubmitRequest]
    ) -> curel.ValidateRequest | curel.SubmitRequest:
        client = ClientIdentifier.of(tfn=self.tfn, abn=self.abn, wpn=self.wpn)
        return _add_links(
            cls, client, self.links, self.family_name, self.given_name, self.organisation_name, self.birth_date
        )


def validate_many(
    *, practice: Practice, requests: Sequence[tuple[LinkRequest, Subject | None]], created_by: User | None = None
) -> list[OutboxMessage]:
    """``validate`` for many clients at once (a bulk link): recorded together and sent in the gateway's batches.
    The messages come back in the requests' order."""
    documents = [(r.document(curel.ValidateRequest), subject) for r, subject in requests]
    return base.send_many(documents, practice=practice, created_by=created_by)


def submit_many(
    *, practice: Practice, requests: Sequence[tuple[LinkRequest, Subject | None]], created_by: User | None = None
) -> list[OutboxMessage]:
    """``submit`` for many clients at once, each after its ``validate``."""
    documents = [(r.document(curel.SubmitRequest), subject) for r, subject in requests]
    return base.send_many(documents, practice=practice, created_by=created_by)


def validate_remove(
    *,
    practice: Practice,
    links: Sequence[curel.Relationship],
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """What ``remove`` would end, changing nothing; warns when no link to the client would remain."""
    document = curel.ValidateRemoveRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn), relationships=list(links)
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def remove(
    *,
    practice: Practice,
    links: Sequence[curel.Relationship],
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """End the practice's own current links to the client at exactly these levels, from today."""
    document = curel.RemoveRequest(client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn), relationships=list(links))
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def list_links(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    include_ended: bool = False,
    ended_from: date | None = None,
    ended_to: date | None = None,
    continuation: str | None = None,
    page_size: int | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """One page of the practice's clients with their links (every client, or the one identified). With
    ``include_ended``, also links that ended between ``ended_from`` and ``ended_to`` (either may be open). Read the
    answer with ``base.stream(outcome, curel.ListResponse, "clients")`` and, while it carries a continuation, ask
    for the next page with ``continuation=``."""
    one = tfn or abn or wpn
    period = None
    if include_ended and (ended_from or ended_to):
        period = Period(ended_from or date.min, ended_to)
    document = curel.ListRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn) if one else None,
        include_ended=True if include_ended else None,
        ended_period=period,
        continuation=continuation,
        page_size=page_size,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
