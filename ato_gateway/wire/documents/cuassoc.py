"""CUASSOC documents (schemas/cuassoc.xsd): a client's associates (directors, public officers, trustees,
partners, beneficiaries, secretaries), current and past."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .codec import Document, xml
from .common import ClientIdentifier, Period

RELATIONSHIPS = ("DIR", "PUB", "TEE", "PTR", "BEN", "SEC")


@dataclass
class ListRequest(Document):
    ROOT: ClassVar[str] = "CUASSOCListRequest"
    SERVICE_ACTION: ClassVar[str] = "CUASSOC.List.001.00"
    client: ClientIdentifier = xml("ClientIdentifier")
    include_history: bool = xml("IncludeHistoryI", default=False)
    continuation: str | None = xml("ContinuationT", default=None)
    page_size: int | None = xml("PageSizeN", default=None)


@dataclass(kw_only=True)  # keyword-only so that the required period can follow the optional fields
class Associate:
    """``entity_type`` and ``identifier`` are given when the associate is itself in the register."""

    relationship: str = xml("RelationshipC")
    name: str = xml("NameT")
    entity_type: str | None = xml("EntityTypeC", default=None)
    identifier: ClientIdentifier | None = xml("ClientIdentifier", default=None)
    period: Period = xml("Period")


@dataclass
class ListResponse(Document):
    ROOT: ClassVar[str] = "CUASSOCListResponse"
    SERVICE_ACTION: ClassVar[str] = "CUASSOC.List.001.00"
    associates: list[Associate] = xml("Associate", default_factory=list)
    continuation: str | None = xml("ContinuationT", default=None)
