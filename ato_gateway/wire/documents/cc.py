"""CC documents (schemas/cc.xsd): the ATO's letters to an agent's clients, listed over a date range and fetched
one at a time with their PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import Account, ClientIdentifier, PersonName

KINDS = ("NOA", "ASR", "DEBT", "PPA", "AUD", "REV")
MAX_CLIENTS = 100  # clients one List request may name: batch larger selections
MAX_YEARS = 5  # the longest date range one List request may cover


@dataclass(kw_only=True)  # keyword-only so that the required dates can follow the optional clients
class ListRequest(Document):
    """The letters issued from ``issued_from`` to ``issued_to`` (both included) to the clients named, or with no
    clients named to every client of the agent."""

    ROOT: ClassVar[str] = "CCListRequest"
    SERVICE_ACTION: ClassVar[str] = "CC.List.001.00"
    clients: list[ClientIdentifier] = xml("ClientIdentifier", default_factory=list)
    issued_from: date = xml("IssuedFromD")
    issued_to: date = xml("IssuedToD")
    continuation: str | None = xml("ContinuationT", default=None)
    page_size: int | None = xml("PageSizeN", default=None)


@dataclass(kw_only=True)  # keyword-only so that the required fields can follow the optional names
class Communication:
    """One letter. ``client`` is the client's TFN; the name is a person's or an organisation's."""

    id: str = xml("CommunicationId")
    client: ClientIdentifier = xml("ClientIdentifier")
    person_name: PersonName | None = xml("PersonNameDetails", default=None)
    organisation_name: str | None = xml("OrganisationNameT", default=None)
    kind: str = xml("CommunicationTypeC")
    title: str = xml("CommunicationTitleT")
    issued: date = xml("IssuedD")
    account: Account | None = xml("Account", default=None)


@dataclass
class ListResponse(Document):
    ROOT: ClassVar[str] = "CCListResponse"
    SERVICE_ACTION: ClassVar[str] = "CC.List.001.00"
    communications: list[Communication] = xml("Communication", default_factory=list)
    continuation: str | None = xml("ContinuationT", default=None)


@dataclass
class GetRequest(Document):
    ROOT: ClassVar[str] = "CCGetRequest"
    SERVICE_ACTION: ClassVar[str] = "CC.Get.001.00"
    id: str = xml("CommunicationId")


@dataclass
class Attachment:
    file_name: str = xml("FileNameT")
    media_type: str = xml("MediaTypeT")
    content: bytes = xml("ContentB")


@dataclass
class GetResponse(Document):
    ROOT: ClassVar[str] = "CCGetResponse"
    SERVICE_ACTION: ClassVar[str] = "CC.Get.001.00"
    communication: Communication = xml("Communication")
    attachment: Attachment = xml("Attachment")
