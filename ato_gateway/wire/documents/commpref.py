"""COMMPREF documents (schemas/commpref.xsd): communication preferences of the practice (the default) and of each
client (an override of the default)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import ClientIdentifier

CHANNELS = ("ELEC", "POST", "EMAIL")  # the agent's online inbox, paper to the client, email to the client


@dataclass(kw_only=True)  # keyword-only so that the required channel can follow the optional client
class Preference:
    """A preference as the ATO holds it. ``practice_default`` is true for the practice's own preference and for a
    client without one of its own; ``updated`` is None when the preference was never set (the ATO's default)."""

    client: ClientIdentifier | None = xml("ClientIdentifier", default=None)
    channel: str = xml("CommunicationChannelC")
    email: str | None = xml("ElectronicMailAddressT", default=None)
    practice_default: bool = xml("PracticeDefaultI")
    updated: date | None = xml("UpdatedD", default=None)


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
    client's own preference; the XSD's choice enforces one of the two."""

    client: ClientIdentifier | None = xml("ClientIdentifier", default=None)
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
