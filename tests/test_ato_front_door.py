"""The stand-in ATO's front door through the real gateway: who may act, before any business rule (issue 18, item
14; seen to fail with the check of the agent's ABN against the credential's taken out)."""

from __future__ import annotations

from datetime import date

import pytest

from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from tests.ato_fixtures import OTHER_AGENT_TAN, Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_agent_number_of_another_abn_than_the_credential_is_cmn_ato_auth_001(ato: Ato):
    """The practice quotes the other agent's number (registered to another ABN) with its own credential: refused,
    even for a client that other agent is linked to."""
    type(ato.practice).objects.filter(pk=ato.practice.pk).update(agent_number=OTHER_AGENT_TAN)
    person = ato.query(
        "SELECT t.* FROM reg_taxpayers t JOIN reg_links l ON l.taxpayer_id = t.id "
        "JOIN reg_agents a ON a.id = l.agent_id WHERE t.entity = 'IND' AND t.death_date IS NULL AND a.tan = ? "
        "AND l.end_date IS NULL ORDER BY t.id LIMIT 1",
        OTHER_AGENT_TAN,
    )[0]
    reply = ato.result(
        curel.SearchRequest(
            client=ClientIdentifier.of(tfn=person["tfn"]),
            person_name=PersonName(person["family_name"]),
            birth_date=date.fromisoformat(person["birth_date"]),
        )
    )
    assert error_codes(reply) == ["CMN.ATO.AUTH.001"] and reply.document is None
