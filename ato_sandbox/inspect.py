"""The stand-in ATO's inspection pages (``/_inspect/``): who is linked to whom, what arrived and what it answered,
so that a demo or a test can see the effect of what the portal sent.

Plain HTML from the sandbox's own storage; no Django (the sandbox shares nothing with the portal). Everything
shown is escaped. The register is synthetic, but TFNs are masked here all the same: the pages are meant to be
shown on screens, and the habit matters more than the data.
"""

from __future__ import annotations

import html
import sqlite3
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

from . import register

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchange_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    agent_tan TEXT,
    sender_abn TEXT,
    codes TEXT NOT NULL
);
"""
KEEP_ROWS = 5000  # the log is for looking at, not an archive: it keeps the latest exchanges only
PAGE_ROWS = 200


def create_schema(db: sqlite3.Connection) -> None:
    db.execute(SCHEMA)


def record(
    db: sqlite3.Connection,
    *,
    message_id: str,
    action: str,
    agent_tan: str | None,
    sender_abn: str | None,
    codes: Sequence[str],
) -> None:
    """Note a business exchange, inside the transaction that applies it."""
    cursor = db.execute(
        "INSERT INTO exchange_log (at, message_id, action, agent_tan, sender_abn, codes) VALUES (?, ?, ?, ?, ?, ?)",
        (time.time(), message_id, action, agent_tan, sender_abn, " ".join(codes)),
    )
    seq = cursor.lastrowid or 0
    if seq % 500 == 0:
        db.execute("DELETE FROM exchange_log WHERE seq <= ?", (seq - KEEP_ROWS,))


def mask_tfn(tfn: str | None) -> str:
    return f"*** *** {tfn[-3:]}" if tfn else ""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headings: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: set[int] | None = None) -> str:
    """A table; cells are escaped unless their column is in ``raw`` (links this module built itself)."""
    if not rows:
        return "<p class=empty>None.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw and i in raw else _e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> bytes:
    style = (
        "body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}"
        "nav a{margin-right:1em}.empty{color:#777}"
    )
    nav = '<nav><a href="/_inspect/">Overview</a><a href="/_inspect/messages">Exchanges</a></nav>'
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)} · stand-in ATO</title>"
        f"<style>{style}</style></head><body>{nav}<h1>{_e(title)}</h1>{body}</body></html>"
    ).encode()


def _name(row: dict[str, Any]) -> str:
    if row.get("entity") == "IND":
        return f"{row.get('given_name') or ''} {row.get('family_name') or ''}".strip()
    return str(row.get("organisation_name") or "")


def overview(db: sqlite3.Connection) -> bytes:
    counts = [(t, db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in register.TABLES]  # noqa: S608
    agents = db.execute(
        "SELECT a.tan, a.name, a.kind, a.abn, (SELECT count(DISTINCT taxpayer_id) FROM reg_links l "
        "WHERE l.agent_id = a.id AND l.end_date IS NULL) FROM reg_agents a ORDER BY a.id"
    ).fetchall()
    rows = [
        (f'<a href="/_inspect/agent/{_e(tan)}">{_e(tan)}</a>', name, kind, abn, n) for tan, name, kind, abn, n in agents
    ]
    body = (
        "<h2>Agents</h2>"
        + _table(["Agent number", "Name", "Kind", "ABN", "Current clients"], rows, raw={0})
        + "<h2>Register</h2>"
        + _table(["Table", "Rows"], counts)
    )
    return _page("Stand-in ATO", body)


def agent(db: sqlite3.Connection, tan: str, query: str) -> bytes | None:
    found = register.agent_by_tan(db, tan)
    if found is None:
        return None
    # The position after the last row shown: (taxpayer id, link id), as a client's links may span two pages.
    after_taxpayer, _, after_link = parse_qs(query).get("after", ["0"])[0].partition("-")
    if not (after_taxpayer or "0").isdigit() or not (after_link or "0").isdigit():
        return None
    after = (int(after_taxpayer or 0), int(after_link or 0))
    links = db.execute(
        "SELECT l.taxpayer_id, l.id, t.tfn, t.entity, t.family_name, t.given_name, t.organisation_name, l.level, "
        "acc.kind, acc.branch, l.role, l.start_date, l.end_date, l.ended_reason FROM reg_links l "
        "JOIN reg_taxpayers t ON t.id = l.taxpayer_id LEFT JOIN reg_accounts acc ON acc.id = l.account_id "
        "WHERE l.agent_id = ? AND (l.taxpayer_id, l.id) > (?, ?) ORDER BY l.taxpayer_id, l.id LIMIT ?",
        (found["id"], *after, PAGE_ROWS),
    ).fetchall()
    rows = []
    for tid, _lid, tfn, entity, family, given, org, level, kind, branch, role, start, end, reason in links:
        name = _name({"entity": entity, "family_name": family, "given_name": given, "organisation_name": org})
        account = f"{kind} {branch or ''}".strip() if kind else ""
        link = f'<a href="/_inspect/taxpayer/{int(tid)}">{_e(name)}</a>'
        rows.append((link, mask_tfn(tfn), level, account, role or "", start, end or "current", reason or ""))
    more = ""
    if len(links) == PAGE_ROWS:
        last = f"{int(links[-1][0])}-{int(links[-1][1])}"
        more = f'<p><a href="/_inspect/agent/{_e(tan)}?after={last}">Next page</a></p>'
    body = (
        f"<p>{_e(found['name'])} · {_e(found['kind'])} agent · ABN {_e(found['abn'])}</p>"
        + _table(["Client", "TFN", "Level", "Account", "Role", "Start", "End", "Why ended"], rows, raw={0})
        + more
    )
    return _page(f"Agent {tan}", body)


def _section(db: sqlite3.Connection, title: str, sql: str, taxpayer_id: int, headings: list[str]) -> str:
    return f"<h2>{_e(title)}</h2>" + _table(headings, db.execute(sql, (taxpayer_id,)).fetchall())


def taxpayer(db: sqlite3.Connection, taxpayer_id: int) -> bytes | None:
    db.row_factory = sqlite3.Row
    try:
        row = db.execute("SELECT * FROM reg_taxpayers WHERE id = ?", (taxpayer_id,)).fetchone()
    finally:
        db.row_factory = None
    if row is None:
        return None
    person = dict(row)
    facts = [
        ("TFN", mask_tfn(person["tfn"])),
        ("ABN", person["abn"] or ""),
        ("Entity", person["entity"]),
        ("Born", person["birth_date"] or ""),
        ("Died", person["death_date"] or ""),
    ]
    body = _table(["", ""], facts) + "".join(
        _section(db, title, sql, taxpayer_id, headings)
        for title, sql, headings in (
            (
                "Links",
                "SELECT a.tan, a.name, l.level, acc.kind, acc.branch, l.role, l.start_date, l.end_date, "
                "l.ended_reason FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id LEFT JOIN reg_accounts acc "
                "ON acc.id = l.account_id WHERE l.taxpayer_id = ? ORDER BY l.end_date IS NOT NULL, l.id",
                ["Agent", "Name", "Level", "Account", "Branch", "Role", "Start", "End", "Why ended"],
            ),
            (
                "Accounts",
                "SELECT acc.kind, acc.branch, acc.start_date, (SELECT group_concat(role, ' ') FROM reg_roles r "
                "WHERE r.account_id = acc.id) FROM reg_accounts acc WHERE acc.taxpayer_id = ? ORDER BY acc.id",
                ["Kind", "Branch", "Since", "Roles"],
            ),
            (
                "Addresses",
                "SELECT usage, line1, locality, state, postcode, phone, email, start_date, end_date "
                "FROM reg_addresses WHERE taxpayer_id = ? ORDER BY usage, start_date",
                ["Usage", "Line 1", "Locality", "State", "Postcode", "Phone", "Email", "Start", "End"],
            ),
            (
                "Bank accounts",
                "SELECT bsb, '***' || substr(number, -3), account_name, start_date, end_date FROM reg_bank_accounts "
                "WHERE taxpayer_id = ? ORDER BY start_date",
                ["BSB", "Account", "Name", "Start", "End"],
            ),
            (
                "Communications",
                "SELECT id, kind, title, issued_date FROM reg_communications WHERE taxpayer_id = ? "
                "ORDER BY issued_date DESC LIMIT 50",
                ["Id", "Kind", "Title", "Issued"],
            ),
        )
    )
    return _page(_name(person) or f"Taxpayer {taxpayer_id}", body)


def messages(db: sqlite3.Connection) -> bytes:
    rows = db.execute(
        "SELECT datetime(at, 'unixepoch'), action, agent_tan, sender_abn, codes, message_id FROM exchange_log "
        "ORDER BY seq DESC LIMIT ?",
        (PAGE_ROWS,),
    ).fetchall()
    table = _table(["When (UTC)", "Action", "Agent", "Sender ABN", "Answer", "MessageId"], rows)
    return _page("Exchanges", "<p>The latest business messages and the codes answered.</p>" + table)


def page(db: sqlite3.Connection, path: str, query: str) -> bytes | None:
    """The page for a path under /_inspect/, or None for 404."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return overview(db)
    if parts == ["messages"]:
        return messages(db)
    if len(parts) == 2 and parts[0] == "agent":
        return agent(db, parts[1], query)
    if len(parts) == 2 and parts[0] == "taxpayer" and parts[1].isdigit():
        return taxpayer(db, int(parts[1]))
    return None
