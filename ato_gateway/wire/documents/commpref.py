"""COMMPREF documents (schemas/commpref.xsd): communication preferences of the practice (the default) and of each
client (an override of the default), each for every communication category or for chosen categories, and a paged
list of every client's preference."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import ClientIdentifier

CHANNELS = ("ELEC", "POST", "EMAIL")  # the agent's online inbox, paper to the client, email to the client
# The categories of letters a preference can be set for. The ATO names the categories on its Client Management page
# but publishes no codes: these codes are the project's own. GEN is every letter in no other category.
CATEGORIES = {
    "ITX": "Income tax",
    "AS": "Activity statements",
    "SUP": "Superannuation",
    "DEBT": "Debt and payment plans",
    "FBT": "Fringe benefits tax",
    "EXC": "Excise and fuel schemes",
    "GEN": "General and other letters",
}
BAS_CATEGORIES = ("AS", "DEBT")  # what the stand-in lets a BAS agent set: the letters of the accounts it acts on


@dataclass(kw_only=True)
class CategoryPreference:
    """Where the letters of one category go. ``practice_default`` is true when the category follows the practice
    default (the client has no preference of its own for it, nor a whole preference)."""

    category: str = xml("CommunicationCategoryC")
    channel: str = xml("CommunicationChannelC")
    email: str | None = xml("ElectronicMailAddressT", default=None)
    practice_default: bool = xml("PracticeDefaultI")


@dataclass(kw_only=True)  # keyword-only so that the required channel can follow the optional client
class Preference:
    """A preference as the ATO holds it. ``practice_default`` is true for the practice's own preference and for a
    client without one of its own; ``updated`` is None when the preference was never set (the ATO's default)."""

    client: ClientIdentifier | None = xml("ClientIdentifier", default=None)
    channel: str = xml("CommunicationChannelC")
    email: str | None = xml("ElectronicMailAddressT", default=None)
    practice_default: bool = xml("PracticeDefaultI")
    updated: date | None = xml("UpdatedD", default=None)
    categories: list[CategoryPreference] = xml("CategoryPreference", default_factory=list)


@dataclass
class GetRequest(Document):
    """No client: the practice default."""

    ROOT: ClassVar[str] = "COMMPREFGetRequest"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.Get.001.00"
    client: ClientIdentifier | None = xml("ClientIdentifier", default=None)


@dataclass
class GetResponse(Document):
    ROOT: ClassVar[str] = "COMMPREFGetResponse"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.Get.001.00"
    preference: Preference = xml("Preference")


@dataclass
class PreferenceChange:
    """Either a channel (with the address for EMAIL) or, for a client, ``use_practice_default`` to drop the
    client's own preference; the XSD's choice enforces one of the two. With ``categories`` the change is for those
    categories only; without, for every category (and it replaces the client's category preferences)."""

    client: ClientIdentifier | None = xml("ClientIdentifier", default=None)
    categories: list[str] = xml("CommunicationCategoryC", default_factory=list)
    channel: str | None = xml("CommunicationChannelC", default=None)
    email: str | None = xml("ElectronicMailAddressT", default=None)
    use_practice_default: bool | None = xml("UsePracticeDefaultI", default=None)


@dataclass
class ValidateRequest(PreferenceChange, Document):
    ROOT: ClassVar[str] = "COMMPREFValidateRequest"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.Validate.001.00"


@dataclass
class ValidateResponse(Document):
    """The preference as Submit would leave it; nothing was changed."""

    ROOT: ClassVar[str] = "COMMPREFValidateResponse"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.Validate.001.00"
    preference: Preference = xml("Preference")


@dataclass
class SubmitRequest(PreferenceChange, Document):
    ROOT: ClassVar[str] = "COMMPREFSubmitRequest"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.Submit.001.00"


@dataclass
class SubmitResponse(Document):
    """The preference as it now is."""

    ROOT: ClassVar[str] = "COMMPREFSubmitResponse"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.Submit.001.00"
    preference: Preference = xml("Preference")


@dataclass
class ListRequest(Document):
    """Every current client of the agent with its preference (its own, or the practice default), a page at a
    time in the ATO's order."""

    ROOT: ClassVar[str] = "COMMPREFListRequest"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.List.001.00"
    continuation: str | None = xml("ContinuationT", default=None)
    page_size: int | None = xml("PageSizeN", default=None)


@dataclass
class ListResponse(Document):
    ROOT: ClassVar[str] = "COMMPREFListResponse"
    SERVICE_ACTION: ClassVar[str] = "COMMPREF.List.001.00"
    preferences: list[Preference] = xml("Preference", default_factory=list)
    continuation: str | None = xml("ContinuationT", default=None)
