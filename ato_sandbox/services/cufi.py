"""The stand-in ATO's CUFI actions: list a client's financial institution (bank) accounts, and validate or make a
replacement of the one refunds are paid into.

Bank accounts are held at client level (refunds) or for one ATO account (an activity statement account's own).
Validate and Submit apply the same rules (``_plan``); Validate changes nothing:

- the BSB is one of a known financial institution's branches (``register.valid_bsb``) (FI01);
- the account number is 5 to 9 digits (FI02);
- the account name is given: up to 32 characters (the BECS account title) of letters, digits, spaces and
  & ' - . , / ( ) (FI03);
- the details are not the ones already current (FI04);
- an account name that shares no word with the client's name is applied with a warning: the ATO pays refunds
  only to the client's own account or a tax agent's trust account (FI05).

The new account is current from today and the one it replaces ends the day before; one in use only since today is
superseded outright (removed), so that no period ends before it starts. Error texts name the field and never
carry the account number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ato_gateway.wire.documents import cufi
from ato_gateway.wire.documents.common import Account, ClientIdentifier, Period
from ato_gateway.wire.events import EventItem

from .. import errors, register
from . import paging
from .base import Context, handles

BSB_FIELD = "FinancialInstitutionAccountBankStateBranchN"
NUMBER_FIELD = "FinancialInstitutionAccountFinancialInstitutionAccountN"
NAME_FIELD = "FinancialInstitutionAccountNameT"
ACCOUNT_NAME_MAX = 32
_NUMBER = re.compile(r"[0-9]{5,9}")
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9&'\-.,/() ]+")
# Words that say what kind of entity holds an account, not whose it is: no match on these alone.
_GENERIC_WORDS = frozenset(
    {"the", "and", "pty", "ltd", "limited", "trust", "trustee", "for", "fund", "family", "super", "superannuation"}
)
_COLUMNS = "id, bsb, number, account_name, start_date, end_date"


def _client(ctx: Context, ident: ClientIdentifier, account: Account | None) -> tuple[dict[str, Any], int | None]:
    """The client, and its ATO account when one is named, once the agent is seen to have a link covering it."""
    taxpayer = ctx.find_taxpayer(tfn=ident.tfn, abn=ident.abn, wpn=ident.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.GEN.ID01")
    taxpayer_id = int(taxpayer["id"])
    if account is None:
        ctx.require_link(taxpayer_id)
        return taxpayer, None
    row = ctx.db.execute(
        "SELECT id FROM reg_accounts WHERE taxpayer_id = ? AND kind = ? AND branch IS ?",
        (taxpayer_id, account.kind, account.branch),
    ).fetchone()
    if row is None:
        # Only an agent who acts for the client at all learns which accounts it does not have.
        if not register.current_links(ctx.db, ctx.agent_id, taxpayer_id):
            ctx.fail("CMN.ATO.AUTH.002", Level="this client")
        ctx.fail("CMN.ATO.CUFI.ACC01", Account=" ".join(filter(None, (account.kind, account.branch))))
    ctx.require_link(taxpayer_id, int(row[0]))
    return taxpayer, int(row[0])


def _record(row: Any) -> cufi.FinancialInstitutionAccountRecord:
    _id, bsb, number, name, start, end = row
    period = Period(date.fromisoformat(start), date.fromisoformat(end) if end else None)
    return cufi.FinancialInstitutionAccountRecord(bsb=bsb, number=number, name=name, period=period)


# --- list ---


@handles(cufi.ListRequest.SERVICE_ACTION)
def list_accounts(ctx: Context, request: cufi.ListRequest) -> cufi.ListResponse:
    """The client-level bank accounts, or one ATO account's, in the order they were recorded; current ones only
    unless the history is asked for."""
    taxpayer, account_id = _client(ctx, request.client, request.account)
    history = bool(request.include_history)
    scope = f"CUFI/{taxpayer['id']}/{account_id or 0}/{int(history)}"
    after = paging.position(scope, request.continuation)
    if after is None:
        ctx.fail("CMN.ATO.CUFI.LST01")
    size = paging.page_size(request.page_size)
    current = "" if history else " AND (end_date IS NULL OR end_date >= ?)"
    params: list[Any] = [taxpayer["id"], account_id, after] + ([] if history else [ctx.today.isoformat()])
    rows = ctx.db.execute(
        f"SELECT {_COLUMNS} FROM reg_bank_accounts WHERE taxpayer_id = ? AND account_id IS ? AND id > ?{current} "  # noqa: S608 - constants
        "ORDER BY id LIMIT ?",
        (*params, size + 1),
    ).fetchall()
    more = len(rows) > size
    rows = rows[:size]
    return cufi.ListResponse(
        accounts=[_record(row) for row in rows],
        continuation=paging.token(scope, int(rows[-1][0])) if more else None,
    )


# --- replace ---


def _detail_errors(details: cufi.FinancialInstitutionAccount) -> list[EventItem]:
    found = []
    if not register.valid_bsb(details.bsb):
        found.append(errors.item("CMN.ATO.CUFI.FI01", Field=BSB_FIELD))
    if not _NUMBER.fullmatch(details.number):
        found.append(errors.item("CMN.ATO.CUFI.FI02", Field=NUMBER_FIELD))
    name = details.name
    if not name.strip() or len(name) > ACCOUNT_NAME_MAX or not _ACCOUNT_NAME.fullmatch(name):
        found.append(errors.item("CMN.ATO.CUFI.FI03", Field=NAME_FIELD))
    return found


def _words(text: str | None) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", (text or "").casefold()) if len(w) >= 3} - _GENERIC_WORDS


def _names_match(taxpayer: dict[str, Any], account_name: str) -> bool:
    if taxpayer["entity"] == "IND":
        held = _words(taxpayer["family_name"])
    else:
        held = _words(taxpayer["organisation_name"]) | _words(taxpayer["legal_name"])
    return not held or bool(held & _words(account_name))


@dataclass
class _Plan:
    taxpayer_id: int
    account_id: int | None
    current: list[Any]  # the rows of the accounts in use now, which the new one replaces
    answer: cufi.Replaced


def _plan(ctx: Context, request: cufi.Replacement) -> _Plan:
    """Every rule, for Validate and Submit alike: what the new account replaces, and the answer."""
    taxpayer, account_id = _client(ctx, request.client, request.account)
    details = request.bank_account
    found = _detail_errors(details)
    if found:
        ctx.fail_all(found)
    today = ctx.today.isoformat()
    current = ctx.db.execute(
        f"SELECT {_COLUMNS} FROM reg_bank_accounts WHERE taxpayer_id = ? AND account_id IS ? "  # noqa: S608 - constants
        "AND (end_date IS NULL OR end_date >= ?) ORDER BY id",
        (taxpayer["id"], account_id, today),
    ).fetchall()
    if any(tuple(row[1:4]) == (details.bsb, details.number, details.name) for row in current):
        ctx.fail("CMN.ATO.CUFI.FI04")
    if not _names_match(taxpayer, details.name):
        ctx.warn("CMN.ATO.CUFI.FI05")
    record = cufi.FinancialInstitutionAccountRecord(
        bsb=details.bsb, number=details.number, name=details.name, period=Period(ctx.today)
    )
    ends = any(row[4] < today for row in current)
    answer = cufi.Replaced(bank_account=record, previous_end_date=ctx.today - timedelta(days=1) if ends else None)
    return _Plan(int(taxpayer["id"]), account_id, current, answer)


@handles(cufi.ValidateRequest.SERVICE_ACTION)
def validate(ctx: Context, request: cufi.ValidateRequest) -> cufi.ValidateResponse:
    answer = _plan(ctx, request).answer
    return cufi.ValidateResponse(bank_account=answer.bank_account, previous_end_date=answer.previous_end_date)


@handles(cufi.SubmitRequest.SERVICE_ACTION)
def submit(ctx: Context, request: cufi.SubmitRequest) -> cufi.SubmitResponse:
    plan = _plan(ctx, request)
    answer, today = plan.answer, ctx.today.isoformat()
    for row in plan.current:
        if row[4] >= today:  # in use only since today: superseded outright, so no period ends before it starts
            ctx.db.execute("DELETE FROM reg_bank_accounts WHERE id = ?", (row[0],))
        else:
            end = (ctx.today - timedelta(days=1)).isoformat()
            ctx.db.execute("UPDATE reg_bank_accounts SET end_date = ? WHERE id = ?", (end, row[0]))
    new = answer.bank_account
    ctx.db.execute(
        "INSERT INTO reg_bank_accounts (taxpayer_id, account_id, bsb, number, account_name, start_date) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (plan.taxpayer_id, plan.account_id, new.bsb, new.number, new.name, today),
    )
    return cufi.SubmitResponse(bank_account=new, previous_end_date=answer.previous_end_date)
