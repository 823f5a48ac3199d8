"""The stand-in ATO's inspection pages show what arrived, what it answered and who is linked to whom."""

from __future__ import annotations

import re
import sqlite3
from datetime import date

import pytest
import requests

from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from ato_sandbox import inspect, register
from tests.ato_fixtures import AGENT_TAN, Ato

pytestmark = pytest.mark.django_db(transaction=True)


def _get(ato: Ato, path: str) -> requests.Response:
    return requests.get(f"{ato.sandbox.url}/_inspect{path}", timeout=30)


def test_pages_show_exchanges_links_and_no_full_tfn(ato: Ato):
    person = ato.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a ON "
        "a.id = l.agent_id WHERE a.tan = ? AND t.entity = 'IND' AND l.end_date IS NULL ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]
    client = ClientIdentifier.of(tfn=person["tfn"])
    reply = ato.result(
        curel.SearchRequest(
            client=client,
            person_name=PersonName(person["family_name"]),
            birth_date=date.fromisoformat(person["birth_date"]),
        )
    )
    assert reply.ok
    wrong = curel.SearchRequest(client=client, person_name=PersonName("Wrong"), birth_date=date(2000, 1, 1))
    message = ato.ask(wrong).message
    exchanges = _get(ato, "/messages")
    assert exchanges.status_code == 200
    assert "CUREL.Search.004.00" in exchanges.text and "GEN.OK" in exchanges.text
    assert "CMN.ATO.CUREL.SRCH02" in exchanges.text and message.message_id in exchanges.text

    overview = _get(ato, "/")
    assert AGENT_TAN in overview.text and "reg_links" in overview.text
    agent_page = _get(ato, f"/agent/{AGENT_TAN}")
    assert agent_page.status_code == 200 and person["family_name"] in agent_page.text
    taxpayer_page = _get(ato, f"/taxpayer/{person['id']}")
    assert taxpayer_page.status_code == 200 and AGENT_TAN in taxpayer_page.text
    for page in (overview, agent_page, taxpayer_page, exchanges):
        assert person["tfn"] not in page.text  # masked: only the last three digits show
    assert f"*** *** {person['tfn'][-3:]}" in taxpayer_page.text


def test_unknown_pages_are_404(ato: Ato):
    assert _get(ato, "/agent/00000000").status_code == 404
    assert _get(ato, "/taxpayer/999999999").status_code == 404
    assert _get(ato, "/nothing").status_code == 404


def test_agent_page_pages_through_every_link_when_a_client_has_several(monkeypatch: pytest.MonkeyPatch):
    db = sqlite3.connect(":memory:", isolation_level=None)
    register.create_schema(db)
    db.execute("INSERT INTO reg_agents (id, tan, abn, name, kind) VALUES (1, 'A1', '51824753556', 'One', 'TAX')")
    for taxpayer in (1, 2, 3):
        db.execute(
            "INSERT INTO reg_taxpayers (id, tfn, entity, organisation_name) VALUES (?, ?, 'COY', ?)",
            (taxpayer, f"12345678{taxpayer}", f"Client {taxpayer}"),
        )
        for year in (2020, 2022):  # an ended link and the current one
            db.execute(
                "INSERT INTO reg_links (agent_id, taxpayer_id, level, start_date, end_date) "
                "VALUES (1, ?, 'CLIENT', ?, ?)",
                (taxpayer, f"{year}-01-01", "2021-01-01" if year == 2020 else None),
            )
    monkeypatch.setattr(inspect, "PAGE_ROWS", 3)  # so the second client's links straddle two pages
    shown, query = [], ""
    for _ in range(5):
        page = inspect.agent(db, "A1", query)
        assert page is not None
        shown += re.findall(
            r"<tr><td><a href=\"/_inspect/taxpayer/(\d+)\">.*?<td>(\d{4}-\d\d-\d\d)</td>", page.decode()
        )
        following = re.search(r"\?after=([^\"]+)\"", page.decode())
        if following is None:
            break
        query = f"after={following.group(1)}"
    assert shown == [(str(t), f"{y}-01-01") for t in (1, 2, 3) for y in (2020, 2022)]
    assert inspect.agent(db, "A1", "after=1-x") is None  # a 404, not a server error
