"""The stand-in ATO's CUAUTHCNTCT actions: validate and submit a client's new authorised contact, at client level
or for one account. The current contacts at that level end the day before the new one starts, so the history is
kept with its dates. Validate and Submit run the same plan (``_plan``); only Submit applies it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta

from ato_gateway.wire.documents import cuauthcntct
from ato_gateway.wire.documents.common import Period
from ato_gateway.wire.events import EventItem

from .. import errors
from .base import Context, handles
from .cuaddr import client, email_ok, given, level_name, levels, phone_ok, rows, same_text

_FIELD = "AuthorisedContact"
_CONTENT = ("family_name", "given_name", "position", "phone", "email")


def _check(ctx: Context, contact: cuauthcntct.AuthorisedContact) -> list[EventItem]:
    """Every problem of the contact itself, each naming its field."""
    name = contact.name
    out = [
        errors.item("CMN.ATO.CUAUTHCNTCT.CNT01", Field=f"{_FIELD}/PersonNameDetails/{element}")
        for element, value in (
            ("FamilyNameT", name.family_name if name else None),
            ("GivenNameT", name.given_name if name else None),
        )
        if not given(value)
    ]
    if given(contact.phone) and not phone_ok(str(contact.phone)):
        out.append(errors.item("CMN.ATO.CUAUTHCNTCT.CNT02", Field=f"{_FIELD}/TelephoneNumberT"))
    if given(contact.email) and not email_ok(str(contact.email)):
        out.append(errors.item("CMN.ATO.CUAUTHCNTCT.CNT03", Field=f"{_FIELD}/EmailAddressT"))
    if contact.start is not None and contact.start > ctx.today:
        item = errors.item("CMN.ATO.CUAUTHCNTCT.DT02", Field=f"{_FIELD}/StartD", StartD=contact.start.isoformat())
        out.append(item)
    return out


def _content(contact: cuauthcntct.AuthorisedContact) -> tuple[str | None, ...]:
    name = contact.name
    family, given_name = (name.family_name, name.given_name) if name else (None, None)
    return (family, given_name, contact.position, contact.phone, contact.email)


@dataclass
class _Plan:
    taxpayer_id: int
    account_id: int | None
    contact: cuauthcntct.AuthorisedContact
    action: str  # ADD, REPLACE, CORRECT, NONE
    period: Period  # the resulting current contact's
    corrected: int | None = None  # the current row changed in place (it starts on the new start date)
    ended: tuple[int, ...] = ()  # the current rows that end the day before the new start


def _plan(ctx: Context, request: cuauthcntct.UpdateRequest) -> _Plan:
    """Every check, then what would happen. Errors stop with every problem found; more than one current contact
    at the level is a warning, as the new one replaces them all."""
    taxpayer_id = int(client(ctx, request.client)["id"])
    accounts = [request.account] if request.account else []
    [(account_id, account)] = levels(ctx, taxpayer_id, accounts, "CMN.ATO.CUAUTHCNTCT.ACC02", "Account")
    problems = _check(ctx, request.contact)
    if problems:
        ctx.fail_all(problems)
    contact, level = request.contact, level_name(account)
    start = contact.start or ctx.today
    current = rows(
        ctx.db.execute(
            "SELECT * FROM reg_contacts WHERE taxpayer_id = ? AND account_id IS ? AND end_date IS NULL "
            "ORDER BY start_date, id",
            (taxpayer_id, account_id),
        )
    )
    new = _content(contact)
    if len(current) == 1 and all(same_text(current[0][c], v) for c, v in zip(_CONTENT, new, strict=True)):
        ctx.warn("CMN.ATO.CUAUTHCNTCT.W01", Level=level)
        return _Plan(taxpayer_id, account_id, contact, "NONE", Period(date.fromisoformat(current[0]["start_date"])))
    if current and current[-1]["start_date"] > start.isoformat():
        ctx.fail(
            "CMN.ATO.CUAUTHCNTCT.DT01",
            Field=f"{_FIELD}/StartD",
            Level=level,
            StartD=start.isoformat(),
            CurrentStartD=current[-1]["start_date"],
        )
    if len(current) > 1:
        ctx.warn("CMN.ATO.CUAUTHCNTCT.W02", Count=len(current), Level=level)
    same_day = [r["id"] for r in current if r["start_date"] == start.isoformat()]
    corrected = same_day[0] if same_day else None
    ended = tuple(r["id"] for r in current if r["id"] != corrected)
    action = "CORRECT" if corrected is not None else "REPLACE" if ended else "ADD"
    return _Plan(taxpayer_id, account_id, contact, action, Period(start), corrected, ended)


def _apply(db: sqlite3.Connection, plan: _Plan) -> None:
    if plan.action == "NONE":
        return
    end = (plan.period.start - timedelta(days=1)).isoformat()
    db.executemany("UPDATE reg_contacts SET end_date = ? WHERE id = ?", [(end, row) for row in plan.ended])
    values = _content(plan.contact)
    if plan.corrected is not None:
        db.execute(
            "UPDATE reg_contacts SET family_name = ?, given_name = ?, position = ?, phone = ?, email = ? WHERE id = ?",
            (*values, plan.corrected),
        )
    else:
        db.execute(
            "INSERT INTO reg_contacts (taxpayer_id, account_id, family_name, given_name, position, phone, email, "
            "start_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (plan.taxpayer_id, plan.account_id, *values, plan.period.start.isoformat()),
        )


@handles(cuauthcntct.ValidateRequest.SERVICE_ACTION)
def validate(ctx: Context, request: cuauthcntct.ValidateRequest) -> cuauthcntct.ValidateResponse:
    """What Submit would do, with its warnings; nothing changes."""
    plan = _plan(ctx, request)
    return cuauthcntct.ValidateResponse(action=plan.action, ended=len(plan.ended), period=plan.period)


@handles(cuauthcntct.SubmitRequest.SERVICE_ACTION)
def submit(ctx: Context, request: cuauthcntct.SubmitRequest) -> cuauthcntct.SubmitResponse:
    plan = _plan(ctx, request)
    _apply(ctx.db, plan)
    return cuauthcntct.SubmitResponse(action=plan.action, ended=len(plan.ended), period=plan.period)
