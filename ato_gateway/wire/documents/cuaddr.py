"""CUADDR documents (schemas/cuaddr.xsd): a client's addresses at client or account level, current and past."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import Account, Address, ClientIdentifier, Period, PersonName

# Usage codes: RES and BUS are geographic, POS postal, PHN a telephone number, EML and WEB electronic, CNT the
# authorised contact's address (any of the three kinds).
GEOGRAPHIC_USAGES = ("RES", "BUS", "POS")
USAGES = ("RES", "BUS", "POS", "PHN", "EML", "WEB", "CNT")
MAX_ACCOUNTS = 25  # per request, as the ATO's own portal allows; the gateway's callers batch beyond it


@dataclass
class ListRequest(Document):
    """One page of a client's addresses: client level without ``account``, else that account's."""

    ROOT: ClassVar[str] = "CUADDRListRequest"
    SERVICE_ACTION: ClassVar[str] = "CUADDR.List.003.00"
    client: ClientIdentifier = xml("ClientIdentifier")
    account: Account | None = xml("Account", default=None)
    include_history: bool = xml("IncludeHistoryI", default=False)
    usages: list[str] = xml("UsageC", default_factory=list)
    continuation: str | None = xml("ContinuationT", default=None)
    page_size: int | None = xml("PageSizeN", default=None)


@dataclass(kw_only=True)  # keyword-only so that the required period can follow the optional fields
class ListedAddress:
    """One address; of the CNT usage, the authorised contact CUAUTHCNTCT recorded, with their name and position."""

    usage: str = xml("UsageC")
    contact_name: PersonName | None = xml("PersonNameDetails", default=None)
    position: str | None = xml("PositionT", default=None)
    address: Address | None = xml("AddressDetails", default=None)
    phone: str | None = xml("TelephoneNumberT", default=None)
    electronic: str | None = xml("ElectronicAddressT", default=None)
    period: Period = xml("Period")


@dataclass
class ListResponse(Document):
    ROOT: ClassVar[str] = "CUADDRListResponse"
    SERVICE_ACTION: ClassVar[str] = "CUADDR.List.003.00"
    addresses: list[ListedAddress] = xml("Address", default_factory=list)
    continuation: str | None = xml("ContinuationT", default=None)


@dataclass
class AddressUpdate:
    """The new current address of one usage: ``address`` for RES/BUS/POS, ``phone`` for PHN, ``electronic`` for
    EML/WEB; never CNT, the authorised contact, which CUAUTHCNTCT changes. ``start`` defaults to the ATO's today."""

    usage: str = xml("UsageC")
    address: Address | None = xml("AddressDetails", default=None)
    phone: str | None = xml("TelephoneNumberT", default=None)
    electronic: str | None = xml("ElectronicAddressT", default=None)
    start: date | None = xml("StartD", default=None)


@dataclass
class UpdateRequest:
    """Validate and Submit carry the same request: one client, at client level (no accounts) or for each of up to
    ``MAX_ACCOUNTS`` accounts."""

    client: ClientIdentifier = xml("ClientIdentifier")
    accounts: list[Account] = xml("Account", default_factory=list)
    addresses: list[AddressUpdate] = xml("Address", default_factory=list)

    def problems(self) -> list[str]:
        if len(self.accounts) > MAX_ACCOUNTS:
            # The ATO refuses the whole message: batch with ``account_batches``.
            return [f"{len(self.accounts)} accounts in one request: at most {MAX_ACCOUNTS}"]
        return []


@dataclass(kw_only=True)
class AddressResult:
    """What happened (or, from Validate, would happen) to one usage at one level; ``period`` is the resulting
    current address's."""

    account: Account | None = xml("Account", default=None)
    usage: str = xml("UsageC")
    action: str = xml("ActionC")
    period: Period = xml("Period")


@dataclass
class UpdateResponse:
    results: list[AddressResult] = xml("Result", default_factory=list)


@dataclass
class ValidateRequest(UpdateRequest, Document):
    ROOT: ClassVar[str] = "CUADDRValidateRequest"
    SERVICE_ACTION: ClassVar[str] = "CUADDR.Validate.003.00"


@dataclass
class ValidateResponse(UpdateResponse, Document):
    ROOT: ClassVar[str] = "CUADDRValidateResponse"
    SERVICE_ACTION: ClassVar[str] = "CUADDR.Validate.003.00"


@dataclass
class SubmitRequest(UpdateRequest, Document):
    ROOT: ClassVar[str] = "CUADDRSubmitRequest"
    SERVICE_ACTION: ClassVar[str] = "CUADDR.Submit.003.00"


@dataclass
class SubmitResponse(UpdateResponse, Document):
    ROOT: ClassVar[str] = "CUADDRSubmitResponse"
    SERVICE_ACTION: ClassVar[str] = "CUADDR.Submit.003.00"


def account_batches(accounts: Sequence[Account]) -> list[list[Account]]:
    """The accounts in groups the ATO accepts in one Submit or Validate (``MAX_ACCOUNTS``), in their order, so the
    caller never meets the ATO's limit; no accounts is one group at client level (one message, not none at all).
    Each message is applied on its own: validate every group first, as one can fail while another succeeds."""
    return [list(accounts[i : i + MAX_ACCOUNTS]) for i in range(0, len(accounts), MAX_ACCOUNTS)] or [[]]
