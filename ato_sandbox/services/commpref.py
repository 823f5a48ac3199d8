"""The stand-in ATO's COMMPREF actions: get, validate and submit the practice's default communication preference
and its clients' own preferences (overrides of the default).

A preference is a row of ``reg_preferences``: ``taxpayer_id`` NULL for the practice default. A practice that never
set one gets the ATO's default, ELEC (letters to the agent's online inbox).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from typing import Any

from ato_gateway.wire.documents import commpref
from ato_gateway.wire.documents.common import ClientIdentifier

from ..errors import item
from .base import Context, handles
from .cuaddr import email_ok

ATO_DEFAULT_CHANNEL = "ELEC"


def _client(ctx: Context, client: ClientIdentifier | None) -> int | None:
    """The taxpayer a request is about (None: the practice default). A client's preference redirects all of its
    letters, so it takes a link that covers the whole client."""
    if client is None:
        return None
    taxpayer = ctx.find_taxpayer(tfn=client.tfn, abn=client.abn, wpn=client.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.GEN.ID01")
    ctx.require_link(int(taxpayer["id"]))
    return int(taxpayer["id"])


def _stored(db: sqlite3.Connection, agent_id: int, taxpayer_id: int | None) -> dict[str, Any] | None:
    # ``IS ?`` matches NULL too, so one query serves the practice default and a client's own preference.
    row = db.execute(
        "SELECT channel, email, updated_date FROM reg_preferences WHERE agent_id = ? AND taxpayer_id IS ? "
        "ORDER BY id DESC LIMIT 1",
        (agent_id, taxpayer_id),
    ).fetchone()
    return None if row is None else {"channel": row[0], "email": row[1], "updated": row[2]}


def _practice_default(ctx: Context, client: ClientIdentifier | None) -> commpref.Preference:
    row = _stored(ctx.db, ctx.agent_id, None)
    return commpref.Preference(
        client=client,
        channel=row["channel"] if row else ATO_DEFAULT_CHANNEL,
        practice_default=True,
        updated=date.fromisoformat(row["updated"]) if row else None,
    )


@handles(commpref.GetRequest.SERVICE_ACTION)
def get(ctx: Context, request: commpref.GetRequest) -> commpref.GetResponse:
    """A client without a preference of its own is answered with the practice default, marked as such."""
    taxpayer_id = _client(ctx, request.client)
    own = _stored(ctx.db, ctx.agent_id, taxpayer_id) if taxpayer_id is not None else None
    if own is None:
        return commpref.GetResponse(_practice_default(ctx, request.client))
    preference = commpref.Preference(
        client=request.client,
        channel=own["channel"],
        email=own["email"],
        practice_default=False,
        updated=date.fromisoformat(own["updated"]),
    )
    return commpref.GetResponse(preference)


@dataclass(frozen=True)
class _Change:
    taxpayer_id: int | None
    preference: commpref.Preference  # as Submit leaves it
    drop: bool  # the client returns to the practice default


def _check(ctx: Context, request: commpref.PreferenceChange) -> _Change:
    """The rules Validate and Submit share: errors stop the action, warnings are added to the answer."""
    taxpayer_id = _client(ctx, request.client)
    if request.use_practice_default:
        if taxpayer_id is None:
            ctx.fail("CMN.ATO.COMMPREF.DEF01")
        if _stored(ctx.db, ctx.agent_id, taxpayer_id) is None:
            ctx.warn("CMN.ATO.COMMPREF.DEF02")
        return _Change(taxpayer_id, _practice_default(ctx, request.client), drop=True)
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
    preference = commpref.Preference(
        client=request.client, channel=channel, email=email, practice_default=taxpayer_id is None, updated=ctx.today
    )
    return _Change(taxpayer_id, preference, drop=False)


@handles(commpref.ValidateRequest.SERVICE_ACTION)
def validate(ctx: Context, request: commpref.ValidateRequest) -> commpref.ValidateResponse:
    return commpref.ValidateResponse(_check(ctx, request).preference)


@handles(commpref.SubmitRequest.SERVICE_ACTION)
def submit(ctx: Context, request: commpref.SubmitRequest) -> commpref.SubmitResponse:
    change = _check(ctx, request)
    db, agent_id = ctx.db, ctx.agent_id
    if change.drop:
        db.execute("DELETE FROM reg_preferences WHERE agent_id = ? AND taxpayer_id = ?", (agent_id, change.taxpayer_id))
        return commpref.SubmitResponse(change.preference)
    values = (change.preference.channel, change.preference.email, ctx.today.isoformat())
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
    return commpref.SubmitResponse(change.preference)
