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
from tests.ato_fixtures import AGENT_TAN, Ato, error_codes

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
