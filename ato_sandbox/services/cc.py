"""The stand-in ATO's CC actions: list the letters sent to an agent's clients over a date range, and get one with
its PDF.

An agent sees the letters its current links cover, as ``register.has_access`` decides: a client-level link covers
every letter of the client; an account-level link covers the letters about that account. So a BAS agent linked to
an activity statement account sees that account's reminders but not the client's notices of assessment.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from typing import Any

from ato_gateway.wire.documents import cc
from ato_gateway.wire.documents.common import Account, ClientIdentifier, PersonName
from ato_gateway.wire.events import EventItem

from .. import letters, register
from ..errors import item
from . import paging
from .base import Context, handles

MAX_CLIENTS = 100  # the ATO's own portal stops at 3; a service for software should take a practice's batch
MAX_YEARS = 5

_SELECT = (
    "SELECT c.id, c.taxpayer_id, c.account_id, c.kind, c.title, c.issued_date, a.kind AS account_kind, a.branch, "
    "t.tfn, t.entity, t.family_name, t.given_name, t.other_given_name, t.organisation_name, t.legal_name "
    "FROM reg_communications c JOIN reg_taxpayers t ON t.id = c.taxpayer_id "
    "LEFT JOIN reg_accounts a ON a.id = c.account_id "
)
# has_access in SQL, for a whole page at once: a current client-level link, or an account-level one on the
# letter's account. (A role-level link covers its role only, never a whole account's letters.)
_COVERED = (
    "EXISTS (SELECT 1 FROM reg_links l WHERE l.agent_id = ? AND l.taxpayer_id = c.taxpayer_id AND l.end_date IS NULL "
    "AND (l.level = 'CLIENT' OR (l.level = 'ACCOUNT' AND l.account_id = c.account_id)))"
)
_TOKEN = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})\.([0-9]{1,18})")


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


def _request_problems(request: cc.ListRequest) -> list[EventItem]:
    problems = []
    if request.issued_to < request.issued_from:
        problems.append(
            item("CMN.ATO.CC.LST01", IssuedFromD=request.issued_from.isoformat(), IssuedToD=request.issued_to)
        )
    elif request.issued_to > _years_after(request.issued_from, MAX_YEARS):
        problems.append(item("CMN.ATO.CC.LST02", Years=MAX_YEARS))
    if len(request.clients) > MAX_CLIENTS:
        problems.append(item("CMN.ATO.CC.LST03", Count=len(request.clients), Maximum=MAX_CLIENTS))
    if request.continuation is not None and _TOKEN.fullmatch(request.continuation) is None:
        problems.append(item("CMN.ATO.CC.LST04"))
    return problems


def _named_clients(ctx: Context, clients: list[ClientIdentifier]) -> list[int]:
    """The taxpayers named, each of which must be in the register and a current client of the agent at some level
    (the letters listed are then those its links cover). Every client in error is reported, by its position."""
    found: dict[int, None] = {}  # ordered and without repeats
    problems = []
    for position, client in enumerate(clients, start=1):
        taxpayer = ctx.find_taxpayer(tfn=client.tfn, abn=client.abn, wpn=client.wpn)
        if taxpayer is None:
            problems.append(item("CMN.ATO.GEN.ID01", Position=position))
        elif not register.current_links(ctx.db, ctx.agent_id, int(taxpayer["id"])):
            problems.append(item("CMN.ATO.AUTH.002", Level="this client", Position=position))
        else:
            found[int(taxpayer["id"])] = None
    if problems:
        ctx.fail_all(problems)
    return list(found)


def _communication(row: dict[str, Any]) -> cc.Communication:
    individual = row["entity"] == "IND"
    return cc.Communication(
        id=str(row["id"]),
        client=ClientIdentifier(tfn=row["tfn"]),
        person_name=(
            PersonName(row["family_name"], row["given_name"], row["other_given_name"]) if individual else None
        ),
        organisation_name=None if individual else row["organisation_name"] or row["legal_name"],
        kind=row["kind"],
        title=row["title"],
        issued=date.fromisoformat(row["issued_date"]),
        account=Account(row["account_kind"], row["branch"]) if row["account_kind"] else None,
    )


@handles(cc.ListRequest.SERVICE_ACTION)
def list_communications(ctx: Context, request: cc.ListRequest) -> cc.ListResponse:
    """Oldest first, a page at a time: the continuation is the (issued date, id) of the page's last letter, so a
    page starts where the last one ended however many letters there are, and never repeats or skips one."""
    problems = _request_problems(request)
    if problems:
        ctx.fail_all(problems)
    named = _named_clients(ctx, request.clients) if request.clients else None
    after_date, after_id = ("", 0)
    if request.continuation is not None:
        token = _TOKEN.fullmatch(request.continuation)
        assert token is not None  # checked above
        after_date, after_id = token.group(1), int(token.group(2))
    select, clients_params = _SELECT, list(named or [])
    if named is None:
        # All the agent's clients: walk the letters in page order from the continuation and keep those the agent's
        # links cover (_COVERED), so a page costs its own rows rather than a sort of every letter of every client.
        select = _SELECT.replace(
            "FROM reg_communications c", "FROM reg_communications c INDEXED BY reg_communications_issued"
        )
        clients_sql = "1 = 1"
    else:
        clients_sql = f"c.taxpayer_id IN ({', '.join('?' * len(named))})"
    size = paging.page_size(request.page_size)
    rows = _dicts(
        ctx.db.execute(
            f"{select} WHERE {clients_sql} AND c.issued_date BETWEEN ? AND ? AND (c.issued_date, c.id) > (?, ?) "
            f"AND {_COVERED} ORDER BY c.issued_date, c.id LIMIT ?",
            (
                *clients_params,
                request.issued_from.isoformat(),
                request.issued_to.isoformat(),
                after_date,
                after_id,
                ctx.agent_id,
                size + 1,
            ),
        )
    )
    more = len(rows) > size
    rows = rows[:size]
    continuation = f"{rows[-1]['issued_date']}.{rows[-1]['id']}" if more else None
    return cc.ListResponse(communications=[_communication(r) for r in rows], continuation=continuation)


def _display_name(row: dict[str, Any]) -> str:
    if row["entity"] == "IND":
        return " ".join(part for part in (row["given_name"], row["family_name"]) if part)
    return str(row["organisation_name"] or row["legal_name"])


@handles(cc.GetRequest.SERVICE_ACTION)
def get(ctx: Context, request: cc.GetRequest) -> cc.GetResponse:
    """The letter and its PDF, made afresh from the register row (the same row always gives the same bytes)."""
    rows = _dicts(ctx.db.execute(f"{_SELECT} WHERE c.id = ?", (request.id,))) if request.id.isdigit() else []
    if not rows:
        ctx.fail("CMN.ATO.CC.GET01", CommunicationId=request.id)
    row = rows[0]
    ctx.require_link(int(row["taxpayer_id"]), account_id=row["account_id"])
    communication = _communication(row)
    account = communication.account
    letter = letters.Letter(
        reference=communication.id,
        kind=communication.kind,
        title=communication.title,
        issued=communication.issued,
        client_name=_display_name(row),
        account=" ".join(p for p in (account.kind, account.branch) if p) if account else None,
    )
    attachment = cc.Attachment(letters.file_name(letter), letters.MEDIA_TYPE, letters.render(letter))
    return cc.GetResponse(communication=communication, attachment=attachment)
