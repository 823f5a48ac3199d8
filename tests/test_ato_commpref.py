"""COMMPREF through the real gateway to the stand-in ATO: the practice default and clients' own preferences, got,
validated (nothing changes) and submitted (the register changes)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ato_gateway import api
from ato_gateway.models import OutboxMessage
from ato_gateway.wire.documents import commpref
from ato_gateway.wire.documents.common import ClientIdentifier
from portal.models import Practice, User
from tests.ato_fixtures import AGENT_TAN, DEMO_ABN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = date(2026, 11, 30)  # the stand-in ATO's business date, set by the fixture


def _client(ato: Ato, *, own_preference: bool, level: str = "CLIENT") -> dict[str, Any]:
    """A current client of the practice linked at ``level`` (and at no broader level), with or without a preference
    of its own."""
    return ato.query(
        "SELECT t.*, a.id AS agent_id FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id "
        "JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? AND l.end_date IS NULL AND l.level = ? "
        "AND NOT EXISTS (SELECT 1 FROM reg_links o WHERE o.agent_id = a.id AND o.taxpayer_id = t.id "
        "AND o.end_date IS NULL AND o.level = 'CLIENT' AND o.id <> l.id) "
        "AND EXISTS (SELECT 1 FROM reg_preferences p WHERE p.agent_id = a.id AND p.taxpayer_id = t.id) = ? "
        "ORDER BY t.id LIMIT 1",
        AGENT_TAN,
        level,
        int(own_preference),
    )[0]


def _unlinked(ato: Ato) -> dict[str, Any]:
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE NOT EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON "
        "a.id = l.agent_id WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.end_date IS NULL) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]


def _preferences(ato: Ato, taxpayer_id: int | None = None) -> list[dict[str, Any]]:
    return ato.query(
        "SELECT p.channel, p.email, p.updated_date FROM reg_preferences p JOIN reg_agents a ON a.id = p.agent_id "
        "WHERE a.tan = ? AND p.taxpayer_id IS ?",
        AGENT_TAN,
        taxpayer_id,
    )


def test_get_answers_the_practice_default(ato: Ato):
    [stored] = _preferences(ato)
    reply = ato.result(commpref.GetRequest())
    assert reply.ok and reply.document is not None
    preference = reply.document.preference
    assert preference.client is None and preference.practice_default is True
    assert preference.channel == stored["channel"] and preference.updated == date.fromisoformat(stored["updated_date"])


def test_get_answers_a_clients_own_preference(ato: Ato):
    client = _client(ato, own_preference=True)
    [stored] = _preferences(ato, client["id"])
    reply = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert reply.ok and reply.document is not None
    preference = reply.document.preference
    assert preference.practice_default is False and preference.client and preference.client.tfn == client["tfn"]
    assert (preference.channel, preference.email) == (stored["channel"], stored["email"])


def test_get_of_a_client_without_its_own_answers_the_default_and_says_so(ato: Ato):
    client = _client(ato, own_preference=False)
    [default] = _preferences(ato)
    reply = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert reply.ok and reply.document is not None
    preference = reply.document.preference
    assert preference.practice_default is True and preference.channel == default["channel"]
    assert preference.client and preference.client.tfn == client["tfn"]


def test_validate_changes_nothing_and_submit_applies(ato: Ato):
    client = _client(ato, own_preference=False)
    validated = ato.result(
        commpref.ValidateRequest(
            client=ClientIdentifier.of(tfn=client["tfn"]), channel="EMAIL", email="jo@example.com.au"
        )
    )
    assert validated.ok and validated.document is not None and not validated.warnings
    assert validated.document.preference.channel == "EMAIL" and validated.document.preference.practice_default is False
    assert _preferences(ato, client["id"]) == []

    submitted = ato.result(
        commpref.SubmitRequest(
            client=ClientIdentifier.of(tfn=client["tfn"]), channel="EMAIL", email="jo@example.com.au"
        )
    )
    assert submitted.ok and submitted.document is not None
    assert submitted.document.preference == validated.document.preference
    assert _preferences(ato, client["id"]) == [
        {"channel": "EMAIL", "email": "jo@example.com.au", "updated_date": TODAY.isoformat()}
    ]
    again = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert again.document is not None and again.document.preference.email == "jo@example.com.au"


def test_submit_changes_the_practice_default_for_clients_without_their_own(ato: Ato):
    reply = ato.result(commpref.SubmitRequest(channel="POST"))
    assert reply.ok and reply.document is not None and reply.document.preference.practice_default is True
    assert _preferences(ato) == [{"channel": "POST", "email": None, "updated_date": TODAY.isoformat()}]
    client = _client(ato, own_preference=False)
    follows = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert follows.document is not None and follows.document.preference.channel == "POST"
    assert follows.document.preference.practice_default is True


def test_a_client_returns_to_the_practice_default(ato: Ato):
    client = _client(ato, own_preference=True)
    validated = ato.result(
        commpref.ValidateRequest(client=ClientIdentifier.of(tfn=client["tfn"]), use_practice_default=True)
    )
    assert validated.ok and not validated.warnings and len(_preferences(ato, client["id"])) == 1
    reply = ato.result(commpref.SubmitRequest(client=ClientIdentifier.of(tfn=client["tfn"]), use_practice_default=True))
    assert reply.ok and reply.document is not None and reply.document.preference.practice_default is True
    assert _preferences(ato, client["id"]) == []


def test_returning_to_the_default_without_an_own_preference_warns_and_still_applies(ato: Ato):
    client = _client(ato, own_preference=False)
    reply = ato.result(commpref.SubmitRequest(client=ClientIdentifier.of(tfn=client["tfn"]), use_practice_default=True))
    assert reply.ok and [w.code for w in reply.warnings] == ["CMN.ATO.COMMPREF.DEF02"]
    assert _preferences(ato, client["id"]) == []


def test_an_email_address_with_another_channel_warns_and_is_not_kept(ato: Ato):
    client = _client(ato, own_preference=False)
    validated = ato.result(
        commpref.ValidateRequest(
            client=ClientIdentifier.of(tfn=client["tfn"]), channel="POST", email="jo@example.com.au"
        )
    )
    assert validated.ok and [w.code for w in validated.warnings] == ["CMN.ATO.COMMPREF.EML03"]
    assert _preferences(ato, client["id"]) == []
    submitted = ato.result(
        commpref.SubmitRequest(client=ClientIdentifier.of(tfn=client["tfn"]), channel="POST", email="jo@example.com.au")
    )
    assert submitted.ok and [w.code for w in submitted.warnings] == ["CMN.ATO.COMMPREF.EML03"]
    assert _preferences(ato, client["id"]) == [{"channel": "POST", "email": None, "updated_date": TODAY.isoformat()}]


@pytest.mark.parametrize(
    ("change", "codes"),
    [
        ({"channel": "EMAIL"}, ["CMN.ATO.COMMPREF.EML01"]),
        ({"channel": "EMAIL", "email": "jo@example"}, ["CMN.ATO.COMMPREF.EML02"]),
        ({"channel": "EMAIL", "email": "jo..citizen@example.com"}, ["CMN.ATO.COMMPREF.EML02"]),
        ({"channel": "EMAIL", "email": "jo citizen@example.com"}, ["CMN.ATO.COMMPREF.EML02"]),
        ({"channel": "EMAIL", "email": "jo@example.com", "practice": True}, ["CMN.ATO.COMMPREF.CHN01"]),
        ({"channel": "EMAIL", "practice": True}, ["CMN.ATO.COMMPREF.CHN01", "CMN.ATO.COMMPREF.EML01"]),
        ({"use_practice_default": True, "practice": True}, ["CMN.ATO.COMMPREF.DEF01"]),
    ],
)
@pytest.mark.parametrize(
    "request_class", [commpref.ValidateRequest, commpref.SubmitRequest], ids=["validate", "submit"]
)
def test_refused_changes_change_nothing(ato: Ato, change: dict[str, Any], codes: list[str], request_class: Any):
    client = _client(ato, own_preference=True)
    before = (_preferences(ato), _preferences(ato, client["id"]))
    asked = {k: v for k, v in change.items() if k != "practice"}
    target = {} if change.get("practice") else {"client": ClientIdentifier.of(tfn=client["tfn"])}
    reply = ato.result(request_class(**target, **asked))
    assert error_codes(reply) == codes and reply.document is None
    assert (_preferences(ato), _preferences(ato, client["id"])) == before


@pytest.mark.parametrize("request_class", [commpref.GetRequest, commpref.SubmitRequest], ids=["get", "submit"])
def test_a_client_without_a_client_level_link_is_refused(ato: Ato, request_class: Any):
    """A client's preference redirects all its letters: an account-level link is not enough."""
    change = {"channel": "POST"} if request_class is commpref.SubmitRequest else {}
    for taxpayer in (_unlinked(ato), _client(ato, own_preference=False, level="ACCOUNT")):
        reply = ato.result(request_class(client=ClientIdentifier.of(tfn=taxpayer["tfn"]), **change))
        assert error_codes(reply) == ["CMN.ATO.AUTH.002"]
        assert _preferences(ato, taxpayer["id"]) == []


def test_an_unknown_client_is_refused(ato: Ato):
    reply = ato.result(commpref.SubmitRequest(client=ClientIdentifier.of(tfn="123456782"), channel="POST"))
    assert error_codes(reply) == ["CMN.ATO.GEN.ID01"]


def test_a_malformed_document_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<COMMPREFSubmitRequest xmlns="http://www.sbr.gov.au/ato/commpref">'
        "<CommunicationChannelC>FAX</CommunicationChannelC></COMMPREFSubmitRequest>"
    )
    reply = ato.reply(ato.send_raw(commpref.SubmitRequest.SERVICE_ACTION, document), commpref.SubmitResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and "CommunicationChannelC" in reply.errors[0].text
    assert _preferences(ato)[0]["channel"] != "FAX"


def test_asking_takes_a_channel_or_the_default_not_both(practice: Practice, admin: User):
    client = ClientIdentifier.of(tfn="123456782")
    both = commpref.ValidateRequest(client=client, channel="POST", use_practice_default=True)
    with pytest.raises(api.DocumentError, match="UsePracticeDefaultI"):
        api.ask(both, practice=practice, by=admin, purpose="tests.ask")
    with pytest.raises(api.DocumentError, match="CommunicationChannelC"):
        api.ask(commpref.SubmitRequest(client=client), practice=practice, by=admin, purpose="tests.ask")
    assert not OutboxMessage.objects.exists()  # refused before anything is recorded


# --- categories ------------------------------------------------------------------------------------------------------


def _categories(ato: Ato, taxpayer_id: int | None) -> list[dict[str, Any]]:
    return ato.query(
        "SELECT p.category, p.channel, p.email FROM reg_category_preferences p JOIN reg_agents a ON a.id = p.agent_id "
        "WHERE a.tan = ? AND p.taxpayer_id IS ? ORDER BY p.category",
        AGENT_TAN,
        taxpayer_id,
    )


def _by_category(preference: commpref.Preference) -> dict[str, tuple[str, str | None, bool]]:
    return {c.category: (c.channel, c.email, c.practice_default) for c in preference.categories}


def test_an_answer_names_every_category_where_its_letters_go(ato: Ato):
    client = _client(ato, own_preference=True)
    [own] = _preferences(ato, client["id"])
    reply = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert reply.document is not None
    assert _by_category(reply.document.preference) == dict.fromkeys(
        commpref.CATEGORIES, (own["channel"], own["email"], False)
    )


def test_a_change_for_some_categories_leaves_the_others_where_they_were(ato: Ato):
    client = _client(ato, own_preference=False)
    [default] = _preferences(ato)
    change: dict[str, Any] = {
        "client": ClientIdentifier.of(tfn=client["tfn"]),
        "categories": ["AS", "DEBT"],
        "channel": "POST",
    }
    validated = ato.result(commpref.ValidateRequest(**change))
    assert validated.ok and validated.document is not None and _categories(ato, client["id"]) == []
    submitted = ato.result(commpref.SubmitRequest(**change))
    assert submitted.ok and submitted.document is not None
    assert submitted.document.preference == validated.document.preference
    assert _categories(ato, client["id"]) == [
        {"category": "AS", "channel": "POST", "email": None},
        {"category": "DEBT", "channel": "POST", "email": None},
    ]
    assert _preferences(ato, client["id"]) == []  # the whole preference is untouched
    answered = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=client["tfn"])))
    assert answered.document is not None
    preference = answered.document.preference
    assert preference.practice_default is False
    assert _by_category(preference) == {
        category: ("POST", None, False) if category in ("AS", "DEBT") else (default["channel"], None, True)
        for category in commpref.CATEGORIES
    }


def test_a_change_for_every_category_replaces_the_category_preferences(ato: Ato):
    client = _client(ato, own_preference=True)
    identifier = ClientIdentifier.of(tfn=client["tfn"])
    ato.result(commpref.SubmitRequest(client=identifier, categories=["SUP"], channel="POST"))
    assert len(_categories(ato, client["id"])) == 1
    reply = ato.result(commpref.SubmitRequest(client=identifier, channel="ELEC"))
    assert reply.ok and reply.document is not None and _categories(ato, client["id"]) == []
    assert {c.channel for c in reply.document.preference.categories} == {"ELEC"}


def test_a_category_returns_to_the_practice_default(ato: Ato):
    client = _client(ato, own_preference=False)
    identifier = ClientIdentifier.of(tfn=client["tfn"])
    ato.result(commpref.SubmitRequest(client=identifier, categories=["ITX", "SUP"], channel="POST"))
    reply = ato.result(commpref.SubmitRequest(client=identifier, categories=["SUP"], use_practice_default=True))
    assert reply.ok and not reply.warnings
    assert _categories(ato, client["id"]) == [{"category": "ITX", "channel": "POST", "email": None}]
    again = ato.result(commpref.SubmitRequest(client=identifier, categories=["SUP"], use_practice_default=True))
    assert [w.code for w in again.warnings] == ["CMN.ATO.COMMPREF.DEF02"]


def test_the_practice_default_for_a_category_reaches_clients_without_their_own(ato: Ato):
    reply = ato.result(commpref.SubmitRequest(categories=["ITX"], channel="POST"))
    assert reply.ok and _categories(ato, None) == [{"category": "ITX", "channel": "POST", "email": None}]
    without = _client(ato, own_preference=False)
    follows = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=without["tfn"])))
    assert follows.document is not None and _by_category(follows.document.preference)["ITX"] == ("POST", None, True)
    own = _client(ato, own_preference=True)
    [stored] = _preferences(ato, own["id"])
    kept = ato.result(commpref.GetRequest(client=ClientIdentifier.of(tfn=own["tfn"])))
    assert kept.document is not None and _by_category(kept.document.preference)["ITX"][0] == stored["channel"]


# --- List ------------------------------------------------------------------------------------------------------------


def test_list_pages_through_every_client_of_the_agent_once(ato: Ato):
    linked = ato.query(
        "SELECT DISTINCT t.tfn FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a "
        "ON a.id = l.agent_id WHERE a.tan = ? AND l.end_date IS NULL",
        AGENT_TAN,
    )
    own = ato.query(
        "SELECT t.tfn, p.channel FROM reg_preferences p JOIN reg_taxpayers t ON t.id = p.taxpayer_id "
        "JOIN reg_agents a ON a.id = p.agent_id WHERE a.tan = ?",
        AGENT_TAN,
    )
    seen: list[commpref.Preference] = []
    continuation = None
    pages = 0
    while True:
        reply = ato.result(commpref.ListRequest(continuation=continuation, page_size=7))
        assert reply.ok and reply.document is not None and len(reply.document.preferences) <= 7
        seen += reply.document.preferences
        pages += 1
        continuation = reply.document.continuation
        if continuation is None:
            break
    assert pages == -(-len(linked) // 7)
    tfns = [p.client.tfn for p in seen if p.client and p.client.tfn]
    assert sorted(tfns) == sorted(row["tfn"] for row in linked)
    by_tfn = {p.client.tfn: p for p in seen if p.client}
    for row in own:
        assert by_tfn[row["tfn"]].channel == row["channel"] and by_tfn[row["tfn"]].practice_default is False
    assert sum(1 for p in seen if p.practice_default) == len(linked) - len(own)


def test_list_refuses_a_continuation_it_did_not_give(ato: Ato):
    reply = ato.result(commpref.ListRequest(continuation="bm90LW91cnM6MTI"))
    assert error_codes(reply) == ["CMN.ATO.COMMPREF.LST01"]


# --- a BAS agent -----------------------------------------------------------------------------------------------------


def test_a_bas_agent_sets_only_the_categories_allowed_to_bas_agents(ato: Ato):
    ato.regenerate(
        seed=11,
        taxpayers=300,
        agents=[{"tan": AGENT_TAN, "abn": DEMO_ABN, "name": "Books & BAS", "kind": "BAS", "clients": 30}],
    )
    [client] = ato.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id JOIN reg_agents a "
        "ON a.id = l.agent_id JOIN reg_accounts c ON c.id = l.account_id WHERE a.tan = ? AND l.end_date IS NULL "
        "AND l.level = 'ACCOUNT' AND c.kind = 'AS' ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )
    identifier = ClientIdentifier.of(tfn=client["tfn"])
    refused = ato.result(commpref.ValidateRequest(client=identifier, categories=["AS", "ITX", "SUP"], channel="POST"))
    assert error_codes(refused) == ["CMN.ATO.COMMPREF.CAT01", "CMN.ATO.COMMPREF.CAT01"]
    assert [e.parameters["Category"] for e in refused.errors] == ["ITX", "SUP"]
    assert "income tax" in api.item_in_plain_words(refused.errors[0])
    whole = ato.result(commpref.SubmitRequest(client=identifier, channel="POST"))
    assert error_codes(whole) == ["CMN.ATO.COMMPREF.CAT02"]
    assert _categories(ato, client["id"]) == [] and _preferences(ato, client["id"]) == []
    allowed = ato.result(commpref.SubmitRequest(client=identifier, categories=["AS"], channel="POST"))
    assert allowed.ok
    assert _categories(ato, client["id"]) == [{"category": "AS", "channel": "POST", "email": None}]
