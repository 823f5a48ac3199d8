"""CUREL documents (schemas/curel.xsd): client-agent relationships."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import Account, ClientIdentifier, Period, PersonName


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


# --- links: Validate, Submit, ValidateRemove, Remove, List ---

LEVELS = ("CLIENT", "ACCOUNT", "ROLE")


@dataclass
class Relationship:
    """A link at one level: CLIENT (no account), ACCOUNT (the account) or ROLE (the account and the role)."""

    level: str = xml("RelationshipLevelC")
    account: Account | None = xml("Account", default=None)
    role: str | None = xml("RoleTypeC", default=None)

    @classmethod
    def client(cls) -> Relationship:
        return cls("CLIENT")

    @classmethod
    def of_account(cls, kind: str, branch: str | None = None) -> Relationship:
        return cls("ACCOUNT", Account(kind, branch))

    @classmethod
    def of_role(cls, role: str, branch: str = "001") -> Relationship:
        """Roles belong to activity statement accounts, named by their branch."""
        return cls("ROLE", Account("AS", branch), role)


@dataclass
class AddLinks:
    """Validate and Submit: the client as Search identifies it (identifier, name, an individual's date of birth)
    and the links to add."""

    client: ClientIdentifier = xml("ClientIdentifier")
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    birth_date: date | None = xml("BirthD", default=None)
    relationships: list[Relationship] = xml("Relationship", default_factory=list)


@dataclass(kw_only=True)
class AddedRelationship:
    level: str = xml("RelationshipLevelC")
    account: Account | None = xml("Account", default=None)
    role: str | None = xml("RoleTypeC", default=None)
    status: str = xml("RelationshipStatusC")  # NEW or EXISTING (already covered, not duplicated)
    start_date: date = xml("StartD")


@dataclass(kw_only=True)
class SupersededRelationship:
    """Another agent's link that the new links end (Validate: will end on end_date; Submit: has ended)."""

    agent_number: str = xml("TaxAgentNumberId")
    agent_name: str = xml("AgentNameT")
    level: str = xml("RelationshipLevelC")
    account: Account | None = xml("Account", default=None)
    role: str | None = xml("RoleTypeC", default=None)
    start_date: date = xml("StartD")
    end_date: date = xml("EndD")


@dataclass
class AddedLinks:
    relationships: list[AddedRelationship] = xml("Relationship", default_factory=list)
    superseded: list[SupersededRelationship] = xml("SupersededRelationship", default_factory=list)


@dataclass
class ValidateRequest(AddLinks, Document):
    ROOT: ClassVar[str] = "CURELValidateRequest"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Validate.004.00"


@dataclass
class ValidateResponse(AddedLinks, Document):
    ROOT: ClassVar[str] = "CURELValidateResponse"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Validate.004.00"


@dataclass
class SubmitRequest(AddLinks, Document):
    ROOT: ClassVar[str] = "CURELSubmitRequest"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Submit.004.00"


@dataclass
class SubmitResponse(AddedLinks, Document):
    ROOT: ClassVar[str] = "CURELSubmitResponse"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Submit.004.00"


@dataclass(kw_only=True)
class ListedRelationship:
    """A link as the register holds it; end_date and end_reason (REMOVED, SUPERSEDED, CLIENT) once it has ended."""

    level: str = xml("RelationshipLevelC")
    account: Account | None = xml("Account", default=None)
    role: str | None = xml("RoleTypeC", default=None)
    start_date: date = xml("StartD")
    end_date: date | None = xml("EndD", default=None)
    end_reason: str | None = xml("RelationshipEndReasonC", default=None)


@dataclass
class RemoveLinks:
    """ValidateRemove and Remove: the agent's own current links to end."""

    client: ClientIdentifier = xml("ClientIdentifier")
    relationships: list[Relationship] = xml("Relationship", default_factory=list)


@dataclass
class RemovedLinks:
    """The links ended (ValidateRemove: that would end), and whether any link to the client remains after."""

    relationships: list[ListedRelationship] = xml("Relationship", default_factory=list)
    access_remains: bool = xml("ClientAccessRemainsI", default=True)


@dataclass
class ValidateRemoveRequest(RemoveLinks, Document):
    ROOT: ClassVar[str] = "CURELValidateRemoveRequest"
    SERVICE_ACTION: ClassVar[str] = "CUREL.ValidateRemove.004.00"


@dataclass
class ValidateRemoveResponse(RemovedLinks, Document):
    ROOT: ClassVar[str] = "CURELValidateRemoveResponse"
    SERVICE_ACTION: ClassVar[str] = "CUREL.ValidateRemove.004.00"


@dataclass
class RemoveRequest(RemoveLinks, Document):
    ROOT: ClassVar[str] = "CURELRemoveRequest"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Remove.004.00"


@dataclass
class RemoveResponse(RemovedLinks, Document):
    ROOT: ClassVar[str] = "CURELRemoveResponse"
    SERVICE_ACTION: ClassVar[str] = "CUREL.Remove.004.00"


@dataclass
class ListRequest(Document):
    """Every client of the agent, or one (``client``); with ``include_ended``, also links that ended within
    ``ended_period`` (any time when it is absent). Pages by ``continuation`` from the previous page."""

    ROOT: ClassVar[str] = "CURELListRequest"
    SERVICE_ACTION: ClassVar[str] = "CUREL.List.004.00"
    client: ClientIdentifier | None = xml("ClientIdentifier", default=None)
    include_ended: bool | None = xml("IncludeEndedI", default=None)
    ended_period: Period | None = xml("EndedPeriod", default=None)
    continuation: str | None = xml("ContinuationT", default=None)
    page_size: int | None = xml("PageSizeN", default=None)


@dataclass(kw_only=True)
class ListedClient:
    tfn: str = xml("TaxFileNumberId")
    abn: str | None = xml("AustralianBusinessNumberId", default=None)
    wpn: str | None = xml("WithholdingPayerNumberId", default=None)
    entity_type: str = xml("EntityTypeC")
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    birth_date: date | None = xml("BirthD", default=None)
    relationships: list[ListedRelationship] = xml("Relationship", default_factory=list)


@dataclass
class ListResponse(Document):
    """One page of clients, in the register's order; ``continuation`` is set while more remain."""

    ROOT: ClassVar[str] = "CURELListResponse"
    SERVICE_ACTION: ClassVar[str] = "CUREL.List.004.00"
    clients: list[ListedClient] = xml("Client", default_factory=list)
    continuation: str | None = xml("ContinuationT", default=None)
