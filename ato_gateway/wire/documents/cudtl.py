"""CUDTL documents: a client's profile. The 0003.2017 actions use schemas/cudtl.xsd; the older 0003.2016 Get has
its own namespace and schemas/cudtl2016.xsd, as its documents share their root names with the 2017 ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import ClientIdentifier, PersonName


@dataclass
class ClientProfile:
    """The profile as the ATO holds it: an individual's name and dates, or an organisation's names and
    indicators. ``legal_name`` is a trust's, fund's or partnership's; ``super_regulated`` says a fund is APRA or
    ATO regulated."""

    entity_type: str = xml("EntityTypeC")
    abn: str | None = xml("AustralianBusinessNumberId", default=None)
    wpn: str | None = xml("WithholdingPayerNumberId", default=None)
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    birth_date: date | None = xml("BirthD", default=None)
    death_date: date | None = xml("DeathD", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    legal_name: str | None = xml("LegalNameT", default=None)
    not_for_profit: bool | None = xml("NotForProfitI", default=None)
    super_regulated: bool | None = xml("SuperannuationFundRegulatedI", default=None)
    tfn_quoted_for_super: bool | None = xml("SuperannuationTaxFileNumberQuotedI", default=None)


@dataclass
class GetRequest(Document):
    ROOT: ClassVar[str] = "CUDTLGetRequest"
    SERVICE_ACTION: ClassVar[str] = "CUDTL.Get.003.00"
    client: ClientIdentifier = xml("ClientIdentifier")


@dataclass
class GetResponse(Document):
    ROOT: ClassVar[str] = "CUDTLGetResponse"
    SERVICE_ACTION: ClassVar[str] = "CUDTL.Get.003.00"
    client: ClientProfile = xml("Client")


@dataclass
class ProfileUpdate:
    """What Validate and Submit carry: the entity type the agent takes the client to be (it cannot change) and
    only the details to change; a person's name is replaced whole."""

    client: ClientIdentifier = xml("ClientIdentifier")
    entity_type: str = xml("EntityTypeC")
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    birth_date: date | None = xml("BirthD", default=None)
    death_date: date | None = xml("DeathD", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    legal_name: str | None = xml("LegalNameT", default=None)
    not_for_profit: bool | None = xml("NotForProfitI", default=None)
    super_regulated: bool | None = xml("SuperannuationFundRegulatedI", default=None)


@dataclass
class ValidateRequest(ProfileUpdate, Document):
    ROOT: ClassVar[str] = "CUDTLValidateRequest"
    SERVICE_ACTION: ClassVar[str] = "CUDTL.Validate.003.00"


@dataclass
class ValidateResponse(Document):
    """The profile as it would be after the update (nothing is changed)."""

    ROOT: ClassVar[str] = "CUDTLValidateResponse"
    SERVICE_ACTION: ClassVar[str] = "CUDTL.Validate.003.00"
    client: ClientProfile = xml("Client")


@dataclass
class SubmitRequest(ProfileUpdate, Document):
    ROOT: ClassVar[str] = "CUDTLSubmitRequest"
    SERVICE_ACTION: ClassVar[str] = "CUDTL.Submit.003.00"


@dataclass
class SubmitResponse(Document):
    """The profile as it now is."""

    ROOT: ClassVar[str] = "CUDTLSubmitResponse"
    SERVICE_ACTION: ClassVar[str] = "CUDTL.Submit.003.00"
    client: ClientProfile = xml("Client")


# --- 0003.2016 (Get only) ---


@dataclass
class ClientProfile2016:
    """The 2016 profile: no legal name and no superannuation indicators."""

    entity_type: str = xml("EntityTypeC")
    abn: str | None = xml("AustralianBusinessNumberId", default=None)
    wpn: str | None = xml("WithholdingPayerNumberId", default=None)
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    birth_date: date | None = xml("BirthD", default=None)
    death_date: date | None = xml("DeathD", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    not_for_profit: bool | None = xml("NotForProfitI", default=None)


@dataclass
class GetRequest2016(Document):
    ROOT: ClassVar[str] = "CUDTLGetRequest"
    SERVICE_ACTION: ClassVar[str] = "CUDTL2016.Get.003.00"
    client: ClientIdentifier = xml("ClientIdentifier")


@dataclass
class GetResponse2016(Document):
    ROOT: ClassVar[str] = "CUDTLGetResponse"
    SERVICE_ACTION: ClassVar[str] = "CUDTL2016.Get.003.00"
    client: ClientProfile2016 = xml("Client")
