"""Demographics: ask the ATO what it holds about a client (details, addresses, bank accounts, authorised contacts,
associates) and keep each answer as a dated snapshot, so a page can show it beside the register and say what
changed since the snapshot before.

``snapshot_ask`` records the snapshot and asks its question in one transaction; ``on_snapshot``, the handler of
the purpose, fills the snapshot's facts in the transaction that settles the question. A CUDTL 2017 Get the ATO
refuses is asked again in its 2016 version, as a new snapshot.

Addresses, bank accounts and authorised contacts are held by the ATO at client level and for each ATO account:
they are asked at every level, the client's and each account's the register holds, one snapshot a level."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from ato_gateway import api
from ato_gateway.api import Question, Reply, Subject
from ato_gateway.wire.documents import codec, cuaddr, cuassoc, cudtl, cufi
from ato_gateway.wire.documents.common import Account, Address, ClientIdentifier, Period, PersonName
from clients.models import AccountKind, Client, ClientAccount
from demographics.models import SNAPSHOT_MODELS, AccountLevelSnapshot, Service, Snapshot, level_words
from portal.audit import audit_record

if TYPE_CHECKING:
    from portal.models import User

PURPOSE = "demographics.snapshot"
SUBJECT_PREFIX = "demographics."
PAGE_SIZE = 500  # the ATO's largest page; a longer list is asked for page by page
# Refusals about the client or the practice's authority, which the 2016 version would refuse the same way.
_NOT_A_VERSION_PROBLEM = ("CMN.ATO.AUTH.", "CMN.ATO.GEN.ID")
USAGE_NAMES = {
    "RES": "Residential",
    "BUS": "Business",
    "POS": "Postal",
    "PHN": "Phone",
    "EML": "Email",
    "WEB": "Web",
    "CNT": "Authorised contact",
}
RELATIONSHIP_NAMES = {
    "DIR": "Director",
    "PUB": "Public officer",
    "TEE": "Trustee",
    "PTR": "Partner",
    "BEN": "Beneficiary",
    "SEC": "Secretary",
}


# The services the ATO holds for each of its accounts as well as for the client.
LEVELLED = (Service.ADDRESSES, Service.BANK, Service.CONTACTS)
ATO_ACCOUNTS = {AccountKind.INCOME_TAX: "ITX", AccountKind.ACTIVITY_STATEMENT: "AS", AccountKind.FBT: "FBT"}
Level = tuple[str, str]  # an ATO account as (kind, branch) in the ATO's codes; ("", "") the client level
CLIENT_LEVEL: Level = ("", "")


class CannotAsk(Exception):
    """The register holds no identifier the ATO knows the client by."""


def client_identifier(client: Client) -> ClientIdentifier:
    if client.tfn_last3:
        return ClientIdentifier.of(tfn=client.reveal_tfn())
    if client.abn:
        return ClientIdentifier.of(abn=client.abn)
    if client.wpn:
        return ClientIdentifier.of(wpn=client.wpn)
    raise CannotAsk("Record the client's TFN, ABN or WPN first: the ATO knows a client only by one of them.")


# --- the requests, one per service and level ---


def _request(service: str, ident: ClientIdentifier, level: Level = CLIENT_LEVEL) -> codec.Document:
    kind, branch = level
    account = Account(kind=kind, branch=branch or None) if kind else None
    if service == Service.DETAILS:
        return cudtl.GetRequest(client=ident)
    if service == Service.ADDRESSES:
        usages = [u for u in cuaddr.USAGES if u != "CNT"]
        return cuaddr.ListRequest(
            client=ident, account=account, include_history=True, usages=usages, page_size=PAGE_SIZE
        )
    if service == Service.CONTACTS:
        return cuaddr.ListRequest(
            client=ident, account=account, include_history=True, usages=["CNT"], page_size=PAGE_SIZE
        )
    if service == Service.BANK:
        return cufi.ListRequest(client=ident, account=account, include_history=True, page_size=PAGE_SIZE)
    if service == Service.ASSOCIATES:
        return cuassoc.ListRequest(client=ident, include_history=True, page_size=PAGE_SIZE)
    raise ValueError(f"no such service {service!r}")


def request_for(service: str, client: Client, level: Level = CLIENT_LEVEL) -> codec.Document:
    return _request(service, client_identifier(client), level)


def levels_of(client_ids: Iterable[int]) -> dict[int, list[Level]]:
    """Each client's levels: the client's own, then each ATO account the register holds, in one query for them all."""
    ids = list(client_ids)
    found: dict[int, list[Level]] = {pk: [CLIENT_LEVEL] for pk in ids}
    accounts = ClientAccount.objects.filter(client_id__in=ids).order_by("client_id", "kind", "branch")
    for client_id, kind, branch in accounts.values_list("client_id", "kind", "branch"):
        found[client_id].append((ATO_ACCOUNTS[AccountKind(kind)], branch))
    return found


def snapshot_at(service: str, client: Client, question: Question, level: Level) -> Snapshot:
    """A new snapshot (not saved) of the service at the level, which ``question`` asks about."""
    model = SNAPSHOT_MODELS[service]
    if issubclass(model, AccountLevelSnapshot):
        return model(client=client, question=question, account_kind=level[0], account_branch=level[1])
    return model(client=client, question=question)


def subject_for(service: str, client: Client) -> Subject:
    return _subject(service, client)


def _subject(service: str, client: Client) -> Subject:
    return Subject(SUBJECT_PREFIX + service, str(client.pk), client.display_name)


def _ask(service: str, document: codec.Document, *, user: User | None, client: Client) -> Snapshot:
    question = api.ask(document, practice=client.practice, by=user, purpose=PURPOSE, about=_subject(service, client))
    return SNAPSHOT_MODELS[service].objects.create(client=client, question=question)


def snapshot_ask(*, user: User, client: Client, service: str) -> Snapshot:
    """Ask the ATO again what it holds for one service, at every level it holds it at; each snapshot is filled
    when its answer comes. Returns the client level's."""
    ident = client_identifier(client)
    levels = levels_of([client.pk])[client.pk] if service in LEVELLED else [CLIENT_LEVEL]
    about = _subject(service, client)
    with transaction.atomic():
        questions = api.ask_many(
            [(_request(service, ident, level), about) for level in levels],
            practice=client.practice,
            by=user,
            purpose=PURPOSE,
        )
        model = SNAPSHOT_MODELS[service]
        snapshots = model.objects.bulk_create(
            [snapshot_at(service, client, q, level) for q, level in zip(questions, levels, strict=True)]
        )
        audit_record("demographics.snapshot_ask", actor=user, target=client, details={"service": service})
    return snapshots[0]


# --- the answers, as facts ---


def _period(period: Period) -> str:
    start = period.start.isoformat()
    return f"from {start} to {period.end.isoformat()}" if period.end else f"from {start}, current"


def _address(address: Address | None) -> str:
    if address is None:
        return ""
    parts = [address.line1, address.line2, address.locality, address.state, address.postcode]
    text = ", ".join(p for p in parts if p)
    return text if address.country.lower() == "au" else f"{text} ({address.country.upper()})"


def _person(name: PersonName | None) -> str:
    if name is None:
        return ""
    given = " ".join(n for n in (name.given_name, name.other_given_name) if n)
    return f"{name.family_name.upper()}, {given}" if given else name.family_name.upper()


def _when(value: date | None) -> str:
    return value.isoformat() if value else ""


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


def _details_facts(document: Any) -> list[dict[str, Any]]:
    profile = document.client
    rows = [
        ("Entity type", profile.entity_type),
        ("ABN", profile.abn or ""),
        ("WPN", profile.wpn or ""),
        ("Name", _person(profile.person_name)),
        ("Date of birth", _when(profile.birth_date)),
        ("Date of death", _when(profile.death_date)),
        ("Organisation name", profile.organisation_name or ""),
        ("Legal name", getattr(profile, "legal_name", None) or ""),
        ("Not for profit", _yes_no(profile.not_for_profit)),
        ("Regulated super fund", _yes_no(getattr(profile, "super_regulated", None))),
    ]
    return [{"field": f, "value": v, "summary": f"{f}: {v}"} for f, v in rows if v]


def _listed_fact(listed: Any, value: str, **more: str) -> dict[str, Any]:
    """One address (or contact) the ATO lists, as a snapshot keeps it: its usage, value and period."""
    usage = USAGE_NAMES.get(listed.usage, listed.usage)
    period = _period(listed.period)
    return {
        "usage": listed.usage,
        "usage_name": usage,
        **more,
        "value": value,
        "period": period,
        "current": listed.period.end is None,
        "summary": f"{usage}: {value} ({period})",
    }


def _address_facts(document: Any) -> list[dict[str, Any]]:
    return [
        _listed_fact(listed, _address(listed.address) or listed.phone or listed.electronic or "")
        for listed in document.addresses
    ]


def _contact_facts(document: Any) -> list[dict[str, Any]]:
    """The authorised contacts (CNT), each with who they are when the ATO says; with neither name nor position, the
    same words an address of the usage has."""
    facts = []
    for listed in document.addresses:
        who = _person(listed.contact_name)
        if listed.position:
            who = f"{who} ({listed.position})" if who else listed.position
        reach = [_address(listed.address), listed.phone or "", listed.electronic or ""]
        facts.append(_listed_fact(listed, ", ".join(p for p in (who, *reach) if p), name=who))
    return facts


def masked_account(number: str) -> str:
    return "…" + number[-3:] if len(number) > 3 else number


def _bank_facts(document: Any) -> list[dict[str, Any]]:
    return [
        {
            "bsb": a.bsb,
            "number": a.number,
            "name": a.name,
            "period": _period(a.period),
            "current": a.period.end is None,
            "summary": f"BSB {a.bsb[:3]}-{a.bsb[3:]} account {masked_account(a.number)} {a.name} ({_period(a.period)})",
        }
        for a in document.accounts
    ]


def _associate_facts(document: Any) -> list[dict[str, Any]]:
    return [
        {
            "relationship": RELATIONSHIP_NAMES.get(a.relationship, a.relationship),
            "name": a.name,
            "period": _period(a.period),
            "current": a.period.end is None,
            "summary": f"{RELATIONSHIP_NAMES.get(a.relationship, a.relationship)}: {a.name} ({_period(a.period)})",
        }
        for a in document.associates
    ]


FACTS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    Service.DETAILS: _details_facts,
    Service.ADDRESSES: _address_facts,
    Service.CONTACTS: _contact_facts,
    Service.BANK: _bank_facts,
    Service.ASSOCIATES: _associate_facts,
}


def service_of(question: Question) -> str:
    return question.subject_type.removeprefix(SUBJECT_PREFIX)


def _at_level(facts: list[dict[str, Any]], snapshot: Snapshot) -> list[dict[str, Any]]:
    """An account's facts say which account they are of, in words and in their summary (what an alert and the
    changes list show); the client level's read as they always have, so older snapshots still compare."""
    if not isinstance(snapshot, AccountLevelSnapshot) or not snapshot.account_kind:
        return facts
    level = level_words(snapshot.account_kind, snapshot.account_branch)
    return [{**f, "level": level, "summary": f"{level}: {f['summary']}"} for f in facts]


def snapshot_facts(service: str, snapshot: Snapshot, document: Any) -> list[dict[str, Any]]:
    """The snapshot's facts with an answer's added (a page of a list after the pages before it)."""
    return (snapshot.facts or []) + _at_level(FACTS[service](document), snapshot)


def on_snapshot(question: Question, reply: Reply[Any]) -> None:
    """The handler of PURPOSE: record the answer's facts on its snapshot. The gateway calls it once per change of
    the question's state; an answer applied is never applied again, so this only fills an empty snapshot."""
    service = service_of(question)
    model = SNAPSHOT_MODELS[service]
    snapshot = model.objects.select_related("client").filter(question=question).first()
    if snapshot is None:
        return
    if reply.answered and reply.document is not None:
        if snapshot.answered_at is not None:
            return
        facts = snapshot_facts(service, snapshot, reply.document)
        if continuation := getattr(reply.document, "continuation", None):
            # A list longer than a page: the snapshot collects every page, and is answered (and compared) with
            # the last. It follows the newest page's question, so a page delivered again finds no snapshot.
            request = replace(api.question_request(question), continuation=continuation)  # type: ignore[type-var]
            about = _subject(service, snapshot.client)
            snapshot.question = api.ask(
                request, practice=snapshot.client.practice, by=question.asked_by, purpose=PURPOSE, about=about
            )
            snapshot.facts = facts
            snapshot.save(update_fields=["question", "facts"])
            return
        snapshot.answered_at, snapshot.facts = timezone.now(), facts
        snapshot.save(update_fields=["answered_at", "facts"])
        from demographics.drift import drift_check  # the watch reads these services: imported when used

        drift_check(snapshot, service)
    elif (
        question.service_action == cudtl.GetRequest.SERVICE_ACTION
        and reply.errors
        and not any(i.code.startswith(_NOT_A_VERSION_PROBLEM) for i in reply.errors)
    ):
        # The 2017 Get refused for the version's sake (not the client's): the 2016 one answers with less.
        request = api.question_request(question)
        assert isinstance(request, cudtl.GetRequest)
        _ask(service, cudtl.GetRequest2016(client=request.client), user=question.asked_by, client=snapshot.client)


# --- what the page shows ---


@dataclass
class Changes:
    added: list[str]
    removed: list[str]

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed)


def snapshot_changes(current: Snapshot, previous: Snapshot | None) -> Changes | None:
    """What the ATO holds now that it did not at the snapshot before, and what it no longer holds."""
    if previous is None or current.facts is None:
        return None
    before, now = previous.fact_keys(), current.fact_keys()
    order = [str(f["summary"]) for f in current.facts]
    gone = [str(f["summary"]) for f in previous.facts or []]
    return Changes(added=[s for s in order if s not in before], removed=[s for s in gone if s not in now])


@dataclass
class Compared:
    field: str
    register: str
    ato: str

    @property
    def differs(self) -> bool:
        return self.register.casefold() != self.ato.casefold()


def register_comparison(client: Client, facts: Iterable[dict[str, Any]] | None) -> list[Compared]:
    """The register's details beside the ATO's, field by field, for the Details section."""
    held = {str(f["field"]): str(f["value"]) for f in facts or []}
    rows: list[tuple[str, str]]
    if client.is_individual:
        given = client.given_names.strip()
        name = f"{client.family_name.upper()}, {given}" if given else client.family_name.upper()
        born = client.date_of_birth.isoformat() if client.date_of_birth else ""
        rows = [("Name", name), ("Date of birth", born)]
    else:
        rows = [("Organisation name", client.organisation_name)]
    rows.append(("ABN", client.abn))
    return [Compared(field, value, held.get(field, "")) for field, value in rows]
