"""The stand-in ATO's CUDTL actions: a client's profile, viewed (the 2017 document and the older, smaller 2016
one) and updated.

Validate and Submit apply the same rules (``_check``); Validate changes nothing. The rules, ATO-like:

- The request states the entity type the agent takes the client to be; it must be the one held. An entity type
  cannot change: a business that restructures is a new entity with its own identifiers (DTL01).
- Individual details (name, dates of birth and death) are refused for other entities, and organisation details
  for individuals. A legal name applies to trusts, super funds and partnerships only; the superannuation fund
  indicator to super funds, self-managed (SMF) or large APRA funds (companies in the register) (DTL02).
- A person's name parts: a letter first, then letters, spaces, hyphens and apostrophes, at most 40 characters.
  Organisation and legal names: a letter or digit first, then letters, digits, spaces and common punctuation; the
  XSD already caps them at 200 (DTL03 characters, DTL04 length).
- Dates of birth and death are not in the future (DTL06); a date of death is not before the date of birth, the
  one given or the one held (DTL05).
- At least one detail to update (DTL07).
- Recording a date of death is applied, with a warning of what follows from it (DTL08).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ato_gateway.wire.documents import cudtl
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from ato_gateway.wire.events import EventItem

from .. import errors
from .base import Context, handles

PERSON_NAME_MAX = 40
_PERSON_NAME = re.compile(r"[A-Za-z][A-Za-z' -]*")
_ORGANISATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 &'(),.\-/!@$%*_=;:\"?+#]*")

# The update's fields by the entities they apply to: (attribute, element, entity types or None for every
# non-individual).
_INDIVIDUAL_FIELDS = (("person_name", "PersonNameDetails"), ("birth_date", "BirthD"), ("death_date", "DeathD"))
_ORGANISATION_FIELDS: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("organisation_name", "OrganisationNameT", None),
    ("legal_name", "LegalNameT", frozenset({"TRT", "SMF", "PTR"})),
    ("not_for_profit", "NotForProfitI", None),
    ("super_regulated", "SuperannuationFundRegulatedI", frozenset({"SMF", "COY"})),
)
# The register's columns an update can change, written back whole from the merged row.
_COLUMNS = (
    "family_name",
    "given_name",
    "other_given_name",
    "birth_date",
    "death_date",
    "organisation_name",
    "legal_name",
    "not_for_profit",
    "super_regulated",
)


def _client(ctx: Context, ident: ClientIdentifier) -> dict[str, Any]:
    taxpayer = ctx.find_taxpayer(tfn=ident.tfn, abn=ident.abn, wpn=ident.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.GEN.ID01")
    ctx.require_link(int(taxpayer["id"]))
    return taxpayer


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _profile(row: dict[str, Any]) -> cudtl.ClientProfile:
    """The 2017 profile of a register row: an individual's name and dates, or an organisation's names and
    indicators."""
    common: dict[str, Any] = {"entity_type": row["entity"], "abn": row["abn"], "wpn": row["wpn"]}
    if row["entity"] == "IND":
        return cudtl.ClientProfile(
            **common,
            person_name=PersonName(row["family_name"], row["given_name"], row["other_given_name"]),
            birth_date=_date(row["birth_date"]),
            death_date=_date(row["death_date"]),
        )
    return cudtl.ClientProfile(
        **common,
        organisation_name=row["organisation_name"],
        legal_name=row["legal_name"],
        not_for_profit=bool(row["not_for_profit"]),
        super_regulated=bool(row["super_regulated"]),
        tfn_quoted_for_super=bool(row["quoted_tfn_for_super"]),
    )


def _profile_2016(row: dict[str, Any]) -> cudtl.ClientProfile2016:
    """The 2016 profile: the 2017 one without the legal name and the superannuation indicators."""
    full = _profile(row)
    return cudtl.ClientProfile2016(
        entity_type=full.entity_type,
        abn=full.abn,
        wpn=full.wpn,
        person_name=full.person_name,
        birth_date=full.birth_date,
        death_date=full.death_date,
        organisation_name=full.organisation_name,
        not_for_profit=full.not_for_profit,
    )


@handles(cudtl.GetRequest.SERVICE_ACTION)
def get(ctx: Context, request: cudtl.GetRequest) -> cudtl.GetResponse:
    return cudtl.GetResponse(client=_profile(_client(ctx, request.client)))


@handles(cudtl.GetRequest2016.SERVICE_ACTION)
def get_2016(ctx: Context, request: cudtl.GetRequest2016) -> cudtl.GetResponse2016:
    return cudtl.GetResponse2016(client=_profile_2016(_client(ctx, request.client)))


# --- update ---


def _misplaced(entity: str, update: cudtl.ProfileUpdate) -> list[EventItem]:
    """DTL02 for each detail given that does not apply to the client's entity type."""
    refused = []
    for attribute, element in _INDIVIDUAL_FIELDS:
        if getattr(update, attribute) is not None and entity != "IND":
            refused.append(element)
    for attribute, element, entities in _ORGANISATION_FIELDS:
        applies = entity != "IND" and (entities is None or entity in entities)
        if getattr(update, attribute) is not None and not applies:
            refused.append(element)
    return [errors.item("CMN.ATO.CUDTL.DTL02", Field=field, EntityType=entity) for field in refused]


def _name_errors(update: cudtl.ProfileUpdate) -> list[EventItem]:
    found = []
    names: list[tuple[str, str | None, re.Pattern[str], int | None]] = []
    if update.person_name is not None:
        for tag, value in (
            ("FamilyNameT", update.person_name.family_name),
            ("GivenNameT", update.person_name.given_name),
            ("OtherGivenNameT", update.person_name.other_given_name),
        ):
            names.append((f"PersonNameDetails/{tag}", value, _PERSON_NAME, PERSON_NAME_MAX))
    names.append(("OrganisationNameT", update.organisation_name, _ORGANISATION_NAME, None))
    names.append(("LegalNameT", update.legal_name, _ORGANISATION_NAME, None))
    for field, value, pattern, maximum in names:
        if value is None:
            continue
        # Surrounding or doubled spaces count as characters the ATO does not accept, as in its own forms.
        if not pattern.fullmatch(value) or value != value.strip() or "  " in value:
            found.append(errors.item("CMN.ATO.CUDTL.DTL03", Field=field))
        elif maximum is not None and len(value) > maximum:
            found.append(errors.item("CMN.ATO.CUDTL.DTL04", Field=field, Maximum=maximum))
    return found


def _date_errors(ctx: Context, taxpayer: dict[str, Any], update: cudtl.ProfileUpdate) -> list[EventItem]:
    found = [
        errors.item("CMN.ATO.CUDTL.DTL06", Field=field)
        for field, value in (("BirthD", update.birth_date), ("DeathD", update.death_date))
        if value is not None and value > ctx.today
    ]
    birth = update.birth_date or _date(taxpayer["birth_date"])
    death = update.death_date or _date(taxpayer["death_date"])
    dates_given = update.birth_date is not None or update.death_date is not None
    if dates_given and birth is not None and death is not None and death < birth:
        found.append(errors.item("CMN.ATO.CUDTL.DTL05"))
    return found


def _merged(taxpayer: dict[str, Any], update: cudtl.ProfileUpdate) -> dict[str, Any]:
    """The register row as it is once the update is applied."""
    row = dict(taxpayer)
    if update.person_name is not None:
        name = update.person_name
        row.update(family_name=name.family_name, given_name=name.given_name, other_given_name=name.other_given_name)
    for attribute in ("birth_date", "death_date"):
        value = getattr(update, attribute)
        if value is not None:
            row[attribute] = value.isoformat()
    for attribute in ("organisation_name", "legal_name"):
        if getattr(update, attribute) is not None:
            row[attribute] = getattr(update, attribute)
    for attribute in ("not_for_profit", "super_regulated"):
        if getattr(update, attribute) is not None:
            row[attribute] = int(getattr(update, attribute))
    return row


def _check(ctx: Context, update: cudtl.ProfileUpdate) -> dict[str, Any]:
    """Every rule, for Validate and Submit alike: fail with all the errors found, warn, and return the row as it
    would be after the update."""
    taxpayer = _client(ctx, update.client)
    entity = taxpayer["entity"]
    if update.entity_type != entity:
        ctx.fail("CMN.ATO.CUDTL.DTL01", EntityType=entity)
    attributes = [a for a, _ in _INDIVIDUAL_FIELDS] + [a for a, _, _ in _ORGANISATION_FIELDS]
    if all(getattr(update, a) is None for a in attributes):
        ctx.fail("CMN.ATO.CUDTL.DTL07")
    # Misplaced details first and alone: checking the form of a detail the client cannot have says nothing useful.
    found = _misplaced(entity, update) or _name_errors(update) + _date_errors(ctx, taxpayer, update)
    if found:
        ctx.fail_all(found)
    if update.death_date is not None and update.death_date.isoformat() != taxpayer["death_date"]:
        ctx.warn("CMN.ATO.CUDTL.DTL08")
    return _merged(taxpayer, update)


@handles(cudtl.ValidateRequest.SERVICE_ACTION)
def validate(ctx: Context, request: cudtl.ValidateRequest) -> cudtl.ValidateResponse:
    return cudtl.ValidateResponse(client=_profile(_check(ctx, request)))


@handles(cudtl.SubmitRequest.SERVICE_ACTION)
def submit(ctx: Context, request: cudtl.SubmitRequest) -> cudtl.SubmitResponse:
    row = _check(ctx, request)
    assignments = ", ".join(f"{column} = ?" for column in _COLUMNS)
    ctx.db.execute(
        f"UPDATE reg_taxpayers SET {assignments} WHERE id = ?",  # noqa: S608 - column names are the constants above
        (*(row[column] for column in _COLUMNS), row["id"]),
    )
    return cudtl.SubmitResponse(client=_profile(row))
