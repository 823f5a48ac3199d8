"""The stand-in ATO's CUASSOC action: list a client's associates, a page at a time."""

from __future__ import annotations

from datetime import date
from typing import Any

from ato_gateway.wire.documents import cuassoc
from ato_gateway.wire.documents.common import ClientIdentifier, Period

from .. import register
from . import paging
from .base import Context, handles
from .cuaddr import client, rows


def _identifier(ctx: Context, row: dict[str, Any]) -> ClientIdentifier | None:
    """An identifier of an associate that is in the register. An ABN or WPN is public; a TFN is given only when the
    agent also acts for the associate, as the ATO does not disclose one taxpayer's TFN to another's agent."""
    if row["t_id"] is None:
        return None
    if row["abn"]:
        return ClientIdentifier(abn=row["abn"])
    if row["wpn"]:
        return ClientIdentifier(wpn=row["wpn"])
    if register.has_access(ctx.db, ctx.agent_id, int(row["t_id"])):
        return ClientIdentifier(tfn=row["tfn"])
    return None


def _associate(ctx: Context, row: dict[str, Any]) -> cuassoc.Associate:
    end = date.fromisoformat(row["end_date"]) if row["end_date"] else None
    return cuassoc.Associate(
        relationship=row["relationship"],
        name=row["name"],
        entity_type=row["entity"],
        identifier=_identifier(ctx, row),
        period=Period(date.fromisoformat(row["start_date"]), end),
    )


@handles(cuassoc.ListRequest.SERVICE_ACTION)
def list_associates(ctx: Context, request: cuassoc.ListRequest) -> cuassoc.ListResponse:
    """One page in the order the ATO recorded the associates; only current ones unless the history is asked for.
    Associates are the client's, not an account's: a client-level link is needed."""
    taxpayer_id = int(client(ctx, request.client)["id"])
    ctx.require_link(taxpayer_id)
    scope = f"cuassoc:{taxpayer_id}"
    after = paging.position(scope, request.continuation)
    if after is None:
        ctx.fail("CMN.ATO.CUASSOC.LST01")
    size = paging.page_size(request.page_size)
    found = rows(
        ctx.db.execute(
            "SELECT a.*, t.id AS t_id, t.entity, t.tfn, t.abn, t.wpn FROM reg_associates a "
            "LEFT JOIN reg_taxpayers t ON t.id = a.associate_id "
            "WHERE a.taxpayer_id = ? AND a.id > ? AND (? OR a.end_date IS NULL) ORDER BY a.id LIMIT ?",
            (taxpayer_id, after, int(request.include_history), size + 1),
        )
    )
    page = found[:size]
    return cuassoc.ListResponse(
        associates=[_associate(ctx, r) for r in page],
        continuation=paging.token(scope, int(page[-1]["id"])) if len(found) > size else None,
    )
