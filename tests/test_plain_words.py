"""The plain words for every code the stand-in ATO can answer with, and for every way a message can fail before or
instead of an answer (ato_gateway/api/words.py). The stand-in's table is read here, as nowhere else in the portal:
it is the list of codes the words must keep up with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ato_gateway.api.words import (
    CORRECTED_TFN_WORDS,
    FAILURE_WORDS,
    GENERIC_FAILURE_WORDS,
    GENERIC_WORDS,
    PLAIN_WORDS,
    failure_in_plain_words,
    field_in_words,
    in_plain_words,
    placeholders,
)
from ato_gateway.wire import ebms
from ato_gateway.wire import errors as wire_errors
from ato_sandbox.errors import TABLE, ErrorCode

ROOT = Path(__file__).resolve().parent.parent
TFN = "123456782"  # passes the check digit
CODES = [e.code for e in TABLE]
# A code as the ATO or the gateway writes one (CMN.ATO.CUREL.SRCH01, GEN.OK, EBMS:0004, HTTP:503), and an element
# name (PostcodeT, StateOrTerritoryC): neither belongs in what an agent reads.
CODE_PATTERN = re.compile(r"\b[A-Z]{2,}[.:][A-Z0-9]")
ELEMENT_PATTERN = re.compile(r"\b[A-Z][a-z]+[A-Z][A-Za-z]*\b")


def _source(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def test_every_code_of_the_stand_ins_table_has_plain_words() -> None:
    assert [code for code in CODES if code not in PLAIN_WORDS] == []


@pytest.mark.parametrize("definition", TABLE, ids=CODES)
def test_placeholders_are_only_the_codes_own_parameters(definition: ErrorCode) -> None:
    assert placeholders(PLAIN_WORDS[definition.code]) <= set(definition.parameters)


def test_no_words_hold_a_code_or_an_element_name() -> None:
    texts = {**PLAIN_WORDS, **FAILURE_WORDS, "corrected": CORRECTED_TFN_WORDS, "generic": GENERIC_WORDS}
    texts["generic failure"] = GENERIC_FAILURE_WORDS
    assert {key: text for key, text in texts.items() if CODE_PATTERN.search(text)} == {}
    assert {key: text for key, text in texts.items() if ELEMENT_PATTERN.search(re.sub(r"{\w+}", "", text))} == {}
    assert [key for key, text in FAILURE_WORDS.items() if "{" in text or "}" in text] == []


@pytest.mark.parametrize("definition", TABLE, ids=CODES)
def test_filled_from_the_parameters(definition: ErrorCode) -> None:
    """Every parameter a code's words name is shown; the ATO's own text is not, as the words say it better."""
    values = {name: f"zq{number}" for number, name in enumerate(definition.parameters)}
    said = in_plain_words(definition.code, "The ATO's own text.", values)
    assert "{" not in said and "\x00" not in said
    assert said != "The ATO's own text."
    for name in placeholders(PLAIN_WORDS[definition.code]):
        assert values[name] in said.lower(), name


@pytest.mark.parametrize("definition", TABLE, ids=CODES)
def test_without_parameters_or_text_the_words_still_read(definition: ErrorCode) -> None:
    said = in_plain_words(definition.code)
    assert "{" not in said and "}" not in said and "\x00" not in said
    assert "()" not in said and "  " not in said and " ." not in said
    assert said[0].isupper() or said[0].isdigit()
    if not placeholders(PLAIN_WORDS[definition.code]):
        assert said == PLAIN_WORDS[definition.code]


def test_a_missing_parameter_gives_way_to_the_atos_own_text() -> None:
    text = "Address[1]/AddressDetails/PostcodeT: 3000 is not a postcode of NSW."
    assert in_plain_words("CMN.ATO.CUADDR.ADR01", text, {"Postcode": "3000"}) == text
    # Without text of its own, the words stand, with neutral words for what is missing.
    assert in_plain_words("CMN.ATO.CUADDR.ADR01", "", {"Postcode": "3000"}) == (
        "The postcode 3000 is not in the state given. Check that detail and the state."
    )
    assert in_plain_words("CMN.ATO.SPRMBRINFO.DUP01", "", {}) == (
        "The transaction reference is used more than once in this message, so the repeat was not processed. Give "
        "each transaction its own reference and send it again."
    )


@pytest.mark.parametrize(
    ("code", "parameters", "expected"),
    [
        (
            "CMN.ATO.CUADDR.ADR01",
            {"Field": "Address[2]/AddressDetails/PostcodeT", "Postcode": "3000", "State": "NSW"},
            "The postcode 3000 is not in NSW. Check the postcode of address 2 and the state.",
        ),
        (
            "CMN.ATO.CUADDR.DT01",
            {
                "Field": "Address[1]/StartD",
                "Usage": "POS",
                "Level": "account AS 001",
                "StartD": "2026-07-01",
                "CurrentStartD": "2026-08-15",
            },
            "The new postal address for activity statement account 001 would start (1 July 2026) before the current "
            "one started (15 August 2026). Choose a later start date.",
        ),
        (
            "CMN.ATO.CUADDR.ADR05",
            {"Field": "Address[1]", "Usage": "EML", "Expected": "ElectronicAddressT only"},
            "Address 1 is marked as the email address, so give an email or web address only.",
        ),
        (
            "CMN.ATO.CUFI.ACC01",
            {"Account": "AS 001"},
            "The ATO holds no record of activity statement account 001 for this client. Check the account and try "
            "again.",
        ),
        (
            "CMN.ATO.CUREL.LNK03",
            {"Account": "activity statement account 001", "Role": "PAYGW"},
            "The ATO holds no PAYG withholding role on activity statement account 001 for this client. Check the "
            "role and try again.",
        ),
        (
            "CMN.ATO.AUTH.002",
            {"Level": "role GST"},
            "You have no current link that covers the GST role, so the ATO will not show or change it. Add the "
            "link first, then try again.",
        ),
        (
            "CMN.ATO.CUDTL.DTL02",
            {"Field": "LegalNameT", "EntityType": "COY"},
            "The legal name does not apply to this client, which the ATO holds as a company.",
        ),
        (
            "CMN.ATO.COMMPREF.EML03",
            {"Channel": "ELEC"},
            "The email address you gave was not kept: the ATO keeps one only when letters go by email, and these go "
            "to your ATO online inbox.",
        ),
        (
            "CMN.ATO.COMMPREF.EML02",
            {"Email": "jo@example"},
            "The email address jo@example is not valid. Check it with your client.",
        ),
        (
            "CMN.ATO.SPRMBRINFO.EVT02",
            {"Status": "OPEN", "Event": "CLOSED"},
            "The account status (open) does not agree with the event (closed), so this transaction was not "
            "processed. An account opened is open and one closed is closed: correct one of them and send the "
            "transaction again.",
        ),
    ],
)
def test_values_are_put_in_words(code: str, parameters: dict[str, str], expected: str) -> None:
    assert in_plain_words(code, "The ATO's own text.", parameters) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Address[3]/UsageC", "the address type of address 3"),
        ("Address[1]/TelephoneNumberT", "the phone number of address 1"),
        ("AuthorisedContact/PersonNameDetails/GivenNameT", "the given name"),
        ("PersonNameDetails", "the person's name"),
        ("FinancialInstitutionAccountBankStateBranchN", "the BSB"),
        ("Account[2]", "account 2"),
        ("SomeNewElementT", "some new element"),  # one the list does not know
        ("not/a[path", "not/a[path"),
    ],
)
def test_element_paths_in_words(path: str, expected: str) -> None:
    assert field_in_words(path) == expected


def test_a_tfn_in_a_parameter_or_in_the_atos_text_is_masked() -> None:
    assert TFN not in in_plain_words("CMN.ATO.COMMPREF.EML02", "", {"Email": TFN})
    assert TFN not in in_plain_words("CMN.ATO.SOMETHING.NEW", f"The TFN {TFN} is wrong.")
    assert in_plain_words("CMN.ATO.SOMETHING.NEW", f"The TFN {TFN} is wrong.") == "The TFN [TFN REDACTED] is wrong."


def test_an_unknown_code_shows_the_atos_text_or_a_generic_sentence() -> None:
    assert in_plain_words("CMN.ATO.SOMETHING.NEW", "Something new happened.") == "Something new happened."
    assert in_plain_words("CMN.ATO.SOMETHING.NEW", "  ") == GENERIC_WORDS
    assert in_plain_words("") == GENERIC_WORDS


def test_an_ebms_error_given_as_an_item_reads_as_its_failure() -> None:
    assert in_plain_words("EBMS:0101", "FailedAuthentication") == FAILURE_WORDS["EBMS:0101"]


# --- the MAAS TFN validation responses, as the ATO's CRT Alert 071/2018 (seed 003) has them ---


def test_a_corrected_or_provided_tfn_says_to_update_the_records_and_never_shows_the_tfn() -> None:
    said = in_plain_words("CMN.ATO.SPRMBRINFO.VALID", "", {"CORRECTEDTFN": TFN})
    assert said == CORRECTED_TFN_WORDS
    assert "Update your records with the TFN" in said and TFN not in said
    plain = in_plain_words("CMN.ATO.SPRMBRINFO.VALID", "The member's details have been matched.", {})
    assert plain == PLAIN_WORDS["CMN.ATO.SPRMBRINFO.VALID"]
    assert "No action is needed." in plain


def test_unmatched_and_other_holder_responses_keep_the_atos_actions() -> None:
    unmatched = PLAIN_WORDS["CMN.ATO.SPRMBRINFO.NOT VALID"]
    for phrase in (
        "the TFN you gave does not match",
        "with no TFN given",
        "total super balance and co-contributions",
        "During the foundation data load, no action is needed.",
        "During real-time reporting, take reasonable steps",
        "within 30 days",
    ):
        assert phrase in unmatched
    other_holder = PLAIN_WORDS["CMN.ATO.SPRMBRINFO.096604"]
    for phrase in ("different account holder", "not processed", "report the account as closed", "confirm who"):
        assert phrase in other_holder
    assert "within 30 days" in PLAIN_WORDS["CMN.ATO.SPRMBRINFO.PART01"]


# --- failures before or instead of an ATO answer ---


def _transport_codes() -> list[str]:
    """Every code ato_gateway/transport.py can raise, a status code for each kind of HTTP status."""
    codes = []
    for is_f, code in re.findall(r'code=(f?)"([^"]+)"', _source("ato_gateway/transport.py")):
        if is_f:
            codes += [code.replace("{status}", str(status)) for status in (301, 400, 404, 500, 502, 503, 504)]
        else:
            codes.append(code)
    return sorted(set(codes))


def test_transport_codes_are_read_from_the_transport() -> None:
    assert {"HTTP:URL", "HTTP:TIMEOUT", "HTTP:CONNECTION", "HTTP:503"} <= set(_transport_codes())


@pytest.mark.parametrize("code", _transport_codes())
def test_every_transport_failure_has_its_own_words(code: str) -> None:
    said = failure_in_plain_words(code, f"The ATO's service answered with TFN {TFN}.")
    assert said not in (GENERIC_FAILURE_WORDS, FAILURE_WORDS["HTTP:"])
    assert TFN not in said


def _gateway_codes() -> set[str]:
    found: set[str] = set()
    for path in (
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "ato_gateway" / "services").glob("*.py")),
        "ato_gateway/tokens.py",
    ):
        found |= set(re.findall(r'"((?:GATEWAY|REPLY|EVENT):[A-Z_]+)', _source(path)))
    return found | {"HANDLER"}


def _wire_exceptions() -> set[str]:
    """The wire library's exceptions, which the gateway records by class name."""
    found: set[str] = set()
    pending: list[type[Exception]] = [wire_errors.WireError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending += cls.__subclasses__()
    return found


def _ebms_codes() -> set[str]:
    """The ebMS3 codes, every one the wire library raises and every one the stand-in ATO answers with."""
    raised = set(re.findall(r'"(EBMS:[0-9]{4})"', _source("ato_gateway/wire/errors.py")))
    sent = set(re.findall(r'"(EBMS:[0-9]{4})"', _source("ato_sandbox/app.py")))
    return set(ebms.STANDARD_ERRORS) | raised | sent


def test_gateway_codes_are_read_from_the_gateway() -> None:
    assert {"GATEWAY:NO_OUTCOME", "GATEWAY:INTERNAL", "GATEWAY:NO_RESPONSE", "REPLY:TOKEN"} <= _gateway_codes()
    assert {"REPLY:MALFORMED", "REPLY:MISMATCH", "REPLY:REPLAYED"} <= _gateway_codes()
    assert {"SignatureInvalid", "KeystoreError"} <= _wire_exceptions()
    assert {"EBMS:0004", "EBMS:0006", "EBMS:0009", "EBMS:0101", "EBMS:0303"} <= _ebms_codes()


@pytest.mark.parametrize("code", sorted(_gateway_codes() | _wire_exceptions() | _ebms_codes()))
def test_every_gateway_wire_and_ebms_failure_has_its_own_words(code: str) -> None:
    assert code in FAILURE_WORDS or failure_in_plain_words(code, "") != GENERIC_FAILURE_WORDS
    if code.startswith("EBMS:") or code in _wire_exceptions():
        assert code in FAILURE_WORDS  # each its own words, not the words for all of them


def test_statuses_and_ebms_codes_without_words_of_their_own_match_by_prefix() -> None:
    assert failure_in_plain_words("HTTP:599", "") == FAILURE_WORDS["HTTP:5"]
    assert failure_in_plain_words("HTTP:418", "") == FAILURE_WORDS["HTTP:4"]
    assert failure_in_plain_words("EBMS:0999", "") == FAILURE_WORDS["EBMS:"]
    assert failure_in_plain_words("REPLY:FAULT:Sender", "") == FAILURE_WORDS["REPLY:FAULT:"]
    assert failure_in_plain_words("REPLY:FAULT:Receiver", "") == FAILURE_WORDS["REPLY:FAULT:Receiver"]


def test_failure_text_is_shown_only_where_it_is_meant_for_people_and_never_with_a_tfn() -> None:
    # A transport failure's text is for the console: the agent gets the words alone.
    assert failure_in_plain_words("HTTP:TIMEOUT", f"Read timed out; TFN {TFN}") == FAILURE_WORDS["HTTP:TIMEOUT"]
    # The gateway's own sentence for people is added, masked.
    said = failure_in_plain_words("WireError", f"No machine credential is selected ({TFN}).")
    assert said.startswith(FAILURE_WORDS["WireError"])
    assert "No machine credential is selected ([TFN REDACTED])." in said
    # A code with no words: the generic sentence, with the text masked.
    said = failure_in_plain_words("SOMETHING:NEW", f"Sent TFN {TFN[:3]} {TFN[3:6]} {TFN[6:]}.")
    assert said.startswith(GENERIC_FAILURE_WORDS) and "[TFN REDACTED]" in said and TFN[6:] not in said
    assert failure_in_plain_words("SOMETHING:NEW", "") == GENERIC_FAILURE_WORDS
