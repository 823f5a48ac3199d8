"""Every single-sync business action refuses a malformed document with CMN.ATO.GEN.XML03 naming what is wrong,
through the real gateway to the stand-in ATO, and changes nothing. (MAAS, pushed then pulled, has its own case in
test_ato_maas.py; each service's tests also send a document wrong in a way that matters to that service.)"""

from __future__ import annotations

import pytest

from ato_gateway.api import Reply
from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec, curel
from tests.ato_fixtures import Ato, error_codes

pytestmark = pytest.mark.django_db(transaction=True)
SINGLE_SYNC = [a for a in registry.SERVICE_ACTIONS if a.pattern == "single-sync" and a != registry.PING]


@pytest.mark.parametrize("action", SINGLE_SYNC, ids=lambda a: a.key)
def test_a_malformed_document_is_refused_with_the_xsd_error(ato: Ato, action: registry.ServiceAction) -> None:
    request_class = codec.document_class(action.key, action.request_document)
    response_class = codec.document_class(action.key, action.response_document)
    assert request_class is not None and response_class is not None
    before = ato.sandbox.control("GET", "register")["counts"]
    root, namespace = request_class.ROOT, request_class.NAMESPACE
    document = f'<{root} xmlns="{namespace}"><NotAnElementT>x</NotAnElementT></{root}>'
    reply: Reply[codec.Document] = ato.reply(ato.send_raw(action.key, document), response_class)
    assert error_codes(reply) == ["CMN.ATO.GEN.XML03"] and reply.document is None
    assert "NotAnElementT" in reply.errors[0].text  # the XSD's own words say what is wrong
    assert ato.sandbox.control("GET", "register")["counts"] == before  # the register is untouched


def test_the_xsd_error_withholds_a_tfn_it_quotes(ato: Ato) -> None:
    # The XSD's words quote the value a pattern refused; a TFN (or an account number) must not reach an error text.
    response_class = codec.document_class(curel.SearchRequest.SERVICE_ACTION, "CURELSearchResponse")
    assert response_class is not None
    for tfn in ("8765 43210", "1234567820"):
        root, namespace = curel.SearchRequest.ROOT, curel.SearchRequest.NAMESPACE
        document = (
            f'<{root} xmlns="{namespace}"><ClientIdentifier><TaxFileNumberId>{tfn}</TaxFileNumberId>'
            f"</ClientIdentifier></{root}>"
        )
        reply = ato.reply(ato.send_raw(curel.SearchRequest.SERVICE_ACTION, document), response_class)
        assert error_codes(reply) == ["CMN.ATO.GEN.XML03"]
        error = reply.errors[0]
        assert "TaxFileNumberId" in error.text and "(withheld)" in error.text, error.text
        assert tfn not in error.text and tfn not in str(error.parameters)
