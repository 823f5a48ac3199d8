"""CUAUTHCNTCT documents (schemas/cuauthcntct.xsd): a client's authorised contact at client or account level."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import Account, ClientIdentifier, Period, PersonName


@dataclass
class AuthorisedContact:
    """The new current contact. The name is optional in the XSD so that its absence is a business error that names
    the field; the service requires the family and the given name."""

    name: PersonName | None = xml("PersonNameDetails", default=None)
    position: str | None = xml("PositionT", default=None)
    phone: str | None = xml("TelephoneNumberT", default=None)
    email: str | None = xml("EmailAddressT", default=None)
    start: date | None = xml("StartD", default=None)


@dataclass
class UpdateRequest:
    client: ClientIdentifier = xml("ClientIdentifier")
    account: Account | None = xml("Account", default=None)
    contact: AuthorisedContact = xml("AuthorisedContact", default_factory=AuthorisedContact)


@dataclass(kw_only=True)
class UpdateResponse:
    """What happened (or, from Validate, would happen): ADD, REPLACE (``ended`` current contacts end the day before
    the new start), CORRECT or NONE; ``period`` is the resulting current contact's."""

    action: str = xml("ActionC")
    ended: int = xml("EndedN", default=0)
    period: Period = xml("Period")


@dataclass
class ValidateRequest(UpdateRequest, Document):
    ROOT: ClassVar[str] = "CUAUTHCNTCTValidateRequest"
    SERVICE_ACTION: ClassVar[str] = "CUAUTHCNTCT.Validate.001.00"


@dataclass(kw_only=True)
class ValidateResponse(UpdateResponse, Document):
    ROOT: ClassVar[str] = "CUAUTHCNTCTValidateResponse"
    SERVICE_ACTION: ClassVar[str] = "CUAUTHCNTCT.Validate.001.00"


@dataclass
class SubmitRequest(UpdateRequest, Document):
    ROOT: ClassVar[str] = "CUAUTHCNTCTSubmitRequest"
    SERVICE_ACTION: ClassVar[str] = "CUAUTHCNTCT.Submit.001.00"


@dataclass(kw_only=True)
class SubmitResponse(UpdateResponse, Document):
    ROOT: ClassVar[str] = "CUAUTHCNTCTSubmitResponse"
    SERVICE_ACTION: ClassVar[str] = "CUAUTHCNTCT.Submit.001.00"
