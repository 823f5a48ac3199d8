"""The stand-in ATO's CUADDR actions: list a client's addresses (current, and past on request), and validate and
submit new current addresses at client level or for up to 25 accounts in one request.

Validate and Submit run the same plan (``_plan``): every check, and what would happen to each usage at each
level. Validate returns that; Submit applies it. An address replaced ends the day before the new one starts, so
the history stays a chain of periods.

The authorised contact (usage CNT) is held once, where CUAUTHCNTCT records it (``reg_contacts``): List reads it
from there, after the addresses, and Validate and Submit refuse it (ADR07), so what CUAUTHCNTCT accepted is what
the next List shows and no second copy can disagree with it.

The helpers for clients, accounts, telephone numbers and email addresses are shared with CUAUTHCNTCT, which
belongs to the same service suite (CUDEMOGR).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ato_gateway.wire.documents import cuaddr
from ato_gateway.wire.documents.common import Account, Address, ClientIdentifier, Period, PersonName
from ato_gateway.wire.events import EventItem

from .. import errors, register
from . import paging
from .base import Context, handles

# --- shared with CUAUTHCNTCT ---


def rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Rows as dicts, whatever the connection's row factory."""
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def client(ctx: Context, ident: ClientIdentifier) -> dict[str, Any]:
    taxpayer = ctx.find_taxpayer(tfn=ident.tfn, abn=ident.abn, wpn=ident.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.GEN.ID01")
    return taxpayer


def level_name(account: Account | None) -> str:
    if account is None:
        return "client level"
    return f"account {account.kind} {account.branch}" if account.branch else f"account {account.kind}"


Level = tuple[int | None, Account | None]  # the account's id and as requested; (None, None) at client level


def levels(ctx: Context, taxpayer_id: int, accounts: list[Account], missing_code: str, field: str) -> list[Level]:
    """The accounts' ids (client level when there are none), each covered by a current link of the agent.

    An unknown account is reported (``missing_code``) only to an agent with some current link to the client;
    any other agent gets CMN.ATO.AUTH.002 and so learns nothing about the client's accounts."""
    if not accounts:
        ctx.require_link(taxpayer_id)
        return [(None, None)]
    found: list[Level] = []
    missing: list[EventItem] = []
    for number, account in enumerate(accounts, 1):
        row = ctx.db.execute(
            "SELECT id FROM reg_accounts WHERE taxpayer_id = ? AND kind = ? AND branch IS ?",
            (taxpayer_id, account.kind, account.branch),
        ).fetchone()
        name = f"{field}[{number}]" if len(accounts) > 1 else field
        if row is None:
            missing.append(errors.item(missing_code, Field=name, Account=level_name(account)))
        elif all(int(row[0]) != known for known, _ in found):
            found.append((int(row[0]), account))
    if missing:
        if not register.current_links(ctx.db, ctx.agent_id, taxpayer_id):
            ctx.require_link(taxpayer_id)
        ctx.fail_all(missing)
    for account_id, _account in found:
        ctx.require_link(taxpayer_id, account_id)
    return found


def phone_ok(text: str) -> bool:
    return text.isascii() and text.isdigit() and 6 <= len(text) <= 15


MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A dot-atom local part and a domain of at least two labels ending in a letters-only top-level label: what mail to
# a client can actually be delivered to, without quoted local parts or address literals.
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")


def email_ok(address: str) -> bool:
    """The one rule for an email address, wherever one is given (CUADDR, CUAUTHCNTCT, COMMPREF)."""
    local = address.rpartition("@")[0]
    return len(address) <= MAX_EMAIL_LENGTH and len(local) <= 64 and _EMAIL.fullmatch(address) is not None


def given(value: str | None) -> bool:
    return value is not None and bool(value.strip())


def same_text(a: object, b: object) -> bool:
    """Stored and requested values compare without case or spacing differences (NULL and blank are alike)."""

    def norm(value: object) -> str:
        return " ".join(str(value).split()).casefold() if value is not None else ""

    return norm(a) == norm(b)


# --- the address checks ---

_CONTENT = ("line1", "line2", "locality", "state", "postcode", "country", "phone", "email")
# What each usage is given as. CNT is not given at all: the authorised contact is CUAUTHCNTCT's.
_SHAPES: dict[str, tuple[str, str]] = {
    "RES": ("address", "AddressDetails only"),
    "BUS": ("address", "AddressDetails only"),
    "POS": ("address", "AddressDetails only"),
    "PHN": ("phone", "TelephoneNumberT only"),
    "EML": ("electronic", "ElectronicAddressT only"),
    "WEB": ("electronic", "ElectronicAddressT only"),
}


def _kinds(update: cuaddr.AddressUpdate) -> set[str]:
    present = {"address"} if update.address is not None else set()
    return present | {k for k in ("phone", "electronic") if given(getattr(update, k))}


def _check_place(field: str, address: Address) -> list[EventItem]:
    if address.country != "au":
        return []  # the state and postcode codes are Australia's; a foreign address is not checked against them
    out = [
        errors.item("CMN.ATO.CUADDR.ADR02", Field=f"{field}/{element}")
        for element, value in (("StateOrTerritoryC", address.state), ("PostcodeT", address.postcode))
        if not value
    ]
    if address.state and address.postcode and not register.valid_postcode(address.state, address.postcode):
        item = errors.item(
            "CMN.ATO.CUADDR.ADR01", Field=f"{field}/PostcodeT", Postcode=address.postcode, State=address.state
        )
        out.append(item)
    return out


def _check_one(ctx: Context, field: str, update: cuaddr.AddressUpdate) -> list[EventItem]:
    if update.usage == "CNT":
        return [errors.item("CMN.ATO.CUADDR.ADR07", Field=f"{field}/UsageC")]
    out = []
    kind, expected = _SHAPES[update.usage]
    if _kinds(update) != {kind}:
        out.append(errors.item("CMN.ATO.CUADDR.ADR05", Field=field, Usage=update.usage, Expected=expected))
    if update.address is not None:
        out += _check_place(f"{field}/AddressDetails", update.address)
    if given(update.phone) and not phone_ok(str(update.phone)):
        out.append(errors.item("CMN.ATO.CUADDR.ADR03", Field=f"{field}/TelephoneNumberT"))
    if update.usage == "EML" and given(update.electronic) and not email_ok(str(update.electronic)):
        out.append(errors.item("CMN.ATO.CUADDR.ADR04", Field=f"{field}/ElectronicAddressT"))
    if update.start is not None and update.start > ctx.today:
        out.append(errors.item("CMN.ATO.CUADDR.DT02", Field=f"{field}/StartD", StartD=update.start.isoformat()))
    return out


def _check(ctx: Context, updates: list[cuaddr.AddressUpdate]) -> list[EventItem]:
    """Every problem of the requested addresses themselves, each naming its field."""
    out: list[EventItem] = []
    seen: set[str] = set()
    for number, update in enumerate(updates, 1):
        field = f"Address[{number}]"
        if update.usage in seen:
            out.append(errors.item("CMN.ATO.CUADDR.ADR06", Field=f"{field}/UsageC", Usage=update.usage))
        seen.add(update.usage)
        out += _check_one(ctx, field, update)
    return out


# --- the plan Validate returns and Submit applies ---


@dataclass
class _Change:
    account_id: int | None
    account: Account | None
    update: cuaddr.AddressUpdate
    field: str  # the update's element in the request: Address[n]
    action: str  # ADD, REPLACE, CORRECT, NONE
    period: Period  # the resulting current address's
    corrected: int | None = None  # the current row changed in place (it starts on the new start date)
    ended: tuple[int, ...] = ()  # the current rows that end the day before the new start


def _content(update: cuaddr.AddressUpdate) -> tuple[str | None, ...]:
    a = update.address
    place = (a.line1, a.line2, a.locality, a.state, a.postcode, a.country) if a else (None,) * 6
    return (*place, update.phone, update.electronic)


def _change(
    ctx: Context, taxpayer_id: int, level: Level, update: cuaddr.AddressUpdate, field: str
) -> _Change | EventItem:
    account_id, account = level
    start = update.start or ctx.today
    current = rows(
        ctx.db.execute(
            "SELECT * FROM reg_addresses WHERE taxpayer_id = ? AND account_id IS ? AND usage = ? "
            "AND end_date IS NULL ORDER BY start_date, id",
            (taxpayer_id, account_id, update.usage),
        )
    )
    new = _content(update)
    if len(current) == 1 and all(same_text(current[0][c], v) for c, v in zip(_CONTENT, new, strict=True)):
        since = date.fromisoformat(current[0]["start_date"])
        return _Change(account_id, account, update, field, "NONE", Period(since))
    if current and current[-1]["start_date"] > start.isoformat():
        return errors.item(
            "CMN.ATO.CUADDR.DT01",
            Field=f"{field}/StartD",
            Usage=update.usage,
            Level=level_name(account),
            StartD=start.isoformat(),
            CurrentStartD=current[-1]["start_date"],
        )
    same_day = [r["id"] for r in current if r["start_date"] == start.isoformat()]
    corrected = same_day[0] if same_day else None
    ended = tuple(r["id"] for r in current if r["id"] != corrected)
    action = "CORRECT" if corrected is not None else "REPLACE" if ended else "ADD"
    return _Change(account_id, account, update, field, action, Period(start), corrected, ended)


def _plan(ctx: Context, request: cuaddr.UpdateRequest) -> tuple[int, list[_Change]]:
    """Every check, in the order an agent can act on: who, how many accounts, which accounts and the link to
    them, the addresses, then their dates against the current ones. Errors stop with every problem found."""
    taxpayer_id = int(client(ctx, request.client)["id"])
    if len(request.accounts) > cuaddr.MAX_ACCOUNTS:
        ctx.fail("CMN.ATO.CUADDR.ACC01", Count=len(request.accounts), Maximum=cuaddr.MAX_ACCOUNTS)
    targets = levels(ctx, taxpayer_id, request.accounts, "CMN.ATO.CUADDR.ACC02", "Account")
    problems = _check(ctx, request.addresses)
    if problems:
        ctx.fail_all(problems)
    changes: list[_Change] = []
    for level in targets:
        for number, update in enumerate(request.addresses, 1):
            change = _change(ctx, taxpayer_id, level, update, f"Address[{number}]")
            if isinstance(change, EventItem):
                problems.append(change)
            else:
                changes.append(change)
    if problems:
        ctx.fail_all(problems)
    for c in changes:
        if c.action == "NONE":
            ctx.warn("CMN.ATO.CUADDR.W01", Field=c.field, Usage=c.update.usage, Level=level_name(c.account))
    return taxpayer_id, changes


def _apply(db: sqlite3.Connection, taxpayer_id: int, change: _Change) -> None:
    if change.action == "NONE":
        return
    end = (change.period.start - timedelta(days=1)).isoformat()
    db.executemany("UPDATE reg_addresses SET end_date = ? WHERE id = ?", [(end, row) for row in change.ended])
    values = _content(change.update)
    if change.corrected is not None:
        assignments = ", ".join(f"{column} = ?" for column in _CONTENT)
        db.execute(f"UPDATE reg_addresses SET {assignments} WHERE id = ?", (*values, change.corrected))  # noqa: S608
    else:
        db.execute(
            f"INSERT INTO reg_addresses (taxpayer_id, account_id, usage, {', '.join(_CONTENT)}, start_date) "  # noqa: S608
            f"VALUES (?, ?, ?, {', '.join('?' * len(_CONTENT))}, ?)",
            (taxpayer_id, change.account_id, change.update.usage, *values, change.period.start.isoformat()),
        )


def _results(changes: list[_Change]) -> list[cuaddr.AddressResult]:
    return [
        cuaddr.AddressResult(account=c.account, usage=c.update.usage, action=c.action, period=c.period) for c in changes
    ]


@handles(cuaddr.ValidateRequest.SERVICE_ACTION)
def validate(ctx: Context, request: cuaddr.ValidateRequest) -> cuaddr.ValidateResponse:
    """What Submit would do, with its warnings; nothing changes."""
    _taxpayer_id, changes = _plan(ctx, request)
    return cuaddr.ValidateResponse(results=_results(changes))


@handles(cuaddr.SubmitRequest.SERVICE_ACTION)
def submit(ctx: Context, request: cuaddr.SubmitRequest) -> cuaddr.SubmitResponse:
    taxpayer_id, changes = _plan(ctx, request)
    for change in changes:
        _apply(ctx.db, taxpayer_id, change)
    return cuaddr.SubmitResponse(results=_results(changes))


# --- List ---


# The contacts follow the addresses in one keyset: a contact's key is its id past every address's.
_CONTACTS_AFTER = 1 << 40
_ADDRESS_COLUMNS = (
    "id AS k, usage, line1, line2, locality, state, postcode, country, phone, email, start_date, end_date, "
    "NULL AS family_name, NULL AS given_name, NULL AS position"
)
_CONTACT_COLUMNS = (
    f"id + {_CONTACTS_AFTER} AS k, 'CNT' AS usage, NULL AS line1, NULL AS line2, NULL AS locality, NULL AS state, "
    "NULL AS postcode, NULL AS country, phone, email, start_date, end_date, family_name, given_name, position"
)


def _listed(row: dict[str, Any]) -> cuaddr.ListedAddress:
    place = None
    if row["line1"]:
        place = Address(
            row["line1"], row["line2"], row["locality"] or "", row["state"], row["postcode"], row["country"] or "au"
        )
    end = date.fromisoformat(row["end_date"]) if row["end_date"] else None
    family = row["family_name"]
    return cuaddr.ListedAddress(
        usage=row["usage"],
        contact_name=PersonName(family, row["given_name"] or None) if family else None,
        position=row["position"] or None,
        address=place,
        phone=row["phone"],
        electronic=row["email"],
        period=Period(date.fromisoformat(row["start_date"]), end),
    )


@handles(cuaddr.ListRequest.SERVICE_ACTION)
def list_addresses(ctx: Context, request: cuaddr.ListRequest) -> cuaddr.ListResponse:
    """One page in the order the ATO recorded the addresses, then the authorised contacts, client level or one
    account's."""
    taxpayer_id = int(client(ctx, request.client)["id"])
    [(account_id, _account)] = levels(
        ctx, taxpayer_id, [request.account] if request.account else [], "CMN.ATO.CUADDR.ACC02", "Account"
    )
    scope = f"cuaddr:{taxpayer_id}:{account_id or ''}"
    after = paging.position(scope, request.continuation)
    if after is None:
        ctx.fail("CMN.ATO.CUADDR.LST01")
    size = paging.page_size(request.page_size)
    current = "" if request.include_history else " AND end_date IS NULL"
    wanted = request.usages or list(cuaddr.USAGES)
    usages = [u for u in wanted if u != "CNT"]
    parts: list[str] = []
    params: list[Any] = []
    if usages:
        parts.append(
            f"SELECT {_ADDRESS_COLUMNS} FROM reg_addresses WHERE taxpayer_id = ? AND account_id IS ? "  # noqa: S608
            f"AND id > ?{current} AND usage IN ({', '.join('?' * len(usages))})"
        )
        params += [taxpayer_id, account_id, after, *usages]
    if "CNT" in wanted:
        parts.append(
            f"SELECT {_CONTACT_COLUMNS} FROM reg_contacts WHERE taxpayer_id = ? AND account_id IS ? "  # noqa: S608
            f"AND id > ?{current}"
        )
        params += [taxpayer_id, account_id, max(after - _CONTACTS_AFTER, 0)]
    found = rows(ctx.db.execute(f"{' UNION ALL '.join(parts)} ORDER BY k LIMIT ?", (*params, size + 1)))
    page = found[:size]
    more = len(found) > size
    return cuaddr.ListResponse(
        addresses=[_listed(r) for r in page],
        continuation=paging.token(scope, int(page[-1]["k"])) if more else None,
    )
