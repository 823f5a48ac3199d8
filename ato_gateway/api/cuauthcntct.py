"""CUAUTHCNTCT: a client's authorised contact. Each function records one request; the answer goes to the handler
registered for the action (``ato_gateway.handlers``), which reads it with ``base.read``."""

from __future__ import annotations

from datetime import date

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import cuauthcntct
from ato_gateway.wire.documents.common import Account, ClientIdentifier, PersonName
from portal.models import Practice, User

from . import base

VALIDATE = cuauthcntct.ValidateRequest.SERVICE_ACTION
SUBMIT = cuauthcntct.SubmitRequest.SERVICE_ACTION


def _contact(
    family_name: str | None,
    given_name: str | None,
    position: str | None,
    phone: str | None,
    email: str | None,
    start: date | None,
) -> cuauthcntct.AuthorisedContact:
    # A missing name is sent as missing: the ATO's rule names the field, and the portal shows that to the user.
    name = PersonName(family_name, given_name or None) if family_name else None
    return cuauthcntct.AuthorisedContact(name, position or None, phone or None, email or None, start)


def validate(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    account: Account | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    position: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    start: date | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """What Submit would do with the same contact, and its warnings and errors; nothing changes at the ATO."""
    document = cuauthcntct.ValidateRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        account=account,
        contact=_contact(family_name, given_name, position, phone, email, start),
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def submit(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    account: Account | None = None,
    family_name: str | None = None,
    given_name: str | None = None,
    position: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    start: date | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Make this the client's current authorised contact at client level (no account) or for the account; the
    current ones end the day before ``start`` (default: the ATO's today) and stay in the history."""
    document = cuauthcntct.SubmitRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        account=account,
        contact=_contact(family_name, given_name, position, phone, email, start),
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
