"""The stand-in ATO's MAAS action: a super fund reports member accounts in bulk (seed 003, CRT Alert 071/2018).

The message is pushed and applied at once (``app._push``); the results are kept for the fund's pull. Each
transaction stands alone: one that fails validation is reported and not processed, and the rest of the batch is.

Matching (the TFN validation): an individual of the register matches a member when the family name and the date
of birth are the same and, when the fund gives one, the first given name too (case and spacing aside). A TFN
given is MATCHED when its holder matches the member's details; otherwise, when exactly one individual matches
those details, the TFN is CORRECTED to theirs. With no TFN given, one matching individual is PROVIDED (their TFN
returned) when they have quoted their TFN for super purposes, and plainly MATCHED when they have not. Anything
else (no match, or several) is UNMATCHED.

The register: a processed transaction of a matched member brings the fund's account with that member number to
the reported status (opened on the event date when new, closed on the event date when CLOSED). An unmatched
member's transaction is accepted but recorded against no one, as the register has no member to hold it. An open
account held by someone other than the member reported is CMN.ATO.SPRMBRINFO.096604 and not processed; once the
fund has closed it under its holder, the number may be reported for the new member.

Every processed transaction, matched or not, also updates the fund account as the ATO holds it
(``reg_member_reports``): its status and dates, the last event, the attributes last reported and the TFN
validation outcome, which Get answers. A transaction whose event is older than the last one processed for that
account is CMN.ATO.SPRMBRINFO.099264 and not processed (one of the same date is processed after it). REOPENED
opens again an account the ATO holds as closed, keeping its opening date.

The sender: a fund of the register (its ABN the signing credential's) or the administrator of funds (a practice
reporting for several with its own credential). Each transaction's USI names the fund it is for; one the sender
may not report for is USI01 for that transaction.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from ato_gateway.wire.documents import maas
from ato_gateway.wire.events import EventItem

from .. import errors
from .base import Context, handles

# TFN check digits: the weighted sum of the digits is a multiple of 11.
_TFN_WEIGHTS = {9: (1, 4, 3, 7, 5, 8, 6, 9, 10), 8: (10, 7, 8, 4, 6, 3, 5, 1)}
_EVENT_STATUS = {"OPENED": "OPEN", "CLOSED": "CLOSED", "REOPENED": "OPEN"}  # CHANGED goes with either status
# The attributes' codes (documents/maas.py): an unknown one is ATT01 for its transaction.
_ATTRIBUTE_CODES = {
    "AccountPhaseC": ("phase", frozenset({"ACCUMULATION", "RETIREMENT"})),
    "LostStatusC": ("lost_status", frozenset({"NOT_LOST", "UNCONTACTABLE", "INACTIVE"})),
}


@dataclass(frozen=True)
class Match:
    """The TFN validation of one transaction: the outcome, the register's taxpayer id, the TFN to return."""

    outcome: str  # MATCHED, CORRECTED, PROVIDED, UNMATCHED
    taxpayer_id: int | None = None
    tfn: str | None = None


def valid_tfn(tfn: str) -> bool:
    weights = _TFN_WEIGHTS.get(len(tfn))
    if weights is None or not tfn.isdigit():
        return False
    return sum(w * int(d) for w, d in zip(weights, tfn, strict=True)) % 11 == 0


def _same(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").split()).casefold() == " ".join((b or "").split()).casefold()


def _matches(row: dict[str, Any], transaction: maas.MemberTransaction) -> bool:
    name = transaction.name
    return (
        row["entity"] == "IND"
        and row["birth_date"] == transaction.birth_date.isoformat()
        and _same(row["family_name"], name.family_name)
        and (name.given_name is None or _same(row["given_name"], name.given_name))
    )


_PERSON_COLUMNS = ("id", "tfn", "entity", "family_name", "given_name", "birth_date", "quoted_tfn_for_super")


def _people(db: sqlite3.Connection, column: str, value: str) -> list[dict[str, Any]]:
    """Taxpayers by TFN or by date of birth (both indexed), as dicts."""
    assert column in ("tfn", "birth_date")
    rows = db.execute(
        f"SELECT {', '.join(_PERSON_COLUMNS)} FROM reg_taxpayers WHERE {column} = ?",  # noqa: S608 - constants
        (value,),
    ).fetchall()
    return [dict(zip(_PERSON_COLUMNS, row, strict=True)) for row in rows]


def match(db: sqlite3.Connection, transaction: maas.MemberTransaction) -> Match:
    """The TFN validation of one transaction (the rule in the module's docstring)."""
    if transaction.tfn:
        holder = _people(db, "tfn", transaction.tfn)
        if holder and _matches(holder[0], transaction):
            return Match("MATCHED", int(holder[0]["id"]))
    found = [r for r in _people(db, "birth_date", transaction.birth_date.isoformat()) if _matches(r, transaction)]
    if len(found) != 1:
        return Match("UNMATCHED")
    person = found[0]
    if transaction.tfn:
        return Match("CORRECTED", int(person["id"]), str(person["tfn"]))
    if person["quoted_tfn_for_super"]:
        return Match("PROVIDED", int(person["id"]), str(person["tfn"]))
    return Match("MATCHED", int(person["id"]))


def _problems(
    ctx: Context, funds: dict[str, int], transaction: maas.MemberTransaction, seen: set[str]
) -> list[EventItem]:
    """Every validation error of one transaction (all of them, so the fund can correct them at once)."""
    problems = []
    if transaction.transaction_id in seen:
        problems.append(errors.item("CMN.ATO.SPRMBRINFO.DUP01", TransactionId=transaction.transaction_id))
    if transaction.usi not in funds:
        problems.append(errors.item("CMN.ATO.SPRMBRINFO.USI01", USI=transaction.usi))
    if not (transaction.member_id or "").strip():
        problems.append(errors.item("CMN.ATO.SPRMBRINFO.MBR01"))
    if transaction.tfn and not valid_tfn(transaction.tfn):
        problems.append(errors.item("CMN.ATO.SPRMBRINFO.TFN01"))
    if transaction.birth_date > ctx.today:
        problems.append(errors.item("CMN.ATO.SPRMBRINFO.DOB01", BirthDate=transaction.birth_date.isoformat()))
    if transaction.event.on > ctx.today:
        problems.append(errors.item("CMN.ATO.SPRMBRINFO.EVT01", EventDate=transaction.event.on.isoformat()))
    if _EVENT_STATUS.get(transaction.event.kind, transaction.status) != transaction.status:
        problems.append(
            errors.item("CMN.ATO.SPRMBRINFO.EVT02", Status=transaction.status, Event=transaction.event.kind)
        )
    if transaction.attributes is not None:
        for element, (name, codes) in _ATTRIBUTE_CODES.items():
            value = getattr(transaction.attributes, name)
            if value not in codes:
                problems.append(errors.item("CMN.ATO.SPRMBRINFO.ATT01", Field=element, Value=value))
    return problems


def _record(db: sqlite3.Connection, fund_id: int, transaction: maas.MemberTransaction, found: Match) -> bool:
    """Bring the member account to the reported status. False (nothing changed) when an open account with that
    number belongs to someone else; an unmatched member's transaction changes nothing."""
    member_id = (transaction.member_id or "").strip()
    row = db.execute(
        "SELECT id, taxpayer_id, closed_date FROM reg_members WHERE fund_id = ? AND member_number = ?",
        (fund_id, member_id),
    ).fetchone()
    if row is not None and row[2] is None and row[1] != found.taxpayer_id:
        return False
    if found.taxpayer_id is None:
        return True
    on = transaction.event.on.isoformat()
    closed = on if transaction.status == "CLOSED" else None
    if row is None:
        db.execute(
            "INSERT INTO reg_members (fund_id, member_number, taxpayer_id, open_date, closed_date) "
            "VALUES (?, ?, ?, ?, ?)",
            (fund_id, member_id, found.taxpayer_id, on, closed),
        )
    elif row[1] != found.taxpayer_id or row[2] is not None:
        # A closed account taken up by a member (the same one reopening, or a new holder of the number).
        opened = on if transaction.event.kind == "OPENED" or row[1] != found.taxpayer_id else None
        db.execute(
            "UPDATE reg_members SET taxpayer_id = ?, open_date = coalesce(?, open_date), closed_date = ? WHERE id = ?",
            (found.taxpayer_id, opened, closed, row[0]),
        )
    elif closed is not None:
        db.execute("UPDATE reg_members SET closed_date = ? WHERE id = ?", (closed, row[0]))
    return True


@dataclass(frozen=True)
class Held:
    """A fund account as the ATO holds it from MAAS (``reg_member_reports``)."""

    id: int
    status: str
    open_date: str | None
    closed_date: str | None
    event_kind: str
    event_date: str
    tfn_validation: str
    attributes: str | None


def held(db: sqlite3.Connection, fund_id: int, member_id: str) -> Held | None:
    row = db.execute(
        "SELECT id, status, open_date, closed_date, event_kind, event_date, tfn_validation, attributes "
        "FROM reg_member_reports WHERE fund_id = ? AND member_number = ?",
        (fund_id, member_id),
    ).fetchone()
    return Held(*row) if row is not None else None


def _out_of_order(
    db: sqlite3.Connection, fund_id: int, transaction: maas.MemberTransaction
) -> tuple[Held | None, EventItem | None]:
    """The account as held, and why the transaction cannot apply to it now: an older event than the last one
    processed (099264), or a reopening of an account not held as closed (EVT03)."""
    member_id = (transaction.member_id or "").strip()
    current = held(db, fund_id, member_id)
    on = transaction.event.on.isoformat()
    if current is not None and on < current.event_date:
        return current, errors.item("CMN.ATO.SPRMBRINFO.099264", EventDate=on, LastEventDate=current.event_date)
    if transaction.event.kind == "REOPENED" and not _held_closed(db, fund_id, member_id, current):
        return current, errors.item("CMN.ATO.SPRMBRINFO.EVT03")
    return current, None


def _held_closed(db: sqlite3.Connection, fund_id: int, member_id: str, current: Held | None) -> bool:
    if current is not None:
        return current.status == "CLOSED"
    # An account of the register never reported through MAAS (the generator's).
    row = db.execute(
        "SELECT closed_date FROM reg_members WHERE fund_id = ? AND member_number = ?", (fund_id, member_id)
    ).fetchone()
    return row is not None and row[0] is not None


def _keep(
    db: sqlite3.Connection,
    fund_id: int,
    transaction: maas.MemberTransaction,
    current: Held | None,
    found: Match,
    order: int,
) -> None:
    """Hold the account as this processed transaction leaves it. An account opened (or first reported) takes
    the event's date as its opening; one reopened keeps its own; the attributes stay as last reported when the
    transaction has none."""
    on = transaction.event.on.isoformat()
    kind = transaction.event.kind
    opened = on if current is None or kind == "OPENED" else current.open_date
    closed = None
    if transaction.status == "CLOSED":
        closed = current.closed_date if current is not None and current.closed_date and kind != "CLOSED" else on
    attributes = json.dumps(asdict(transaction.attributes)) if transaction.attributes is not None else None
    if current is None:
        db.execute(
            "INSERT INTO reg_member_reports (fund_id, member_number, status, open_date, closed_date, event_kind, "
            "event_date, processed_order, tfn_validation, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fund_id, (transaction.member_id or "").strip(), transaction.status, opened, closed, kind, on, order,
             found.outcome, attributes),
        )  # fmt: skip
    else:
        db.execute(
            "UPDATE reg_member_reports SET status = ?, open_date = ?, closed_date = ?, event_kind = ?, "
            "event_date = ?, processed_order = ?, tfn_validation = ?, attributes = coalesce(?, attributes) "
            "WHERE id = ?",
            (transaction.status, opened, closed, kind, on, order, found.outcome, attributes, current.id),
        )


def _item(event: EventItem) -> maas.ResultItem:
    return maas.ResultItem(
        code=event.code,
        severity=event.severity,
        text=event.short_description or None,
        parameters=[maas.Parameter(name, value) for name, value in event.parameters],
    )


def _result(
    transaction: maas.MemberTransaction, items: list[EventItem], found: Match | None = None
) -> maas.TransactionResult:
    """Processed exactly when the TFN validation has an outcome to report."""
    return maas.TransactionResult(
        transaction_id=transaction.transaction_id,
        processed=found is not None,
        tfn_validation=found.outcome if found else None,
        corrected_tfn=found.tfn if found else None,
        items=[_item(i) for i in items],
    )


def _process(
    ctx: Context,
    funds: dict[str, int],
    transaction: maas.MemberTransaction,
    seen: set[str],
    orders: itertools.count[int],
) -> maas.TransactionResult:
    problems = _problems(ctx, funds, transaction, seen)
    seen.add(transaction.transaction_id)
    if problems:
        return _result(transaction, problems)
    fund_id = funds[transaction.usi]
    current, refusal = _out_of_order(ctx.db, fund_id, transaction)
    if refusal is not None:
        return _result(transaction, [refusal])
    found = match(ctx.db, transaction)
    if not _record(ctx.db, fund_id, transaction, found):
        return _result(transaction, [errors.item("CMN.ATO.SPRMBRINFO.096604")])
    _keep(ctx.db, fund_id, transaction, current, found, next(orders))
    if found.outcome == "UNMATCHED":
        return _result(transaction, [errors.item("CMN.ATO.SPRMBRINFO.NOT VALID")], found)
    parameters = {"CORRECTEDTFN": found.tfn} if found.tfn else {}
    return _result(transaction, [errors.item("CMN.ATO.SPRMBRINFO.VALID", **parameters)], found)


def sender_funds(db: sqlite3.Connection, abn: str) -> dict[str, int]:
    """The funds (USI: id) a sender may report for: its own, as a fund, and those it administers."""
    rows = db.execute(
        "SELECT usi, id FROM reg_funds WHERE abn = ? UNION "
        "SELECT f.usi, f.id FROM reg_funds f JOIN reg_fund_administrators a ON a.fund_id = f.id WHERE a.abn = ?",
        (abn, abn),
    ).fetchall()
    return {str(usi): int(fund_id) for usi, fund_id in rows}


def _funds_or_fail(ctx: Context) -> dict[str, int]:
    signer = ctx.request.signer_abn or ""
    funds = sender_funds(ctx.db, signer) if signer else {}
    if not funds:
        ctx.fail("CMN.ATO.SPRMBRINFO.FUND01", ABN=signer or "(none)")
    return funds


@handles(maas.SubmitRequest.SERVICE_ACTION, agent_required=False)
def submit(ctx: Context, request: maas.SubmitRequest) -> maas.SubmitResponse:
    """The sender must be a fund of the register or the administrator of one (its ABN the signing
    credential's); then every transaction is validated and, when valid, processed on its own, all in the one
    storage transaction of the message."""
    funds = _funds_or_fail(ctx)
    last = ctx.db.execute("SELECT coalesce(max(processed_order), 0) FROM reg_member_reports").fetchone()[0]
    orders = itertools.count(int(last) + 1)
    seen: set[str] = set()
    results = [_process(ctx, funds, t, seen, orders) for t in request.transactions]
    failed = sum(not r.processed for r in results)
    if failed:
        ctx.warn("CMN.ATO.SPRMBRINFO.PART01", Failed=failed, Total=len(results))
        ctx.partial = failed < len(results)  # some processed, some refused: the ATO's "Partial"
    return maas.SubmitResponse(results=results)


@handles(maas.GetRequest.SERVICE_ACTION, agent_required=False)
def get(ctx: Context, request: maas.GetRequest) -> maas.GetResponse:
    """One account of a fund the sender may report for, as held; an account of the register never reported
    through MAAS is held as the register has it (its member matched). GET01 when the ATO holds no such account."""
    funds = _funds_or_fail(ctx)
    fund_id = funds.get(request.usi)
    if fund_id is None:
        ctx.fail("CMN.ATO.SPRMBRINFO.USI01", USI=request.usi)
    member_id = request.member_id.strip()
    current = held(ctx.db, fund_id, member_id)
    if current is None:
        return _from_register(ctx, fund_id, request)
    return maas.GetResponse(
        usi=request.usi,
        member_id=member_id,
        status=current.status,
        opened=_day(current.open_date),
        closed=_day(current.closed_date),
        last_event=maas.AccountEvent(current.event_kind, date.fromisoformat(current.event_date)),
        attributes=maas.AccountAttributes(**json.loads(current.attributes)) if current.attributes else None,
        tfn_validation=current.tfn_validation,
    )


def _from_register(ctx: Context, fund_id: int, request: maas.GetRequest) -> maas.GetResponse:
    row = ctx.db.execute(
        "SELECT open_date, closed_date FROM reg_members WHERE fund_id = ? AND member_number = ?",
        (fund_id, request.member_id.strip()),
    ).fetchone()
    if row is None:
        ctx.fail("CMN.ATO.SPRMBRINFO.GET01", MemberId=request.member_id, USI=request.usi)
    opened, closed = row
    return maas.GetResponse(
        usi=request.usi,
        member_id=request.member_id.strip(),
        status="CLOSED" if closed else "OPEN",
        opened=_day(opened),
        closed=_day(closed),
        last_event=maas.AccountEvent("CLOSED" if closed else "OPENED", date.fromisoformat(closed or opened)),
        tfn_validation="MATCHED",
    )


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
