"""CUFI documents (schemas/cufi.xsd): a client's financial institution (bank) accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import Account, ClientIdentifier, Period


@dataclass
class FinancialInstitutionAccount:
    """Bank details as an agent gives them: BSB (six digits, no dash), account number and account name."""

    bsb: str = xml("FinancialInstitutionAccountBankStateBranchN")
    number: str = xml("FinancialInstitutionAccountFinancialInstitutionAccountN")
    name: str = xml("FinancialInstitutionAccountNameT")


@dataclass
class FinancialInstitutionAccountRecord:
    """Bank details the ATO holds, with the period they were (or are) the ones in use."""

    bsb: str = xml("FinancialInstitutionAccountBankStateBranchN")
    number: str = xml("FinancialInstitutionAccountFinancialInstitutionAccountN")
    name: str = xml("FinancialInstitutionAccountNameT")
    period: Period = xml("Period")


@dataclass
class ListRequest(Document):
    """Without ``account``, the client-level bank accounts; with it, those of that ATO account. Current ones only
    unless ``include_history``."""

    ROOT: ClassVar[str] = "CUFIListRequest"
    SERVICE_ACTION: ClassVar[str] = "CUFI.List.003.00"
    client: ClientIdentifier = xml("ClientIdentifier")
    account: Account | None = xml("Account", default=None)
    include_history: bool | None = xml("IncludeHistoryI", default=None)
    continuation: str | None = xml("ContinuationT", default=None)
    page_size: int | None = xml("PageSizeN", default=None)


@dataclass
class ListResponse(Document):
    ROOT: ClassVar[str] = "CUFIListResponse"
    SERVICE_ACTION: ClassVar[str] = "CUFI.List.003.00"
    accounts: list[FinancialInstitutionAccountRecord] = xml("FinancialInstitutionAccount", default_factory=list)
    continuation: str | None = xml("ContinuationT", default=None)


@dataclass(kw_only=True)  # keyword-only: the required bank account follows the optional ATO account, as in the XSD
class Replacement:
    """What Validate and Submit carry: the account refunds are paid into from today, at client level or (with
    ``account``) for one ATO account."""

    client: ClientIdentifier = xml("ClientIdentifier")
    account: Account | None = xml("Account", default=None)
    bank_account: FinancialInstitutionAccount = xml("FinancialInstitutionAccount")


@dataclass
class Replaced:
    """The new account with its period, and the day the one it replaced ended (None when there was none)."""

    bank_account: FinancialInstitutionAccountRecord = xml("FinancialInstitutionAccount")
    previous_end_date: date | None = xml("PreviousAccountEndD", default=None)


@dataclass
class ValidateRequest(Replacement, Document):
    ROOT: ClassVar[str] = "CUFIValidateRequest"
    SERVICE_ACTION: ClassVar[str] = "CUFI.Validate.003.00"


@dataclass
class ValidateResponse(Replaced, Document):
    """As it would be: nothing is changed."""

    ROOT: ClassVar[str] = "CUFIValidateResponse"
    SERVICE_ACTION: ClassVar[str] = "CUFI.Validate.003.00"


@dataclass
class SubmitRequest(Replacement, Document):
    ROOT: ClassVar[str] = "CUFISubmitRequest"
    SERVICE_ACTION: ClassVar[str] = "CUFI.Submit.003.00"


@dataclass
class SubmitResponse(Replaced, Document):
    ROOT: ClassVar[str] = "CUFISubmitResponse"
    SERVICE_ACTION: ClassVar[str] = "CUFI.Submit.003.00"
