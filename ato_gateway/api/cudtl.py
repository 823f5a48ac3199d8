"""CUDTL: a client's profile (client details). Each function records one request; the answer goes to the handler
registered for the action (``ato_gateway.handlers``), which reads it with ``base.read``.

``get`` asks the 0003.2017 service, ``get_2016`` the older 0003.2016 one (a smaller profile: no legal name and no
superannuation indicators). ``validate`` and ``submit`` take the same arguments; run ``validate`` first and show
its warnings before ``submit``."""

from __future__ import annotations

from datetime import date

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import cudtl
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from portal.models import Practice, User

from . import base

GET = cudtl.GetRequest.SERVICE_ACTION
GET_2016 = cudtl.GetRequest2016.SERVICE_ACTION
VALIDATE = cudtl.ValidateRequest.SERVICE_ACTION
SUBMIT = cudtl.SubmitRequest.SERVICE_ACTION


def get(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """The client's profile: an individual's name and dates, or an organisation's names and indicators."""
    document = cudtl.GetRequest(client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn))
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def get_2016(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """The client's profile from the 0003.2016 service."""
    document = cudtl.GetRequest2016(client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn))
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def _update(
    cls: type[cudtl.ValidateRequest] | type[cudtl.SubmitRequest],
    *,
    practice: Practice,
    tfn: str | None,
    abn: str | None,
    wpn: str | None,
    entity_type: str,
    person_name: PersonName | None,
    birth_date: date | None,
    death_date: date | None,
    organisation_name: str | None,
    legal_name: str | None,
    not_for_profit: bool | None,
    super_regulated: bool | None,
    created_by: User | None,
    subject: Subject | None,
) -> OutboxMessage:
    document = cls(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        entity_type=entity_type,
        person_name=person_name,
        birth_date=birth_date,
        death_date=death_date,
        organisation_name=organisation_name or None,
        legal_name=legal_name or None,
        not_for_profit=not_for_profit,
        super_regulated=super_regulated,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def validate(
    *,
    practice: Practice,
    entity_type: str,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    person_name: PersonName | None = None,
    birth_date: date | None = None,
    death_date: date | None = None,
    organisation_name: str | None = None,
    legal_name: str | None = None,
    not_for_profit: bool | None = None,
    super_regulated: bool | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Check a profile update without making it: the answer carries the profile as it would be, and the errors
    and warnings ``submit`` would give. ``entity_type`` is the type the client is held as (it cannot change);
    give only the details to change (None leaves one as it is; a person's name is replaced whole)."""
    return _update(
        cudtl.ValidateRequest,
        practice=practice,
        tfn=tfn,
        abn=abn,
        wpn=wpn,
        entity_type=entity_type,
        person_name=person_name,
        birth_date=birth_date,
        death_date=death_date,
        organisation_name=organisation_name,
        legal_name=legal_name,
        not_for_profit=not_for_profit,
        super_regulated=super_regulated,
        created_by=created_by,
        subject=subject,
    )


def submit(
    *,
    practice: Practice,
    entity_type: str,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    person_name: PersonName | None = None,
    birth_date: date | None = None,
    death_date: date | None = None,
    organisation_name: str | None = None,
    legal_name: str | None = None,
    not_for_profit: bool | None = None,
    super_regulated: bool | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Update the profile (the arguments are ``validate``'s); the answer carries the profile as it now is."""
    return _update(
        cudtl.SubmitRequest,
        practice=practice,
        tfn=tfn,
        abn=abn,
        wpn=wpn,
        entity_type=entity_type,
        person_name=person_name,
        birth_date=birth_date,
        death_date=death_date,
        organisation_name=organisation_name,
        legal_name=legal_name,
        not_for_profit=not_for_profit,
        super_regulated=super_regulated,
        created_by=created_by,
        subject=subject,
    )
