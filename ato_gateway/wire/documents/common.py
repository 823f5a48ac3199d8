"""Parts shared by every service's documents (``schemas/common.xsd``, included into each service's namespace)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .codec import xml


@dataclass
class ClientIdentifier:
    """Exactly one of TFN, ABN or WPN (the XSD's choice enforces it)."""

    tfn: str | None = xml("TaxFileNumberId", default=None)
    abn: str | None = xml("AustralianBusinessNumberId", default=None)
    wpn: str | None = xml("WithholdingPayerNumberId", default=None)

    @classmethod
    def of(cls, *, tfn: str | None = None, abn: str | None = None, wpn: str | None = None) -> ClientIdentifier:
        given = [v for v in (tfn, abn, wpn) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of tfn, abn or wpn")
        return cls(tfn=tfn or None, abn=abn or None, wpn=wpn or None)


@dataclass
class Account:
    """An ATO account of the client: ITX, AS (with the branch of the client's ABN) or FBT."""

    kind: str = xml("AccountTypeC")
    branch: str | None = xml("BranchN", default=None)


@dataclass
class PersonName:
    family_name: str = xml("FamilyNameT")
    given_name: str | None = xml("GivenNameT", default=None)
    other_given_name: str | None = xml("OtherGivenNameT", default=None)


@dataclass
class Address:
    line1: str = xml("Line1T")
    line2: str | None = xml("Line2T", default=None)
    locality: str = xml("LocalityNameT", default="")
    state: str | None = xml("StateOrTerritoryC", default=None)
    postcode: str | None = xml("PostcodeT", default=None)
    country: str = xml("CountryC", default="au")


@dataclass
class Period:
    start: date = xml("StartD")
    end: date | None = xml("EndD", default=None)
