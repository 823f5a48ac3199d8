"""The token service exchange and the SAML token's checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from ato_gateway import wire
from ato_gateway.wire import keystore, registry

from .conftest import PRACTICE_ABN, Pki, signed_ping


def _issue(pki: Pki, *, now: datetime | None = None, abn: str = PRACTICE_ABN) -> wire.IssueRequest:
    body, content_type = wire.sts_build_issue_request(abn=abn, key=pki.key, certificate=pki.certificate, now=now)
    assert content_type.startswith("application/soap+xml")
    return wire.sts_parse_issue_request(body, trust=pki.trust)


def test_issue_round_trip(pki: Pki) -> None:
    request = _issue(pki)
    assert (request.abn, request.credential_type, request.applies_to) == (
        PRACTICE_ABN,
        "D",
        registry.STS_APPLIES_TO_DEFAULT,
    )
    now = datetime.now(UTC)
    response = wire.sts_build_issue_response(
        request=request, issuer="https://sts.test", key=pki.ato_key, certificate=pki.ato, now=now
    )
    token = wire.sts_parse_issue_response(response, sts_certificate=pki.ato)
    assert token.subject_abn == PRACTICE_ABN
    assert abs(token.expires_at - (now + timedelta(minutes=30))) < timedelta(milliseconds=2)
    saml = wire.saml_verify_assertion(token.assertion, issuer_certificate=pki.ato)
    assert saml.issuer == "https://sts.test" and saml.audience == registry.STS_APPLIES_TO_DEFAULT
    assert saml.attributes[registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL] == str(pki.certificate.serial_number)


def test_a_stale_request_is_refused(pki: Pki) -> None:
    with pytest.raises(wire.TokenRejected, match="stale timestamp"):
        _issue(pki, now=datetime.now(UTC) - timedelta(minutes=20))


def test_a_request_for_another_abn_is_not_built(pki: Pki) -> None:
    """The token is for the credential's ABN (the claims ask for the ABN, they do not name one)."""
    with pytest.raises(ValueError, match="not 51824753556's"):
        _issue(pki, abn="51824753556")


def test_an_untrusted_or_tampered_request_is_refused(pki: Pki) -> None:
    body, _ = wire.sts_build_issue_request(abn=PRACTICE_ABN, key=pki.key, certificate=pki.certificate)
    with pytest.raises(wire.CertificateUntrusted):
        wire.sts_parse_issue_request(body, trust=pki.ato)
    with pytest.raises(wire.SignatureInvalid):
        wire.sts_parse_issue_request(re.sub(rb"(:Value>)D(</)", rb"\1X\2", body, count=1), trust=pki.trust)


def test_a_fault_is_token_rejected_and_permanent(pki: Pki) -> None:
    with pytest.raises(wire.TokenRejected, match="credential expired") as refused:
        wire.sts_parse_issue_response(wire.sts_build_fault("credential expired"), sts_certificate=pki.ato)
    assert refused.value.permanent


def test_a_token_from_elsewhere_or_changed_is_refused(pki: Pki) -> None:
    response = wire.sts_build_issue_response(request=_issue(pki), issuer="x", key=pki.key, certificate=pki.certificate)
    with pytest.raises(wire.TokenRejected, match="not issued by the token service"):
        wire.sts_parse_issue_response(response, sts_certificate=pki.ato)
    changed = pki.token.replace(b">53004085616</saml2:NameID>", b">53004085617</saml2:NameID>")
    with pytest.raises(wire.TokenRejected, match="signature is invalid"):
        wire.saml_verify_assertion(changed, issuer_certificate=pki.ato)
    with pytest.raises(wire.TokenRejected, match="expired"):
        wire.saml_verify_assertion(pki.token, issuer_certificate=pki.ato, now=datetime.now(UTC) + timedelta(hours=1))


def test_the_token_in_a_message_must_be_valid_and_the_signers(pki: Pki) -> None:
    request = wire.parse_request(*signed_ping(pki), trust=pki.trust, token_issuer=pki.ato)
    assert request.saml is not None
    with pytest.raises(wire.TokenRejected, match="expired"):
        wire.parse_request(
            *signed_ping(pki), trust=pki.trust, token_issuer=pki.ato, now=datetime.now(UTC) + timedelta(minutes=31)
        )
    # Another credential of the same practice presenting this token: the certificate serial does not match.
    key = keystore.new_rsa_key()
    other = keystore.issue_certificate(
        ca_key=pki.ca_key,
        ca_certificate=pki.ca,
        public_key=key.public_key(),
        common_name="Second device",
        abn=PRACTICE_ABN,
    )
    body, content_type = wire.build_signed_pull(
        message_id="p@x", mpc="m", key=key, certificate=other, saml_assertion=pki.token
    )
    with pytest.raises(wire.TokenRejected, match="another certificate"):
        wire.parse_request(body, content_type, trust=pki.trust, token_issuer=pki.ato)
    # A credential of another ABN presenting it.
    stranger = keystore.issue_certificate(
        ca_key=pki.ca_key,
        ca_certificate=pki.ca,
        public_key=key.public_key(),
        common_name="Other business",
        abn="11000002568",
    )
    body, content_type = wire.build_signed_pull(
        message_id="p@x", mpc="m", key=key, certificate=stranger, saml_assertion=pki.token
    )
    with pytest.raises(wire.TokenRejected, match="for ABN 53004085616"):
        wire.parse_request(body, content_type, trust=pki.trust, token_issuer=pki.ato)
    body, content_type = wire.build_signed_pull(
        message_id="p@x", mpc="m", key=pki.key, certificate=pki.certificate, saml_assertion=None
    )
    with pytest.raises(wire.TokenRejected, match="no SAML token"):
        wire.parse_request(body, content_type, trust=pki.trust, token_issuer=pki.ato)


def test_a_token_checked_once_is_still_checked_for_time_issuer_and_changes(pki: Pki) -> None:
    """The signature check of a token is kept for its identical bytes; nothing else is skipped on later uses."""
    first = wire.saml_verify_assertion(pki.token, issuer_certificate=pki.ato)
    first.attributes.clear()  # what a caller does with its copy does not reach the next caller
    again = wire.saml_verify_assertion(pki.token, issuer_certificate=pki.ato)
    assert again.attributes[registry.SAML_ATTRIBUTE_CERTIFICATE_SERIAL] == str(pki.certificate.serial_number)
    with pytest.raises(wire.TokenRejected, match="expired"):
        wire.saml_verify_assertion(pki.token, issuer_certificate=pki.ato, now=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(wire.TokenRejected, match="not valid before"):
        wire.saml_verify_assertion(pki.token, issuer_certificate=pki.ato, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(wire.TokenRejected, match="not issued by the token service"):
        wire.saml_verify_assertion(pki.token, issuer_certificate=pki.certificate)  # the same bytes, another issuer
    changed = pki.token.replace(b">53004085616</saml2:NameID>", b">53004085617</saml2:NameID>")
    with pytest.raises(wire.TokenRejected, match="signature is invalid"):
        wire.saml_verify_assertion(changed, issuer_certificate=pki.ato)
