"""The stand-in ATO's COMMPREF actions: get, validate and submit the practice's default communication preference
and its clients' own preferences (overrides of the default).

A preference is a row of ``reg_preferences``: ``taxpayer_id`` NULL for the practice default. A practice that never
set one gets the ATO's default, ELEC (letters to the agent's online inbox). A preference for one category of letters
is a row of ``reg_category_preferences`` and wins over the whole preference of the same client (or of the practice
default). So a category's letters go where, first found: the client's preference for the category, the client's
whole preference, the practice default's for the category, the practice default.

A BAS agent may set only the categories of ``commpref.BAS_CATEGORIES``, always naming them, and for those a link
to one of the client's activity statement accounts is enough.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Any

from ato_gateway.wire.documents import commpref
from ato_gateway.wire.documents.common import ClientIdentifier

from ..errors import item
from . import paging
from .base import Context, handles
from .cuaddr import email_ok

ATO_DEFAULT_CHANNEL = "ELEC"
_SCOPE = "COMMPREF.List"


def _is_bas(ctx: Context) -> bool:
    return ctx.agent is not None and ctx.agent["kind"] == "BAS"


def _client(ctx: Context, client: ClientIdentifier | None, categories: tuple[str, ...] = ()) -> int | None:
    """The taxpayer a request is about (None: the practice default). A client's preference redirects all of its
    letters, so it takes a link that covers the whole client, except that a BAS agent's categories take a link to
    one of the client's activity statement accounts."""
    if client is None:
        return None
    taxpayer = ctx.find_taxpayer(tfn=client.tfn, abn=client.abn, wpn=client.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.GEN.ID01")
    taxpayer_id = int(taxpayer["id"])
    if categories and _is_bas(ctx) and set(categories) <= set(commpref.BAS_CATEGORIES):
        linked = ctx.db.execute(
            "SELECT 1 FROM reg_links l JOIN reg_accounts a ON a.id = l.account_id WHERE l.agent_id = ? "
            "AND l.taxpayer_id = ? AND l.end_date IS NULL AND l.level = 'ACCOUNT' AND a.kind = 'AS' LIMIT 1",
            (ctx.agent_id, taxpayer_id),
        ).fetchone()
        if linked:
            return taxpayer_id
    ctx.require_link(taxpayer_id)
    return taxpayer_id


def _stored(db: sqlite3.Connection, agent_id: int, taxpayer_id: int | None) -> dict[str, Any] | None:
    # ``IS ?`` matches NULL too, so one query serves the practice default and a client's own preference.
    row = db.execute(
        "SELECT channel, email, updated_date FROM reg_preferences WHERE agent_id = ? AND taxpayer_id IS ? "
        "ORDER BY id DESC LIMIT 1",
        (agent_id, taxpayer_id),
    ).fetchone()
    return None if row is None else {"channel": row[0], "email": row[1], "updated": row[2]}


_Categories = dict[str, tuple[str, str | None]]  # category: (channel, email)


def _stored_categories(
    db: sqlite3.Connection, agent_id: int, taxpayer_ids: list[int | None]
) -> dict[int | None, _Categories]:
    """The category preferences of each taxpayer named (None: the practice default's), in one query."""
    found: dict[int | None, _Categories] = {taxpayer_id: {} for taxpayer_id in taxpayer_ids}
    clients = [taxpayer_id for taxpayer_id in taxpayer_ids if taxpayer_id is not None]
    marks = ", ".join("?" * len(clients))
    rows = db.execute(
        "SELECT taxpayer_id, category, channel, email FROM reg_category_preferences WHERE agent_id = ? "  # noqa: S608
        f"AND (taxpayer_id IS NULL OR taxpayer_id IN ({marks})) ORDER BY id",
        (agent_id, *clients),
    )
    for taxpayer_id, category, channel, email in rows:
        if taxpayer_id in found:
            found[taxpayer_id][category] = (channel, email)
    return found


def _preference(
    client: ClientIdentifier | None,
    own: dict[str, Any] | None,
    own_categories: _Categories,
    default: dict[str, Any] | None,
    default_categories: _Categories,
) -> commpref.Preference:
    """The preference as the ATO answers it, each category where its letters go (see the module's order).
    ``own`` and ``own_categories`` are the client's (None and empty for the practice default itself)."""
    categories = []
    for category in commpref.CATEGORIES:
        if category in own_categories:
            (channel, email), follows = own_categories[category], False
        elif own is not None:
            (channel, email), follows = (own["channel"], own["email"]), False
        elif category in default_categories:
            (channel, email), follows = default_categories[category], True
        else:
            channel, email, follows = (default["channel"] if default else ATO_DEFAULT_CHANNEL), None, True
        categories.append(
            commpref.CategoryPreference(category=category, channel=channel, email=email, practice_default=follows)
        )
    whole = own if own is not None else default
    return commpref.Preference(
        client=client,
        channel=whole["channel"] if whole else ATO_DEFAULT_CHANNEL,
        email=own["email"] if own is not None else None,
        practice_default=own is None and not own_categories,
        updated=date.fromisoformat(whole["updated"]) if whole else None,
        categories=categories,
    )


def _answer(ctx: Context, client: ClientIdentifier | None, taxpayer_id: int | None) -> commpref.Preference:
    """The preference of a client (or of the practice default) as it is now."""
    default = _stored(ctx.db, ctx.agent_id, None)
    categories = _stored_categories(ctx.db, ctx.agent_id, [None, taxpayer_id])
    if taxpayer_id is None:
        return _preference(client, None, {}, default, categories[None])
    own = _stored(ctx.db, ctx.agent_id, taxpayer_id)
    return _preference(client, own, categories[taxpayer_id], default, categories[None])


@handles(commpref.GetRequest.SERVICE_ACTION)
def get(ctx: Context, request: commpref.GetRequest) -> commpref.GetResponse:
    """A client without a preference of its own is answered with the practice default, marked as such."""
    return commpref.GetResponse(_answer(ctx, request.client, _client(ctx, request.client)))


@handles(commpref.ListRequest.SERVICE_ACTION)
def list_preferences(ctx: Context, request: commpref.ListRequest) -> commpref.ListResponse:
    """Every client with a current link of the agent, in taxpayer order, a page at a time: one query for the
    page's clients and one each for their preferences, whatever the page size."""
    after = paging.position(_SCOPE, request.continuation)
    if after is None:
        ctx.fail("CMN.ATO.COMMPREF.LST01")
    size = paging.page_size(request.page_size)
    clients = ctx.db.execute(
        "SELECT t.id, t.tfn FROM reg_taxpayers t WHERE t.id > ? AND EXISTS (SELECT 1 FROM reg_links l "
        "WHERE l.agent_id = ? AND l.taxpayer_id = t.id AND l.end_date IS NULL) ORDER BY t.id LIMIT ?",
        (after, ctx.agent_id, size + 1),
    ).fetchall()
    more = len(clients) > size
    clients = clients[:size]
    ids = [int(row[0]) for row in clients]
    default = _stored(ctx.db, ctx.agent_id, None)
    marks = ", ".join("?" * len(ids))
    rows = ctx.db.execute(
        "SELECT taxpayer_id, channel, email, updated_date FROM reg_preferences WHERE agent_id = ? "  # noqa: S608
        f"AND taxpayer_id IN ({marks})",
        (ctx.agent_id, *ids),
    )
    own = {int(row[0]): {"channel": row[1], "email": row[2], "updated": row[3]} for row in rows}
    categories = _stored_categories(ctx.db, ctx.agent_id, [None, *ids])
    preferences = [
        _preference(
            ClientIdentifier.of(tfn=tfn), own.get(taxpayer_id), categories[taxpayer_id], default, categories[None]
        )
        for taxpayer_id, tfn in ((int(row[0]), row[1]) for row in clients)
    ]
    continuation = paging.token(_SCOPE, ids[-1]) if more else None
    return commpref.ListResponse(preferences=preferences, continuation=continuation)


@dataclass(frozen=True)
class _Change:
    taxpayer_id: int | None
    categories: tuple[str, ...]  # empty: every category
    channel: str | None  # None: back to the practice default
    email: str | None


def _check(ctx: Context, request: commpref.PreferenceChange) -> _Change:
    """The rules Validate and Submit share: errors stop the action, warnings are added to the answer."""
    categories = tuple(dict.fromkeys(request.categories))  # a category named twice is changed once
    if _is_bas(ctx) and request.client is not None:
        refused = [c for c in categories if c not in commpref.BAS_CATEGORIES]
        if not categories:
            ctx.fail("CMN.ATO.COMMPREF.CAT02")
        if refused:
            ctx.fail_all([item("CMN.ATO.COMMPREF.CAT01", Category=c) for c in refused])
    taxpayer_id = _client(ctx, request.client, categories)
    if request.use_practice_default:
        if taxpayer_id is None:
            ctx.fail("CMN.ATO.COMMPREF.DEF01")
        if categories:
            had = _stored_categories(ctx.db, ctx.agent_id, [taxpayer_id])[taxpayer_id]
            if not set(categories) & set(had):
                ctx.warn("CMN.ATO.COMMPREF.DEF02")
        elif _stored(ctx.db, ctx.agent_id, taxpayer_id) is None:
            ctx.warn("CMN.ATO.COMMPREF.DEF02")
        return _Change(taxpayer_id, categories, None, None)
    channel = request.channel or ATO_DEFAULT_CHANNEL  # the XSD's choice makes it present here
    email = (request.email or "").strip() or None
    problems = []
    if channel == "EMAIL":
        if taxpayer_id is None:
            problems.append(item("CMN.ATO.COMMPREF.CHN01"))
        if email is None:
            problems.append(item("CMN.ATO.COMMPREF.EML01"))
        elif not email_ok(email):
            problems.append(item("CMN.ATO.COMMPREF.EML02", Email=email))
    elif email is not None:
        ctx.warn("CMN.ATO.COMMPREF.EML03", Channel=channel)
        email = None
    if problems:
        ctx.fail_all(problems)
    return _Change(taxpayer_id, categories, channel, email)


def _apply(ctx: Context, change: _Change) -> None:
    db, agent_id, today = ctx.db, ctx.agent_id, ctx.today.isoformat()
    if change.categories:
        marks = ", ".join("?" * len(change.categories))
        db.execute(
            f"DELETE FROM reg_category_preferences WHERE agent_id = ? AND taxpayer_id IS ? AND category IN ({marks})",  # noqa: S608
            (agent_id, change.taxpayer_id, *change.categories),
        )
        if change.channel is not None:
            db.executemany(
                "INSERT INTO reg_category_preferences (agent_id, taxpayer_id, category, channel, email, updated_date) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(agent_id, change.taxpayer_id, c, change.channel, change.email, today) for c in change.categories],
            )
        return
    # A change for every category replaces the category preferences it covers.
    db.execute(
        "DELETE FROM reg_category_preferences WHERE agent_id = ? AND taxpayer_id IS ?", (agent_id, change.taxpayer_id)
    )
    if change.channel is None:
        db.execute("DELETE FROM reg_preferences WHERE agent_id = ? AND taxpayer_id = ?", (agent_id, change.taxpayer_id))
        return
    values = (change.channel, change.email, today)
    # The table's UNIQUE (agent_id, taxpayer_id) does not hold for the practice default (NULLs are distinct in
    # SQLite), so update first and insert only when there was nothing to update.
    updated = db.execute(
        "UPDATE reg_preferences SET channel = ?, email = ?, updated_date = ? WHERE agent_id = ? AND taxpayer_id IS ?",
        (*values, agent_id, change.taxpayer_id),
    ).rowcount
    if not updated:
        db.execute(
            "INSERT INTO reg_preferences (agent_id, taxpayer_id, channel, email, updated_date) VALUES (?, ?, ?, ?, ?)",
            (agent_id, change.taxpayer_id, *values),
        )


@handles(commpref.ValidateRequest.SERVICE_ACTION)
def validate(ctx: Context, request: commpref.ValidateRequest) -> commpref.ValidateResponse:
    """The preference as Submit would leave it: the change is applied in a savepoint that is then rolled back."""
    change = _check(ctx, request)
    ctx.db.execute("SAVEPOINT commpref_validate")
    try:
        _apply(ctx, change)
        preference = _answer(ctx, request.client, change.taxpayer_id)
    finally:
        ctx.db.execute("ROLLBACK TO commpref_validate")
        ctx.db.execute("RELEASE commpref_validate")
    return commpref.ValidateResponse(preference)


@handles(commpref.SubmitRequest.SERVICE_ACTION)
def submit(ctx: Context, request: commpref.SubmitRequest) -> commpref.SubmitResponse:
    change = _check(ctx, request)
    _apply(ctx, change)
    return commpref.SubmitResponse(_answer(ctx, request.client, change.taxpayer_id))
