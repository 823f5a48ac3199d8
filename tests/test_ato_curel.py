"""CUREL through the real gateway to the stand-in ATO: search, validate, submit, validate remove, remove, list."""

from __future__ import annotations

from datetime import date

import pytest

from ato_gateway.api import curel as api
from ato_gateway.wire.documents import curel
from tests.ato_fixtures import Ato, ato, error_codes  # noqa: F401 - the fixture
from tests.gateway_fixtures import sandbox  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _an_individual(ato: Ato, linked: bool) -> dict:
    test = "EXISTS" if linked else "NOT EXISTS"
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND "
        f"{test} (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id "
        "WHERE l.taxpayer_id = t.id AND a.tan = ? AND l.end_date IS NULL) ORDER BY t.id LIMIT 1",
        "25123456",
    )[0]


def test_search_finds_an_individual_by_tfn_name_and_birth_date(ato: Ato):
    person = _an_individual(ato, linked=False)
    reply = ato.result(
        api.search,
        curel.SearchResponse,
        tfn=person["tfn"],
        family_name=person["family_name"].upper(),
        birth_date=date.fromisoformat(person["birth_date"]),
    )
    assert reply.ok and reply.document is not None
    found = reply.document.client
    assert found.entity_type == "IND" and found.person_name and found.person_name.given_name == person["given_name"]
    assert found.existing_relationship is False
    assert any(a.kind == "ITX" for a in found.accounts)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"tfn": "123456782"}, "CMN.ATO.CUREL.SRCH01"),
        ({"family_name": "Nobody-Matches"}, "CMN.ATO.CUREL.SRCH02"),
        ({"birth_date": date(1901, 1, 1)}, "CMN.ATO.CUREL.SRCH03"),
    ],
)
def test_search_fails_without_a_full_match(ato: Ato, change: dict, code: str):
    person = _an_individual(ato, linked=False)
    asked = {
        "tfn": person["tfn"],
        "family_name": person["family_name"],
        "birth_date": date.fromisoformat(person["birth_date"]),
        **change,
    }
    reply = ato.result(api.search, curel.SearchResponse, **asked)
    assert error_codes(reply) == [code] and reply.document is None


def test_a_malformed_search_document_is_refused_with_the_xsd_error(ato: Ato):
    document = (
        '<CURELSearchRequest xmlns="http://www.sbr.gov.au/ato/curel"><ClientIdentifier>'
        "<TaxFileNumberId>12345</TaxFileNumberId></ClientIdentifier></CURELSearchRequest>"
    )
    reply = ato.reply(ato.send_raw(api.SEARCH, document), curel.SearchResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"]
    assert "TaxFileNumberId" in reply.errors[0].text


def test_an_unknown_agent_number_is_refused(ato: Ato):
    type(ato.practice).objects.filter(pk=ato.practice.pk).update(agent_number="99999999")
    person = _an_individual(ato, linked=True)
    reply = ato.result(
        api.search,
        curel.SearchResponse,
        tfn=person["tfn"],
        family_name=person["family_name"],
        birth_date=date.fromisoformat(person["birth_date"]),
    )
    assert error_codes(reply) == ["CMN.ATO.AUTH.003"]
