"""CUDTL through the real gateway to the stand-in ATO: get a profile (2017 and 2016 documents), validate and submit
an update under the service's rules."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ato_gateway.wire.documents import cudtl
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from tests.ato_fixtures import AGENT_TAN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

_LINKED = (
    "{test} (SELECT 1 FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE l.taxpayer_id = t.id "
    "AND a.tan = ? AND l.level = 'CLIENT' AND l.end_date IS NULL)"
)


def _client(ato: Ato, entities: tuple[str, ...], linked: bool = True, where: str = "1") -> dict[str, Any]:
    """The first taxpayer of one of ``entities`` that the agent acts for at client level (or does not)."""
    marks = ", ".join("?" for _ in entities)
    test = _LINKED.format(test="EXISTS" if linked else "NOT EXISTS")
    rows = ato.query(
        f"SELECT t.* FROM reg_taxpayers t WHERE t.entity IN ({marks}) AND {where} AND {test} ORDER BY t.id LIMIT 1",  # noqa: S608 - the tests' own conditions
        *entities,
        AGENT_TAN,
    )
    assert rows, f"the register has no {'linked' if linked else 'unlinked'} client of {entities}"
    return rows[0]


def _person(ato: Ato) -> dict[str, Any]:
    return _client(ato, ("IND",), where="t.death_date IS NULL")


def _row(ato: Ato, taxpayer_id: int) -> dict[str, Any]:
    return ato.query("SELECT * FROM reg_taxpayers WHERE id = ?", taxpayer_id)[0]


# --- Get ---


def test_get_gives_an_individuals_profile(ato: Ato):
    person = _person(ato)
    reply = ato.result(cudtl.GetRequest(client=ClientIdentifier.of(tfn=person["tfn"])))
    assert reply.ok and reply.document is not None
    profile = reply.document.client
    assert profile.entity_type == "IND"
    assert profile.person_name == PersonName(person["family_name"], person["given_name"], person["other_given_name"])
    assert profile.birth_date == date.fromisoformat(person["birth_date"]) and profile.death_date is None
    assert profile.organisation_name is None and profile.legal_name is None and profile.super_regulated is None


def test_get_gives_a_trust_fund_or_partnerships_legal_name_and_indicators(ato: Ato):
    entity = _client(ato, ("TRT", "SMF", "PTR"))
    reply = ato.result(cudtl.GetRequest(client=ClientIdentifier.of(tfn=entity["tfn"])))
    assert reply.ok and reply.document is not None
    profile = reply.document.client
    assert (profile.entity_type, profile.abn) == (entity["entity"], entity["abn"])
    assert profile.organisation_name == entity["organisation_name"] and profile.legal_name == entity["legal_name"]
    assert profile.not_for_profit is bool(entity["not_for_profit"])
    assert profile.super_regulated is bool(entity["super_regulated"])
    assert profile.tfn_quoted_for_super is bool(entity["quoted_tfn_for_super"])
    assert profile.person_name is None and profile.birth_date is None


def test_the_2016_get_gives_the_smaller_profile_in_its_own_namespace(ato: Ato):
    entity = _client(ato, ("TRT", "SMF", "PTR"))
    message = ato.ask(cudtl.GetRequest2016(client=ClientIdentifier.of(tfn=entity["tfn"]))).message
    reply = ato.reply(message, cudtl.GetResponse2016)
    assert reply.ok and reply.document is not None
    assert reply.document.client.organisation_name == entity["organisation_name"]
    raw = ato.outcome(message).documents["CUDTLGetResponse"]
    assert 'xmlns="http://www.sbr.gov.au/ato/cudtl/2016"' in raw
    assert "LegalNameT" not in raw and "Superannuation" not in raw


def test_get_needs_a_current_link_and_a_known_client(ato: Ato):
    stranger = _client(ato, ("IND",), linked=False)
    assert error_codes(ato.result(cudtl.GetRequest(client=ClientIdentifier.of(tfn=stranger["tfn"])))) == [
        "CMN.ATO.AUTH.002"
    ]
    assert error_codes(ato.result(cudtl.GetRequest2016(client=ClientIdentifier.of(tfn=stranger["tfn"])))) == [
        "CMN.ATO.AUTH.002"
    ]
    assert error_codes(ato.result(cudtl.GetRequest(client=ClientIdentifier.of(tfn="123456782")))) == [
        "CMN.ATO.GEN.ID01"
    ]


def test_a_2017_document_sent_to_the_2016_service_is_refused(ato: Ato):
    person = _person(ato)
    document = (
        '<CUDTLGetRequest xmlns="http://www.sbr.gov.au/ato/cudtl"><ClientIdentifier>'
        f"<TaxFileNumberId>{person['tfn']}</TaxFileNumberId></ClientIdentifier></CUDTLGetRequest>"
    )
    reply = ato.reply(ato.send_raw(cudtl.GetRequest2016.SERVICE_ACTION, document), cudtl.GetResponse2016)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"]


# --- Validate and Submit ---


def test_validate_answers_the_profile_as_it_would_be_and_changes_nothing(ato: Ato):
    person = _person(ato)
    reply = ato.result(
        cudtl.ValidateRequest(
            client=ClientIdentifier.of(tfn=person["tfn"]),
            entity_type="IND",
            person_name=PersonName("Marsh-Holloway", person["given_name"]),
            death_date=date(2026, 11, 1),
        )
    )
    assert reply.ok and reply.document is not None
    assert [w.code for w in reply.warnings] == ["CMN.ATO.CUDTL.DTL08"]
    profile = reply.document.client
    assert profile.person_name == PersonName("Marsh-Holloway", person["given_name"])
    assert profile.death_date == date(2026, 11, 1)
    assert _row(ato, person["id"]) == person


def test_submit_updates_an_individuals_name_and_dates(ato: Ato):
    person = _person(ato)
    reply = ato.result(
        cudtl.SubmitRequest(
            client=ClientIdentifier.of(tfn=person["tfn"]),
            entity_type="IND",
            person_name=PersonName("O'Brien", "Mary Jane", "Kate"),
            birth_date=date(1970, 5, 6),
            death_date=date(2026, 11, 1),
        )
    )
    assert reply.ok and [w.code for w in reply.warnings] == ["CMN.ATO.CUDTL.DTL08"]
    after = _row(ato, person["id"])
    assert (after["family_name"], after["given_name"], after["other_given_name"]) == ("O'Brien", "Mary Jane", "Kate")
    assert (after["birth_date"], after["death_date"]) == ("1970-05-06", "2026-11-01")
    assert reply.document is not None and reply.document.client.person_name == PersonName(
        "O'Brien", "Mary Jane", "Kate"
    )


def test_submit_updates_an_organisations_names_and_indicators(ato: Ato):
    fund = _client(ato, ("SMF", "TRT"))
    reply = ato.result(
        cudtl.SubmitRequest(
            client=ClientIdentifier.of(tfn=fund["tfn"]),
            entity_type=fund["entity"],
            organisation_name="Harbour & Co. (No. 2) Fund",
            legal_name="The Trustee for Harbour & Co. (No. 2) Fund",
            not_for_profit=True,
            super_regulated=True,
        )
    )
    assert reply.ok and not reply.warnings
    after = _row(ato, fund["id"])
    assert after["organisation_name"] == "Harbour & Co. (No. 2) Fund"
    assert after["legal_name"] == "The Trustee for Harbour & Co. (No. 2) Fund"
    assert (after["not_for_profit"], after["super_regulated"]) == (1, 1)


@pytest.mark.parametrize(
    ("change", "codes"),
    [
        ({"entity_type": "COY", "organisation_name": "Acme Pty Ltd"}, ["CMN.ATO.CUDTL.DTL01"]),
        ({"organisation_name": "Acme Pty Ltd", "not_for_profit": True}, ["CMN.ATO.CUDTL.DTL02"] * 2),
        ({"person_name": PersonName("J0nes")}, ["CMN.ATO.CUDTL.DTL03"]),
        ({"person_name": PersonName("Jones", " Jo")}, ["CMN.ATO.CUDTL.DTL03"]),
        ({"person_name": PersonName("Jones", "A" * 41)}, ["CMN.ATO.CUDTL.DTL04"]),
        ({"birth_date": date(1990, 1, 1), "death_date": date(1989, 12, 31)}, ["CMN.ATO.CUDTL.DTL05"]),
        ({"death_date": date(1800, 1, 1)}, ["CMN.ATO.CUDTL.DTL05"]),
        ({"birth_date": date(2026, 12, 1)}, ["CMN.ATO.CUDTL.DTL06"]),
        ({"death_date": date(2027, 1, 1)}, ["CMN.ATO.CUDTL.DTL06"]),
        ({}, ["CMN.ATO.CUDTL.DTL07"]),
    ],
)
def test_an_individuals_update_breaking_a_rule_is_refused_by_validate_and_submit(ato: Ato, change: dict, codes: list):
    person = _person(ato)
    asked = {"client": ClientIdentifier.of(tfn=person["tfn"]), "entity_type": "IND", **change}
    for request_class in (cudtl.ValidateRequest, cudtl.SubmitRequest):
        reply = ato.result(request_class(**asked))
        assert error_codes(reply) == codes and reply.document is None
    assert _row(ato, person["id"]) == person


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"person_name": PersonName("Smith")}, "PersonNameDetails"),
        ({"death_date": date(2020, 1, 1)}, "DeathD"),
        ({"legal_name": "The Trustee for Nothing"}, "LegalNameT"),
        ({"super_regulated": True}, "SuperannuationFundRegulatedI"),
    ],
)
def test_details_that_do_not_apply_to_the_entity_type_are_refused(ato: Ato, change: dict, field: str):
    business = _client(ato, ("PTR", "OTH") if "super_regulated" in change else ("COY", "OTH"))
    reply = ato.result(
        cudtl.SubmitRequest(client=ClientIdentifier.of(tfn=business["tfn"]), entity_type=business["entity"], **change)
    )
    assert error_codes(reply) == ["CMN.ATO.CUDTL.DTL02"]
    assert reply.errors[0].parameters == {"Field": field, "EntityType": business["entity"]}
    assert _row(ato, business["id"]) == business


def test_an_organisation_name_with_unaccepted_characters_is_refused(ato: Ato):
    business = _client(ato, ("COY",))
    reply = ato.result(
        cudtl.SubmitRequest(
            client=ClientIdentifier.of(tfn=business["tfn"]), entity_type="COY", organisation_name="~Acme~ Pty Ltd"
        )
    )
    assert error_codes(reply) == ["CMN.ATO.CUDTL.DTL03"]
    assert reply.errors[0].parameters == {"Field": "OrganisationNameT"}


def test_an_update_needs_a_current_link(ato: Ato):
    stranger = _client(ato, ("IND",), linked=False)
    reply = ato.result(
        cudtl.SubmitRequest(
            client=ClientIdentifier.of(tfn=stranger["tfn"]), entity_type="IND", birth_date=date(1970, 1, 1)
        )
    )
    assert error_codes(reply) == ["CMN.ATO.AUTH.002"]
    assert _row(ato, stranger["id"]) == stranger


def test_a_malformed_update_is_refused_with_the_xsd_error(ato: Ato):
    person = _person(ato)
    document = (
        '<CUDTLSubmitRequest xmlns="http://www.sbr.gov.au/ato/cudtl"><ClientIdentifier>'
        f"<TaxFileNumberId>{person['tfn']}</TaxFileNumberId></ClientIdentifier>"
        "<BirthD>1970-01-01</BirthD></CUDTLSubmitRequest>"
    )
    reply = ato.reply(ato.send_raw(cudtl.SubmitRequest.SERVICE_ACTION, document), cudtl.SubmitResponse)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"]
    assert "EntityTypeC" in reply.errors[0].text
    assert _row(ato, person["id"]) == person
