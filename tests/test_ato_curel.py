"""CUREL through the real gateway to the stand-in ATO: search, validate, submit, validate remove, remove, list."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest

from ato_gateway.api import Reply
from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import Account, ClientIdentifier, Period, PersonName
from tests.ato_fixtures import AGENT_TAN, DEMO_ABN, Ato, error_codes

TODAY = "2026-11-30"  # the fixture's business date at the stand-in ATO
R = curel.Relationship

pytestmark = pytest.mark.django_db(transaction=True)


def _an_individual(ato: Ato, linked: bool) -> dict:
    test = "EXISTS" if linked else "NOT EXISTS"
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND "  # noqa: S608
        f"{test} (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id "
        "WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.end_date IS NULL) ORDER BY t.id LIMIT 1",
        "25123456",
    )[0]


def test_search_finds_an_individual_by_tfn_name_and_birth_date(ato: Ato):
    person = _an_individual(ato, linked=False)
    reply = ato.result(
        curel.SearchRequest(
            client=ClientIdentifier.of(tfn=person["tfn"]),
            person_name=PersonName(person["family_name"].upper()),
            birth_date=date.fromisoformat(person["birth_date"]),
        )
    )
    assert reply.ok and reply.document is not None
    found = reply.document.client
    assert found.entity_type == "IND" and found.person_name and found.person_name.given_name == person["given_name"]
    assert found.existing_relationship is False
    assert any(a.kind == "ITX" for a in found.accounts)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"client": ClientIdentifier.of(tfn="123456782")}, "CMN.ATO.CUREL.SRCH01"),
        ({"person_name": PersonName("Nobody-Matches")}, "CMN.ATO.CUREL.SRCH02"),
        ({"birth_date": date(1901, 1, 1)}, "CMN.ATO.CUREL.SRCH03"),
    ],
)
def test_search_fails_without_a_full_match(ato: Ato, change: dict, code: str):
    person = _an_individual(ato, linked=False)
    asked = {
        "client": ClientIdentifier.of(tfn=person["tfn"]),
        "person_name": PersonName(person["family_name"]),
        "birth_date": date.fromisoformat(person["birth_date"]),
        **change,
    }
    reply = ato.result(curel.SearchRequest(**asked))
    assert error_codes(reply) == [code] and reply.document is None


def test_a_malformed_search_document_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CURELSearchRequest xmlns="http://www.sbr.gov.au/ato/curel"><ClientIdentifier>'
        "<TaxFileNumberId>12345</TaxFileNumberId></ClientIdentifier></CURELSearchRequest>"
    )
    reply = ato.reply(ato.send_raw(curel.SearchRequest.SERVICE_ACTION, document), curel.SearchResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"]
    assert "TaxFileNumberId" in reply.errors[0].text


def test_an_unknown_agent_number_is_refused(ato: Ato):
    type(ato.practice).objects.filter(pk=ato.practice.pk).update(agent_number="99999999")
    person = _an_individual(ato, linked=True)
    reply = ato.result(
        curel.SearchRequest(
            client=ClientIdentifier.of(tfn=person["tfn"]),
            person_name=PersonName(person["family_name"]),
            birth_date=date.fromisoformat(person["birth_date"]),
        )
    )
    assert error_codes(reply) == ["CMN.ATO.AUTH.003"]


# --- Validate and Submit ---------------------------------------------------------------------------------------------

# The client has a current link with the agent whose TAN is the query's parameter (fixed SQL, composed below).
MINE = (
    "EXISTS (SELECT 1 FROM reg_links m JOIN reg_agents ma ON ma.id = m.agent_id WHERE m.taxpayer_id = t.id "
    "AND ma.tan = ? "
    "AND m.end_date IS NULL)"
)


def _identity(taxpayer: dict) -> dict[str, Any]:
    """How a request names the client (the fields of a Search, Validate or Submit document): the TFN and the name
    (and an individual's date of birth)."""
    client = ClientIdentifier.of(tfn=taxpayer["tfn"])
    if taxpayer["entity"] == "IND":
        return {
            "client": client,
            "person_name": PersonName(taxpayer["family_name"]),
            "birth_date": date.fromisoformat(taxpayer["birth_date"]),
        }
    return {"client": client, "organisation_name": taxpayer["organisation_name"]}


def _links(ato: Ato, taxpayer_id: int, tan: str | None = None, current: bool = True) -> list[dict]:
    return ato.query(
        "SELECT l.*, a.kind, a.branch, g.tan, g.name AS agent_name FROM reg_links l "
        "LEFT JOIN reg_accounts a ON a.id = l.account_id JOIN reg_agents g ON g.id = l.agent_id "
        "WHERE l.taxpayer_id = ? AND (? IS NULL OR g.tan = ?) AND (? = 0 OR l.end_date IS NULL) ORDER BY l.id",
        taxpayer_id,
        tan,
        tan,
        int(current),
    )


def _other_agents_role(ato: Ato) -> dict:
    """One of our clients on which another practice holds a role we do not hold ourselves."""
    return ato.query(
        "SELECT t.*, l.id AS link_id, l.role, a.branch, g.tan AS other_tan, g.name AS other_name "  # noqa: S608
        "FROM reg_links l JOIN reg_taxpayers t ON t.id = l.taxpayer_id JOIN reg_accounts a ON a.id = l.account_id "
        "JOIN reg_agents g ON g.id = l.agent_id WHERE l.level = 'ROLE' AND l.end_date IS NULL AND g.tan <> ? "
        f"AND t.death_date IS NULL AND {MINE} ORDER BY t.id LIMIT 1",
        AGENT_TAN,
        AGENT_TAN,
    )[0]


def _unlinked_with_other_agents(ato: Ato) -> dict:
    """A client of other practices only, with an activity statement account."""
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.death_date IS NULL AND NOT "  # noqa: S608 - fixed text
        + MINE
        + " AND EXISTS (SELECT 1 FROM reg_links o WHERE o.taxpayer_id = t.id AND o.end_date IS NULL) "
        "AND EXISTS (SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id AND a.kind = 'AS' AND a.branch = '001') "
        "ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]


def test_validate_warns_of_the_other_agents_role_it_would_end_and_changes_nothing(ato: Ato):
    client = _other_agents_role(ato)
    before = _links(ato, client["id"], current=False)
    reply = ato.result(
        curel.ValidateRequest(relationships=[R.of_role(client["role"], client["branch"])], **_identity(client))
    )
    assert reply.ok and reply.document is not None
    [warning] = reply.warnings
    assert warning.code == "CMN.ATO.CUREL.LNK06"
    assert warning.parameters["AgentName"] == client["other_name"]
    assert warning.parameters["AgentNumber"] == client["other_tan"]
    assert (warning.parameters["Level"], warning.parameters["Role"]) == ("ROLE", client["role"])
    assert warning.parameters["Branch"] == client["branch"]
    [added] = reply.document.relationships
    assert (added.status, added.role, added.start_date) == ("NEW", client["role"], date.fromisoformat(TODAY))
    [ends] = reply.document.superseded
    assert (ends.agent_number, ends.role, ends.end_date) == (client["other_tan"], client["role"], date(2026, 11, 30))
    assert _links(ato, client["id"], current=False) == before


def test_submit_takes_the_role_over_and_ends_the_other_agents_link(ato: Ato):
    client = _other_agents_role(ato)
    reply = ato.result(
        curel.SubmitRequest(relationships=[R.of_role(client["role"], client["branch"])], **_identity(client))
    )
    assert reply.ok and not reply.warnings
    ended = [i for i in reply.items if i.code == "CMN.ATO.CUREL.LNK07"]
    assert len(ended) == 1 and ended[0].severity == "Information"
    assert ended[0].parameters["AgentNumber"] == client["other_tan"]
    [other] = ato.query("SELECT * FROM reg_links WHERE id = ?", client["link_id"])
    assert (other["end_date"], other["ended_reason"]) == (TODAY, "SUPERSEDED")
    mine = [link for link in _links(ato, client["id"], AGENT_TAN) if link["level"] == "ROLE"]
    assert [(link["role"], link["branch"], link["start_date"]) for link in mine] == [
        (client["role"], client["branch"], TODAY)
    ]


def test_a_client_level_link_ends_every_other_agents_link_to_the_client(ato: Ato):
    # The client has no link with us: Submit needs none, it is what creates one.
    client = _unlinked_with_other_agents(ato)
    others = _links(ato, client["id"])
    validated = ato.result(curel.ValidateRequest(relationships=[R.client()], **_identity(client)))
    assert len(validated.warnings) == len(others)
    assert {w.parameters["AgentNumber"] for w in validated.warnings} == {link["tan"] for link in others}
    reply = ato.result(curel.SubmitRequest(relationships=[R.client()], **_identity(client)))
    assert reply.ok and reply.document is not None and len(reply.document.superseded) == len(others)
    now = _links(ato, client["id"])
    assert [(link["tan"], link["level"], link["start_date"]) for link in now] == [(AGENT_TAN, "CLIENT", TODAY)]
    for link in others:
        [row] = ato.query("SELECT end_date, ended_reason FROM reg_links WHERE id = ?", link["id"])
        assert row == {"end_date": TODAY, "ended_reason": "SUPERSEDED"}


def test_submit_links_several_accounts_at_account_level(ato: Ato):
    client = _unlinked_with_other_agents(ato)
    reply = ato.result(
        curel.SubmitRequest(relationships=[R.of_account("ITX"), R.of_account("AS", "001")], **_identity(client))
    )
    assert reply.ok and reply.document is not None
    assert [r.status for r in reply.document.relationships] == ["NEW", "NEW"]
    mine = _links(ato, client["id"], AGENT_TAN)
    assert sorted((link["level"], link["kind"], link["branch"]) for link in mine) == [
        ("ACCOUNT", "AS", "001"),
        ("ACCOUNT", "ITX", None),
    ]


def test_a_link_already_held_is_reported_and_not_duplicated(ato: Ato):
    client = ato.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents g "
        "ON g.id = l.agent_id WHERE g.tan = ? AND l.level = 'CLIENT' AND l.end_date IS NULL "
        "AND t.death_date IS NULL ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]
    before = _links(ato, client["id"], current=False)
    reply = ato.result(curel.SubmitRequest(relationships=[R.client()], **_identity(client)))
    assert reply.ok and reply.document is not None
    assert [i.code for i in reply.items if i.code != "GEN.OK"] == ["CMN.ATO.CUREL.LNK05"]
    assert reply.document.relationships[0].status == "EXISTING" and reply.document.superseded == []
    assert _links(ato, client["id"], current=False) == before


def test_accounts_and_roles_the_client_does_not_have_are_errors_and_nothing_is_added(ato: Ato):
    client = ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.abn IS NULL AND t.death_date IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM reg_accounts a WHERE a.taxpayer_id = t.id AND a.kind <> 'ITX') "
        "ORDER BY t.id LIMIT 1"
    )[0]
    before = _links(ato, client["id"], current=False)
    reply = ato.result(
        curel.SubmitRequest(
            relationships=[R.client(), R.of_account("AS", "001"), R.of_account("FBT")], **_identity(client)
        )
    )
    assert error_codes(reply) == ["CMN.ATO.CUREL.LNK02", "CMN.ATO.CUREL.LNK02"] and reply.document is None
    assert _links(ato, client["id"], current=False) == before
    with_as = ato.query(
        "SELECT t.*, a.branch FROM reg_taxpayers t JOIN reg_accounts a ON a.taxpayer_id = t.id AND a.kind = 'AS' "
        "WHERE t.death_date IS NULL AND NOT EXISTS (SELECT 1 FROM reg_roles r WHERE r.account_id = a.id "
        "AND r.role = 'LCT') ORDER BY t.id LIMIT 1"
    )[0]
    no_role = ato.result(
        curel.ValidateRequest(relationships=[R.of_role("LCT", with_as["branch"])], **_identity(with_as))
    )
    assert error_codes(no_role) == ["CMN.ATO.CUREL.LNK03"] and "LCT" in no_role.errors[0].text


def test_a_level_without_its_account_or_role_is_an_error(ato: Ato):
    client = _unlinked_with_other_agents(ato)
    reply = ato.result(
        curel.ValidateRequest(
            relationships=[curel.Relationship("ROLE", Account("AS", "001")), curel.Relationship("CLIENT", role="GST")],
            **_identity(client),
        )
    )
    assert error_codes(reply) == ["CMN.ATO.CUREL.LNK01", "CMN.ATO.CUREL.LNK01"]


@pytest.mark.parametrize("request_class", [curel.ValidateRequest, curel.SubmitRequest], ids=["validate", "submit"])
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"client": ClientIdentifier.of(tfn="123456782")}, "CMN.ATO.CUREL.SRCH01"),
        ({"person_name": PersonName("Nobody-Matches")}, "CMN.ATO.CUREL.SRCH02"),
        ({"birth_date": date(1901, 1, 1)}, "CMN.ATO.CUREL.SRCH03"),
    ],
)
def test_adding_needs_the_client_identified_as_search_does(ato: Ato, request_class: Any, change: dict, code: str):
    person = _an_individual(ato, linked=False)
    before = ato.query("SELECT count(*) AS n FROM reg_links")
    reply = ato.result(request_class(relationships=[R.client()], **{**_identity(person), **change}))
    assert error_codes(reply) == [code]
    assert ato.query("SELECT count(*) AS n FROM reg_links") == before


def test_a_bas_agent_links_activity_statement_accounts_and_roles_only(ato: Ato):
    ato.regenerate(
        seed=11,
        taxpayers=300,
        agents=[{"tan": AGENT_TAN, "abn": DEMO_ABN, "name": "Books & BAS", "kind": "BAS", "clients": 30}],
    )
    client = _unlinked_with_other_agents(ato)
    refused = ato.result(curel.ValidateRequest(relationships=[R.client(), R.of_account("ITX")], **_identity(client)))
    assert error_codes(refused) == ["CMN.ATO.CUREL.LNK04", "CMN.ATO.CUREL.LNK04"]
    assert {e.parameters["Covers"] for e in refused.errors} == {"the client", "income tax account"}
    reply = ato.result(curel.SubmitRequest(relationships=[R.of_account("AS", "001")], **_identity(client)))
    assert reply.ok
    assert [(link["level"], link["kind"]) for link in _links(ato, client["id"], AGENT_TAN)] == [("ACCOUNT", "AS")]


# --- ValidateRemove and Remove ---------------------------------------------------------------------------------------


def _client_with_one_link(ato: Ato, level: str = "CLIENT") -> dict:
    return ato.query(
        "SELECT t.*, l.id AS link_id, l.start_date AS link_start FROM reg_taxpayers t JOIN reg_links l "
        "ON l.taxpayer_id = t.id JOIN reg_agents g ON g.id = l.agent_id WHERE g.tan = ? AND l.level = ? "
        "AND l.end_date IS NULL AND (SELECT count(*) FROM reg_links x WHERE x.taxpayer_id = t.id "
        "AND x.agent_id = g.id AND x.end_date IS NULL) = 1 ORDER BY t.id LIMIT 1",
        AGENT_TAN,
        level,
    )[0]


def test_validate_remove_warns_when_no_access_would_remain_and_changes_nothing(ato: Ato):
    client = _client_with_one_link(ato)
    reply = ato.result(
        curel.ValidateRemoveRequest(client=ClientIdentifier.of(tfn=client["tfn"]), relationships=[R.client()])
    )
    assert reply.ok and reply.document is not None
    assert [w.code for w in reply.warnings] == ["CMN.ATO.CUREL.REM02"]
    assert reply.document.access_remains is False
    [would] = reply.document.relationships
    assert (would.level, would.end_date, would.end_reason) == ("CLIENT", date(2026, 11, 30), "REMOVED")
    [row] = ato.query("SELECT end_date FROM reg_links WHERE id = ?", client["link_id"])
    assert row["end_date"] is None


def test_remove_ends_the_agents_own_link(ato: Ato):
    client = _client_with_one_link(ato)
    reply = ato.result(curel.RemoveRequest(client=ClientIdentifier.of(tfn=client["tfn"]), relationships=[R.client()]))
    assert reply.ok and reply.document is not None and reply.document.access_remains is False
    assert "CMN.ATO.CUREL.REM03" in [i.code for i in reply.items]
    [row] = ato.query("SELECT end_date, ended_reason FROM reg_links WHERE id = ?", client["link_id"])
    assert row == {"end_date": TODAY, "ended_reason": "REMOVED"}
    again = ato.result(curel.RemoveRequest(client=ClientIdentifier.of(tfn=client["tfn"]), relationships=[R.client()]))
    assert error_codes(again) == ["CMN.ATO.AUTH.002"]


def test_remove_keeps_access_through_the_other_links(ato: Ato):
    client = _unlinked_with_other_agents(ato)
    ato.result(curel.SubmitRequest(relationships=[R.of_account("ITX"), R.of_account("AS", "001")], **_identity(client)))
    validated = ato.result(
        curel.ValidateRemoveRequest(client=ClientIdentifier.of(tfn=client["tfn"]), relationships=[R.of_account("ITX")])
    )
    assert validated.ok and validated.document is not None
    assert validated.document.access_remains is True and not validated.warnings
    removed = ato.result(
        curel.RemoveRequest(client=ClientIdentifier.of(tfn=client["tfn"]), relationships=[R.of_account("ITX")])
    )
    assert removed.ok and "CMN.ATO.CUREL.REM03" not in [i.code for i in removed.items]
    assert [(link["kind"], link["branch"]) for link in _links(ato, client["id"], AGENT_TAN)] == [("AS", "001")]


def test_removing_a_link_the_agent_does_not_hold_is_an_error(ato: Ato):
    client = _client_with_one_link(ato)
    for request_class in (curel.ValidateRemoveRequest, curel.RemoveRequest):
        links = [R.client(), R.of_account("ITX")]
        reply = ato.result(request_class(client=ClientIdentifier.of(tfn=client["tfn"]), relationships=links))
        assert error_codes(reply) == ["CMN.ATO.CUREL.REM01"]
        assert reply.errors[0].parameters["Covers"] == "income tax account"
    [row] = ato.query("SELECT end_date FROM reg_links WHERE id = ?", client["link_id"])
    assert row["end_date"] is None


def test_remove_needs_a_link_to_the_client(ato: Ato):
    stranger = _an_individual(ato, linked=False)
    unlinked = ato.result(
        curel.RemoveRequest(client=ClientIdentifier.of(tfn=stranger["tfn"]), relationships=[R.client()])
    )
    assert error_codes(unlinked) == ["CMN.ATO.AUTH.002"]
    unknown = ato.result(
        curel.ValidateRemoveRequest(client=ClientIdentifier.of(tfn="123456782"), relationships=[R.client()])
    )
    assert error_codes(unknown) == ["CMN.ATO.GEN.ID01"]


# --- List ------------------------------------------------------------------------------------------------------------

LINK_KEY = (
    "SELECT t.tfn, l.level, a.kind, a.branch, l.role, l.start_date, l.end_date, l.ended_reason FROM reg_links l "
    "JOIN reg_taxpayers t ON t.id = l.taxpayer_id JOIN reg_agents g ON g.id = l.agent_id "
    "LEFT JOIN reg_accounts a ON a.id = l.account_id WHERE g.tan = ?"
)


def _row_key(row: dict) -> tuple:
    columns = ("tfn", "level", "kind", "branch", "role", "start_date", "end_date", "ended_reason")
    return tuple(row[column] for column in columns)


def _keys(client: curel.ListedClient) -> list[tuple]:
    return [
        (
            client.tfn,
            r.level,
            r.account.kind if r.account else None,
            r.account.branch if r.account else None,
            r.role,
            r.start_date.isoformat(),
            r.end_date.isoformat() if r.end_date else None,
            r.end_reason,
        )
        for r in client.relationships
    ]


def _list_everything(ato: Ato, **kwargs: Any) -> tuple[list[tuple], int, int]:
    """Every page, read item by item: the links seen, how many clients and how many pages."""
    seen: list[tuple] = []
    clients = pages = 0
    continuation = None
    while True:
        message = ato.ask(curel.ListRequest(continuation=continuation, **kwargs)).message
        reply = ato.stream(message, curel.ListResponse, "clients")
        items = reply.stream
        assert reply.ok and items is not None, reply.items
        for client in items:
            clients += 1
            seen.extend(_keys(client))
        pages += 1
        assert items.document is not None
        continuation = items.document.continuation
        if continuation is None:
            return seen, clients, pages


def test_list_pages_through_every_current_client(ato: Ato):
    seen, clients, pages = _list_everything(ato, page_size=25)
    expected = ato.query(LINK_KEY + " AND l.end_date IS NULL", AGENT_TAN)
    assert Counter(seen) == Counter(_row_key(row) for row in expected)
    assert clients == 60 and pages == 3


def test_list_of_one_client_with_the_links_ended_in_a_window(ato: Ato):
    client = _client_with_one_link(ato)
    ato.result(curel.RemoveRequest(client=ClientIdentifier.of(tfn=client["tfn"]), relationships=[R.client()]))
    current_only = ato.result(curel.ListRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert error_codes(current_only) == ["CMN.ATO.AUTH.002"]  # nothing current, and ended links not asked for
    reply = ato.result(
        curel.ListRequest(
            client=ClientIdentifier.of(tfn=client["tfn"]),
            include_ended=True,
            ended_period=Period(date(2026, 11, 1), date(2026, 11, 30)),
        )
    )
    assert reply.ok and reply.document is not None and reply.document.continuation is None
    [listed] = reply.document.clients
    assert listed.tfn == client["tfn"] and listed.entity_type == client["entity"]
    if client["entity"] == "IND":
        assert listed.birth_date == date.fromisoformat(client["birth_date"])
    assert [(r.level, r.end_date, r.end_reason) for r in listed.relationships] == [
        ("CLIENT", date(2026, 11, 30), "REMOVED")
    ]
    earlier = ato.result(
        curel.ListRequest(
            client=ClientIdentifier.of(tfn=client["tfn"]),
            include_ended=True,
            ended_period=Period(date.min, date(2026, 10, 31)),  # ended at any time up to the day
        )
    )
    assert all(r.end_date and r.end_date <= date(2026, 10, 31) for r in _only_links(earlier))


def _only_links(reply: Reply[curel.ListResponse]) -> list[curel.ListedRelationship]:
    return [r for c in (reply.document.clients if reply.document else []) for r in c.relationships]


def test_list_refuses_a_foreign_continuation_and_a_backwards_window(ato: Ato):
    reply = ato.result(curel.ListRequest(continuation="not-a-token"))
    assert error_codes(reply) == ["CMN.ATO.CUREL.LST01"]
    reply = ato.result(curel.ListRequest(include_ended=True, ended_period=Period(date(2026, 6, 1), date(2026, 1, 1))))
    assert error_codes(reply) == ["CMN.ATO.CUREL.LST02"]


def test_a_long_list_pages_through_every_link_exactly_once(ato: Ato):
    ato.regenerate(
        seed=5,
        taxpayers=1200,
        agents=[{"tan": AGENT_TAN, "abn": DEMO_ABN, "name": "Large Practice", "kind": "TAX", "clients": 1150}],
    )
    expected = [_row_key(row) for row in ato.query(LINK_KEY, AGENT_TAN)]
    assert len(expected) >= 1150
    seen, clients, pages = _list_everything(ato, include_ended=True, page_size=500)
    assert Counter(seen) == Counter(expected) and len(seen) == len(expected)
    assert pages == -(-clients // 500)


# --- malformed documents ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "cls", "document"),
    [
        (curel.ValidateRequest.SERVICE_ACTION, curel.ValidateResponse, "CURELValidateRequest"),
        (curel.SubmitRequest.SERVICE_ACTION, curel.SubmitResponse, "CURELSubmitRequest"),
        (curel.ValidateRemoveRequest.SERVICE_ACTION, curel.ValidateRemoveResponse, "CURELValidateRemoveRequest"),
        (curel.RemoveRequest.SERVICE_ACTION, curel.RemoveResponse, "CURELRemoveRequest"),
        (curel.ListRequest.SERVICE_ACTION, curel.ListResponse, "CURELListRequest"),
    ],
)
def test_a_malformed_document_is_refused_with_the_xsd_error(ato: Ato, action: str, cls: Any, document: str):
    # A level the schema does not know, where each request's first element must be.
    raw = f'<{document} xmlns="http://www.sbr.gov.au/ato/curel"><RelationshipLevelC>FAMILY</RelationshipLevelC></{document}>'
    reply = ato.reply(ato.send_raw(action, raw), cls)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and reply.document is None
