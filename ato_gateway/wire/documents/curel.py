"""CUREL documents (schemas/curel.xsd): client-agent relationships."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import ClientIdentifier, PersonName


@dataclass
class SearchRequest(Document):
    """Find a client before linking: an identifier plus the name (and the date of birth for an individual)."""

    ROOT: ClassVar[str] = "CURELSearchRequest"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Search.004.00"
    client: ClientIdentifier = xml("ClientIdentifier")
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    birth_date: date | None = xml("BirthD", default=None)


@dataclass
class FoundAccount:
    kind: str = xml("AccountTypeC")
    branch: str | None = xml("BranchN", default=None)
    roles: list[str] = xml("RoleTypeC", default_factory=list)


@dataclass
class FoundClient:
    entity_type: str = xml("EntityTypeC")
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    birth_date: date | None = xml("BirthD", default=None)
    abn: str | None = xml("AustralianBusinessNumberId", default=None)
    accounts: list[FoundAccount] = xml("Account", default_factory=list)
    existing_relationship: bool = xml("ExistingRelationshipI", default=False)


@dataclass
class SearchResponse(Document):
    ROOT: ClassVar[str] = "CURELSearchResponse"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Search.004.00"
    client: FoundClient = xml("Client")
