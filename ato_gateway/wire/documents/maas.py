"""MAAS documents (schemas/maas.xsd): a super fund's member account transactions, pushed in bulk, and the
per-transaction results, pulled.

The ATO publishes the service (SPRMBRINFO.0001 2018) and the attributes a member account carries, but not its
message structures (they come in the service's package from the ATO): every element name here is ours, in the
ATO's style."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from .codec import Document, xml
from .common import Address, PersonName


@dataclass
class AccountEvent:
    """What happened to the account, and when: OPENED, CHANGED (the member's details or the account's
    attributes), CLOSED or REOPENED (a closed account opened again; it goes with status OPEN). The events are the
    ATO's (a new account, a change, closed, reopened); the codes are ours."""

    kind: str = xml("EventTypeC")
    on: date = xml("EventD")


@dataclass
class RecordDelimiter:
    """Where one record of a bulk message begins: bulk and batch messages carry their records in one attachment,
    separated by record delimiters (reported by another implementation; the element names are ours). The
    record's position in the message, from 1, and the name of the document it is."""

    document_id: int = xml("DocumentId")
    document_name: str = xml("DocumentName", default="SPRMBRINFO.Transaction")


@dataclass(kw_only=True)
class AccountAttributes:
    """The attributes the ATO names for MAAS (element names ours). The two codes are plain strings in the XSD so
    that an unknown value fails its own transaction, not the batch: ``phase`` ACCUMULATION or RETIREMENT,
    ``lost_status`` NOT_LOST, UNCONTACTABLE or INACTIVE (the values are ours, after the ATO's lost member
    kinds)."""

    phase: str = xml("AccountPhaseC")  # ACCUMULATION, RETIREMENT
    contributions_accepted: bool = xml("ContributionsAcceptedI")
    inward_rollovers_accepted: bool = xml("InwardRolloversAcceptedI")
    outward_rollovers_accepted: bool = xml("MemberOutwardRolloversAcceptedI")
    government_rollovers_accepted: bool = xml("GovernmentRolloversAcceptedI")
    lost_status: str = xml("LostStatusC")  # NOT_LOST, UNCONTACTABLE, INACTIVE
    defined_benefit: bool = xml("DefinedBenefitInterestI")
    insurance: bool = xml("InsuranceI")
    grandfathered: bool = xml("GrandfatheringI")
    innovative_income_stream: bool = xml("InnovativeIncomeStreamProductI")


@dataclass(kw_only=True)
class MemberTransaction:
    """One member account as the fund reports it. The TFN is optional (a member need not quote one); the member
    number is optional in the document only so that a missing one fails its own transaction, not the batch. Its
    record delimiter is set by the SubmitRequest that carries it. The member's address and the account's
    attributes are optional in the document (a transaction without them still validates) so that a sender may
    report an event alone; the stand-in keeps the last attributes reported."""

    delimiter: RecordDelimiter | None = xml("RecordDelimiter", default=None)
    transaction_id: str = xml("TransactionId")
    usi: str = xml("UniqueSuperannuationIdentifierId")
    member_id: str | None = xml("MemberId", default=None)
    tfn: str | None = xml("TaxFileNumberId", default=None)
    name: PersonName = xml("PersonNameDetails")
    birth_date: date = xml("BirthD")
    address: Address | None = xml("AddressDetails", default=None)
    status: str = xml("AccountStatusC")  # OPEN, CLOSED
    event: AccountEvent = xml("AccountEvent")
    attributes: AccountAttributes | None = xml("AccountAttributes", default=None)


@dataclass
class SubmitRequest(Document):
    ROOT: ClassVar[str] = "SPRMBRINFO"
    SERVICE_ACTION: ClassVar[str] = "MAAS.Submit.001.00"
    transactions: list[MemberTransaction] = xml("Transaction", default_factory=list)

    def __post_init__(self) -> None:
        # Each record is delimited by its position: one attachment holds them all.
        for position, transaction in enumerate(self.transactions, start=1):
            if transaction.delimiter is None or transaction.delimiter.document_id != position:
                transaction.delimiter = RecordDelimiter(position)


@dataclass
class Parameter:
    name: str = xml("NameT")
    value: str = xml("ValueT")


@dataclass
class ResultItem:
    """An event item about one transaction (code, severity, text and parameters, as in the Event document)."""

    code: str = xml("CodeT")
    severity: str = xml("SeverityC")
    text: str | None = xml("DescriptionT", default=None)
    parameters: list[Parameter] = xml("Parameter", default_factory=list)


@dataclass
class TransactionResult:
    """The outcome of one transaction. ``tfn_validation`` is set when the transaction was processed: MATCHED,
    CORRECTED (the TFN given was wrong), PROVIDED (none was given; the member's TFN is returned) or UNMATCHED;
    ``corrected_tfn`` is the TFN to record for CORRECTED and PROVIDED."""

    transaction_id: str = xml("TransactionId")
    processed: bool = xml("ProcessedI")
    tfn_validation: str | None = xml("TaxFileNumberValidationC", default=None)
    corrected_tfn: str | None = xml("CorrectedTaxFileNumberId", default=None)
    items: list[ResultItem] = xml("EventItem", default_factory=list)


@dataclass
class SubmitResponse(Document):
    """One result per transaction, in the order sent (read with ``codec.stream(..., "results")`` for a large
    batch)."""

    ROOT: ClassVar[str] = "SPRMBRINFOResponse"
    SERVICE_ACTION: ClassVar[str] = "MAAS.Submit.001.00"
    results: list[TransactionResult] = xml("TransactionResult", default_factory=list)


@dataclass
class GetRequest(Document):
    """The "Get or Provision of Details" interaction: one member account of one of the sender's funds."""

    ROOT: ClassVar[str] = "SPRMBRINFOGetRequest"
    SERVICE_ACTION: ClassVar[str] = "MAAS.Get.001.00"
    usi: str = xml("UniqueSuperannuationIdentifierId")
    member_id: str = xml("MemberId")


@dataclass(kw_only=True)
class GetResponse(Document):
    """The account as the ATO holds it from the transactions it processed: its status and dates, the last event
    processed, the last attributes reported (None when none were) and the last TFN validation outcome (MATCHED,
    CORRECTED, PROVIDED or UNMATCHED, as in a TransactionResult)."""

    ROOT: ClassVar[str] = "SPRMBRINFOGetResponse"
    SERVICE_ACTION: ClassVar[str] = "MAAS.Get.001.00"
    usi: str = xml("UniqueSuperannuationIdentifierId")
    member_id: str = xml("MemberId")
    status: str = xml("AccountStatusC")  # OPEN, CLOSED
    opened: date | None = xml("AccountOpenedD", default=None)
    closed: date | None = xml("AccountClosedD", default=None)
    last_event: AccountEvent = xml("AccountEvent")
    attributes: AccountAttributes | None = xml("AccountAttributes", default=None)
    tfn_validation: str = xml("TaxFileNumberValidationC")
