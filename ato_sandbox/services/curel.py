"""The stand-in ATO's CUREL actions: search for a client, validate and add links, validate and remove them, list
them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import Account, PersonName
from ato_gateway.wire.events import EventItem

from .. import errors
from . import paging
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


def _check_name(ctx: Context, taxpayer: dict[str, Any], request: curel.SearchRequest | curel.AddLinks) -> None:
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


# --- links ---------------------------------------------------------------------------------------------------------
#
# A link is at one level: CLIENT (every account and role), ACCOUNT (one account and its roles) or ROLE (one role of
# an activity statement account). Only one agent holds a given link at a time, so adding a link ends every other
# agent's current link that lies within what the new one covers (the same link, or a narrower one): a client-level
# link ends the other agents' client, account and role links to that client; an account-level link ends their link
# to that account and to its roles; a role-level link ends their link to that role. Another agent's broader link is
# left alone: a role added under someone else's client- or account-level link sits beside it, as the register's
# history has it (a BAS agent's GST role under a tax agent's client link).

_ROLE_NAMES = {
    "GST": "GST",
    "PAYGW": "PAYG withholding",
    "PAYGI": "PAYG instalments",
    "FBTI": "FBT instalments",
    "FTC": "fuel tax credits",
    "WET": "wine equalisation tax",
    "LCT": "luxury car tax",
}
_ACCOUNT_NAMES = {"ITX": "income tax account", "AS": "activity statement account", "FBT": "fringe benefits tax account"}
_SHAPES = {  # level: (has an account, has a role), and what the error says when a request gets that wrong
    "CLIENT": ((False, False), "takes no account and no role"),
    "ACCOUNT": ((True, False), "needs an account and no role"),
    "ROLE": ((True, True), "needs an activity statement account and a role"),
}


def _account_label(kind: str | None, branch: str | None) -> str:
    name = _ACCOUNT_NAMES.get(kind or "", f"{kind} account")
    return f"{name} {branch}" if branch else name


@dataclass(frozen=True)
class _Target:
    """A requested level resolved against the register: the account's id, type and branch when it has one."""

    level: str
    account_id: int | None = None
    kind: str | None = None
    branch: str | None = None
    role: str | None = None

    @classmethod
    def of_link(cls, link: dict[str, Any]) -> _Target:
        return cls(link["level"], link["account_id"], link["kind"], link["branch"], link["role"])

    @property
    def key(self) -> tuple[str, int | None, str | None]:
        return (self.level, self.account_id, self.role)

    @property
    def label(self) -> str:
        """What the link is for, as a sentence ends: "PAYG withholding on activity statement account 001"."""
        if self.level == "CLIENT":
            return "the client"
        account = _account_label(self.kind, self.branch)
        return f"{_ROLE_NAMES.get(self.role or '', self.role)} on {account}" if self.role else account

    @property
    def account(self) -> Account | None:
        return Account(self.kind, self.branch) if self.kind else None

    def covers(self, other: _Target) -> bool:
        """True when ``other`` is this link or lies within it."""
        if self.level == "CLIENT":
            return True
        if other.level == "CLIENT" or other.account_id != self.account_id:
            return False
        return self.level == "ACCOUNT" or (other.level == "ROLE" and other.role == self.role)

    def parameters(self) -> dict[str, str]:
        return {
            "Level": self.level,
            "AccountType": self.kind or "",
            "Branch": self.branch or "",
            "Role": self.role or "",
            "Covers": self.label,
        }


def _resolve(ctx: Context, taxpayer_id: int, relationship: curel.Relationship) -> _Target | EventItem:
    """The requested level against the client's accounts and roles, or the error item saying why it cannot be."""
    level, account, role = relationship.level, relationship.account, relationship.role
    shape, detail = _SHAPES[level]
    if (account is not None, role is not None) != shape:
        return errors.item("CMN.ATO.CUREL.LNK01", Level=level, Detail=detail)
    if account is None:
        return _Target("CLIENT")
    label = _account_label(account.kind, account.branch)
    row = ctx.db.execute(
        "SELECT id FROM reg_accounts WHERE taxpayer_id = ? AND kind = ? AND branch IS ?",
        (taxpayer_id, account.kind, account.branch),
    ).fetchone()
    if row is None:
        return errors.item("CMN.ATO.CUREL.LNK02", Account=label)
    if (
        role is not None
        and not ctx.db.execute("SELECT 1 FROM reg_roles WHERE account_id = ? AND role = ?", (row[0], role)).fetchone()
    ):
        return errors.item("CMN.ATO.CUREL.LNK03", Account=label, Role=role)
    return _Target(level, int(row[0]), account.kind, account.branch, role)


def _targets(ctx: Context, taxpayer_id: int, relationships: list[curel.Relationship]) -> list[_Target]:
    """Every requested level resolved, or a failure carrying every problem at once (so one answer lists them all).
    A BAS agent acts on activity statement accounts and their roles only."""
    targets: list[_Target] = []
    problems: list[EventItem] = []
    bas = ctx.agent is not None and ctx.agent["kind"] == "BAS"
    for relationship in relationships:
        resolved = _resolve(ctx, taxpayer_id, relationship)
        if isinstance(resolved, EventItem):
            problems.append(resolved)
        elif bas and resolved.kind != "AS":
            problems.append(errors.item("CMN.ATO.CUREL.LNK04", Covers=resolved.label))
        else:
            targets.append(resolved)
    if problems:
        ctx.fail_all(problems)
    return targets


def _current_links(ctx: Context, taxpayer_id: int) -> list[dict[str, Any]]:
    """Every agent's current links to the client, with the account's type and branch and the agent's number and
    name (the warnings name the agent whose link a change ends)."""
    cursor = ctx.db.execute(
        "SELECT l.id, l.agent_id, l.level, l.account_id, l.role, l.start_date, a.kind, a.branch, g.tan, g.name "
        "FROM reg_links l LEFT JOIN reg_accounts a ON a.id = l.account_id JOIN reg_agents g ON g.id = l.agent_id "
        "WHERE l.taxpayer_id = ? AND l.end_date IS NULL ORDER BY l.id",
        (taxpayer_id,),
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- Validate and Submit -------------------------------------------------------------------------------------------


@dataclass
class _AddPlan:
    taxpayer_id: int
    outcomes: list[curel.AddedRelationship]
    new: list[_Target]
    superseded: list[dict[str, Any]]  # other agents' current links the new ones end


def _plan_add(ctx: Context, request: curel.AddLinks) -> _AddPlan:
    """The rules Validate and Submit share. Nothing is written here: Validate reports the plan, Submit applies it.
    Broader requested links are placed first, so a narrower one in the same request is reported as covered."""
    taxpayer = ctx.find_taxpayer(tfn=request.client.tfn, abn=request.client.abn, wpn=request.client.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.CUREL.SRCH01")
    _check_name(ctx, taxpayer, request)
    taxpayer_id = int(taxpayer["id"])
    targets = _targets(ctx, taxpayer_id, request.relationships)
    links = _current_links(ctx, taxpayer_id)
    mine = {_Target.of_link(link).key for link in links if link["agent_id"] == ctx.agent_id}
    others = [link for link in links if link["agent_id"] != ctx.agent_id]
    plan = _AddPlan(taxpayer_id, [], [], [])
    outcomes: dict[int, curel.AddedRelationship] = {}
    for index in sorted(range(len(targets)), key=lambda i: curel.LEVELS.index(targets[i].level)):
        target = targets[index]
        # Only the same link counts as one the agent already has: a role link under the agent's own client link is
        # a link of its own (it is how an agent takes a role over from another agent).
        existing = target.key in mine or any(new.key == target.key for new in plan.new)
        status = "EXISTING" if existing else "NEW"
        outcomes[index] = curel.AddedRelationship(
            level=target.level, account=target.account, role=target.role, status=status, start_date=ctx.today
        )
        if existing:
            ctx.inform("CMN.ATO.CUREL.LNK05", Covers=target.label)
            continue
        plan.new.append(target)
        for link in others:
            if target.covers(_Target.of_link(link)) and link not in plan.superseded:
                plan.superseded.append(link)
    plan.outcomes = [outcomes[i] for i in range(len(targets))]
    return plan


def _superseded(ctx: Context, plan: _AddPlan, code: str) -> list[curel.SupersededRelationship]:
    """The other agents' links the plan ends, as event items (``code``) and as the response's entries."""
    out = []
    for link in plan.superseded:
        target = _Target.of_link(link)
        ctx.inform(code, AgentName=link["name"], AgentNumber=link["tan"], **target.parameters())
        out.append(
            curel.SupersededRelationship(
                agent_number=link["tan"],
                agent_name=link["name"],
                level=target.level,
                account=target.account,
                role=target.role,
                start_date=date.fromisoformat(link["start_date"]),
                end_date=ctx.today,
            )
        )
    return out


@handles(curel.ValidateRequest.SERVICE_ACTION)
def validate(ctx: Context, request: curel.ValidateRequest) -> curel.ValidateResponse:
    """What Submit would do, changing nothing: each other agent's link it would end is a Warning naming them."""
    plan = _plan_add(ctx, request)
    superseded = _superseded(ctx, plan, "CMN.ATO.CUREL.LNK06")
    return curel.ValidateResponse(relationships=plan.outcomes, superseded=superseded)


@handles(curel.SubmitRequest.SERVICE_ACTION)
def submit(ctx: Context, request: curel.SubmitRequest) -> curel.SubmitResponse:
    """Add the links from today and end the other agents' links they supersede (reported as Information)."""
    plan = _plan_add(ctx, request)
    today = ctx.today.isoformat()
    ctx.db.executemany(
        "UPDATE reg_links SET end_date = ?, ended_reason = 'SUPERSEDED' WHERE id = ?",
        [(today, link["id"]) for link in plan.superseded],
    )
    ctx.db.executemany(
        "INSERT INTO reg_links (agent_id, taxpayer_id, level, account_id, role, start_date) VALUES (?, ?, ?, ?, ?, ?)",
        [(ctx.agent_id, plan.taxpayer_id, t.level, t.account_id, t.role, today) for t in plan.new],
    )
    superseded = _superseded(ctx, plan, "CMN.ATO.CUREL.LNK07")
    return curel.SubmitResponse(relationships=plan.outcomes, superseded=superseded)


# --- ValidateRemove and Remove -------------------------------------------------------------------------------------


@dataclass
class _RemovePlan:
    ending: list[dict[str, Any]]
    access_remains: bool

    def response(self, ctx: Context) -> list[curel.ListedRelationship]:
        return [
            curel.ListedRelationship(
                level=link["level"],
                account=_Target.of_link(link).account,
                role=link["role"],
                start_date=date.fromisoformat(link["start_date"]),
                end_date=ctx.today,
                end_reason="REMOVED",
            )
            for link in self.ending
        ]


def _plan_remove(ctx: Context, request: curel.RemoveLinks) -> _RemovePlan:
    """The rules ValidateRemove and Remove share: each level names exactly one of the agent's own current links
    (removing a client-level link leaves the agent's account and role links as they are). Without any current link
    to the client the agent may not act on it at all."""
    taxpayer = ctx.find_taxpayer(tfn=request.client.tfn, abn=request.client.abn, wpn=request.client.wpn)
    if taxpayer is None:
        ctx.fail("CMN.ATO.GEN.ID01")
    taxpayer_id = int(taxpayer["id"])
    mine = [link for link in _current_links(ctx, taxpayer_id) if link["agent_id"] == ctx.agent_id]
    if not mine:
        ctx.fail("CMN.ATO.AUTH.002", Level="this client")
    targets = _targets(ctx, taxpayer_id, request.relationships)
    ending: list[dict[str, Any]] = []
    problems = []
    for target in targets:
        link = next((link for link in mine if _Target.of_link(link).key == target.key), None)
        if link is None:
            problems.append(errors.item("CMN.ATO.CUREL.REM01", Covers=target.label))
        elif link not in ending:
            ending.append(link)
    if problems:
        ctx.fail_all(problems)
    return _RemovePlan(ending, access_remains=len(ending) < len(mine))


@handles(curel.ValidateRemoveRequest.SERVICE_ACTION)
def validate_remove(ctx: Context, request: curel.ValidateRemoveRequest) -> curel.ValidateRemoveResponse:
    plan = _plan_remove(ctx, request)
    if not plan.access_remains:
        ctx.warn("CMN.ATO.CUREL.REM02")
    return curel.ValidateRemoveResponse(relationships=plan.response(ctx), access_remains=plan.access_remains)


@handles(curel.RemoveRequest.SERVICE_ACTION)
def remove(ctx: Context, request: curel.RemoveRequest) -> curel.RemoveResponse:
    plan = _plan_remove(ctx, request)
    ctx.db.executemany(
        "UPDATE reg_links SET end_date = ?, ended_reason = 'REMOVED' WHERE id = ?",
        [(ctx.today.isoformat(), link["id"]) for link in plan.ending],
    )
    if not plan.access_remains:
        ctx.inform("CMN.ATO.CUREL.REM03")
    return curel.RemoveResponse(relationships=plan.response(ctx), access_remains=plan.access_remains)


# --- List ----------------------------------------------------------------------------------------------------------

_LIST_SCOPE = "curel-list"  # the continuation's scope (paging.token): the agent's client list


def _selection(ctx: Context, request: curel.ListRequest) -> tuple[str, list[Any]]:
    """The agent's links a list shows: current ones, and with IncludeEndedI those ended within the period (any
    time without one); for one client only, when it names one (a client the agent has nothing to show for is
    refused as any unlinked client is)."""
    sql = "l.agent_id = ? AND (l.end_date IS NULL"
    params: list[Any] = [ctx.agent_id]
    if request.include_ended:
        period = request.ended_period
        if period is not None and period.end is not None and period.end < period.start:
            ctx.fail("CMN.ATO.CUREL.LST02", Start=period.start.isoformat(), End=period.end.isoformat())
        sql += " OR l.end_date BETWEEN ? AND ?"
        params += [
            period.start.isoformat() if period else "0000-01-01",
            period.end.isoformat() if period and period.end else "9999-12-31",
        ]
    sql += ")"
    if request.client is not None:
        ident = request.client
        taxpayer = ctx.find_taxpayer(tfn=ident.tfn, abn=ident.abn, wpn=ident.wpn)
        if taxpayer is None:
            ctx.fail("CMN.ATO.GEN.ID01")
        sql += " AND l.taxpayer_id = ?"
        params.append(int(taxpayer["id"]))
    return sql, params


def _listed_client(taxpayer: dict[str, Any], links: list[curel.ListedRelationship]) -> curel.ListedClient:
    individual = taxpayer["entity"] == "IND"
    return curel.ListedClient(
        tfn=taxpayer["tfn"],
        abn=taxpayer["abn"],
        wpn=taxpayer["wpn"],
        entity_type=taxpayer["entity"],
        person_name=(
            PersonName(taxpayer["family_name"], taxpayer["given_name"], taxpayer["other_given_name"])
            if individual
            else None
        ),
        organisation_name=None if individual else taxpayer["organisation_name"],
        birth_date=date.fromisoformat(taxpayer["birth_date"]) if individual and taxpayer["birth_date"] else None,
        relationships=links,
    )


@handles(curel.ListRequest.SERVICE_ACTION)
def list_links(ctx: Context, request: curel.ListRequest) -> curel.ListResponse:
    """One page of the agent's clients in register order, each with its links; a continuation while more remain.
    Pages are keyset positions, so a change between pages neither repeats nor skips a client."""
    size = paging.page_size(request.page_size)
    after = paging.position(_LIST_SCOPE, request.continuation)
    if after is None:
        ctx.fail("CMN.ATO.CUREL.LST01")
    where, params = _selection(ctx, request)
    ids = [
        int(row[0])
        for row in ctx.db.execute(
            f"SELECT DISTINCT l.taxpayer_id FROM reg_links l WHERE {where} AND l.taxpayer_id > ? "  # noqa: S608
            "ORDER BY l.taxpayer_id LIMIT ?",
            [*params, after, size + 1],
        )
    ]
    if not ids and request.client is not None:
        ctx.fail("CMN.ATO.AUTH.002", Level="this client")
    more, ids = len(ids) > size, ids[:size]
    marks = ",".join("?" * len(ids))
    links: dict[int, list[curel.ListedRelationship]] = {i: [] for i in ids}
    for taxpayer_id, level, role, start, end, reason, kind, branch in ctx.db.execute(
        "SELECT l.taxpayer_id, l.level, l.role, l.start_date, l.end_date, l.ended_reason, a.kind, a.branch "  # noqa: S608
        f"FROM reg_links l LEFT JOIN reg_accounts a ON a.id = l.account_id WHERE {where} "
        f"AND l.taxpayer_id IN ({marks}) ORDER BY l.taxpayer_id, l.id",
        [*params, *ids],
    ):
        links[taxpayer_id].append(
            curel.ListedRelationship(
                level=level,
                account=Account(kind, branch) if kind else None,
                role=role,
                start_date=date.fromisoformat(start),
                end_date=date.fromisoformat(end) if end else None,
                end_reason=reason if end else None,
            )
        )
    cursor = ctx.db.execute(f"SELECT * FROM reg_taxpayers WHERE id IN ({marks}) ORDER BY id", ids)  # noqa: S608
    names = [column[0] for column in cursor.description]
    taxpayers = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    clients = [_listed_client(taxpayer, links[int(taxpayer["id"])]) for taxpayer in taxpayers]
    return curel.ListResponse(clients=clients, continuation=paging.token(_LIST_SCOPE, ids[-1]) if more else None)
