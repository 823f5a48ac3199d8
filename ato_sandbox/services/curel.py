"""The stand-in ATO's CUREL actions: search for a client, validate and add links, validate and remove them, list
them."""

from __future__ import annotations

from typing import Any

from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import PersonName

from .base import Context, handles


def _same(a: str | None, b: str | None) -> bool:
    """Names compare as the ATO's matching does: case, surrounding and repeated spaces do not matter."""
    return " ".join((a or "").split()).casefold() == " ".join((b or "").split()).casefold()


def _accounts(ctx: Context, taxpayer_id: int) -> list[curel.FoundAccount]:
    rows = ctx.db.execute(
        "SELECT a.id, a.kind, a.branch, group_concat(r.role, ' ') FROM reg_accounts a "
        "LEFT JOIN reg_roles r ON r.account_id = a.id WHERE a.taxpayer_id = ? GROUP BY a.id ORDER BY a.id",
        (taxpayer_id,),
    ).fetchall()
    return [
        curel.FoundAccount(kind=kind, branch=branch, roles=sorted((roles or "").split()))
        for _id, kind, branch, roles in rows
    ]


def _check_name(ctx: Context, taxpayer: dict[str, Any], request: curel.SearchRequest) -> None:
    if taxpayer["entity"] == "IND":
        if request.person_name is None or not _same(request.person_name.family_name, taxpayer["family_name"]):
            ctx.fail("CMN.ATO.CUREL.SRCH02")
        if request.birth_date is None or request.birth_date.isoformat() != taxpayer["birth_date"]:
            ctx.fail("CMN.ATO.CUREL.SRCH03")
    elif request.organisation_name is None or not (
        _same(request.organisation_name, taxpayer["organisation_name"])
        or _same(request.organisation_name, taxpayer["legal_name"])
    ):
        ctx.fail("CMN.ATO.CUREL.SRCH02")


@handles(curel.SearchRequest.SERVICE_ACTION)
def search(ctx: Context, request: curel.SearchRequest) -> curel.SearchResponse:
    """An identifier must be found and the name (and an individual's date of birth) must match it."""
    ident = request.client
    taxpayer = ctx.find_taxpayer(tfn=ident.tfn, abn=ident.abn, wpn=ident.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.CUREL.SRCH01")
    _check_name(ctx, taxpayer, request)
    linked = ctx.db.execute(
        "SELECT 1 FROM reg_links WHERE agent_id = ? AND taxpayer_id = ? AND end_date IS NULL LIMIT 1",
        (ctx.agent_id, taxpayer["id"]),
    ).fetchone()
    individual = taxpayer["entity"] == "IND"
    return curel.SearchResponse(
        client=curel.FoundClient(
            entity_type=taxpayer["entity"],
            person_name=(
                PersonName(taxpayer["family_name"], taxpayer["given_name"], taxpayer["other_given_name"])
                if individual
                else None
            ),
            organisation_name=None if individual else taxpayer["organisation_name"],
            birth_date=request.birth_date if individual else None,
            abn=taxpayer["abn"],
            accounts=_accounts(ctx, int(taxpayer["id"])),
            existing_relationship=linked is not None,
        )
    )
