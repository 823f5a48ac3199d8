"""What the ATO and the gateway can answer, in words an agent reads on screen and can act on.

``PLAIN_WORDS`` has every code the stand-in ATO can put in an answer (errors, warnings and information alike),
``FAILURE_WORDS`` every way a message can fail before or instead of an ATO answer (the gateway's own codes, the
transport's and the ebMS errors). Words say what happened and what the agent can do, in plain Australian English:
no codes, no element names. ``{Parameter}`` placeholders name only parameters the ATO sends with that code; their
values are put in words too (an address usage ``RES`` becomes "residential address", a date "1 July 2026").

The stand-in ATO's table (``ato_sandbox.errors.TABLE``) is the source of the codes, but the portal never imports the
stand-in (pyproject.toml's import contracts): the words are kept here and tests/test_plain_words.py checks them
against that table, code by code and parameter by parameter.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import date

from portal.logging import redact_tfns

# Ways out the agent is pointed to, in one place so that every entry says them alike.
_ADMIN = "a practice admin"
_KEPT = (
    "The request is kept: the portal sends it again by itself when that can help, and otherwise "
    f"{_ADMIN} can resend it from the gateway console. The ATO acts on a message only once, so nothing is done twice."
)
_NOTHING_SENT = "Nothing was sent to the ATO, so nothing has changed there."
_REQUEST_NOT_SENT = "The request itself was not sent, so nothing has changed at the ATO."
_REFUSED = "The ATO refused the message before acting on it, so nothing was changed."
_UNVERIFIED = (
    "The ATO may have acted on the request. The request is kept, and "
    f"{_ADMIN} can resend it from the gateway console: the ATO acts on a message only once and answers a resend "
    "with its first answer."
)
_LIST_AGAIN = "The list could not be continued from where it stopped. Start the list again from the beginning."
_NO_CLIENT = "The ATO holds no client with that TFN, ABN or WPN. Check the number with your client."
_NO_ACCOUNT = "The ATO holds no record of {Account} for this client. Check the account and try again."
_PHONE = "{Field} is not a phone number the ATO accepts: give 6 to 15 digits, with no spaces or other characters."
_EMAIL = "{Field} is not an email address the ATO accepts. Check it with your client."
_FUTURE_START = "{Field} ({StartD}) is in the future: a change can start today at the latest."
_NOT_PROCESSED = "so this transaction was not processed."
# A document failing its schema: the request being built (nothing sent) or the ATO's answer (it may have acted).
_OUT_OF_FORM = (
    "A message between the portal and the ATO was not in the form it should be, so the portal stopped. If it was "
    "the request, nothing was sent; if it was the ATO's answer, the ATO may have acted on the request, and "
    f"{_ADMIN} can resend it safely from the gateway console."
)

PLAIN_WORDS: dict[str, str] = {
    # --- common ---
    "GEN.OK": "The ATO has processed the request.",
    "CMN.ATO.AUTH.001": (
        "The ATO does not link the practice's agent registration to the business that holds its machine credential "
        f"(ABN {{CredentialABN}}), so it refused the request and changed nothing. Ask {_ADMIN} to check that the "
        "machine credential and the agent number both belong to this practice."
    ),
    "CMN.ATO.AUTH.002": (
        "You have no current link that covers {Level}, so the ATO will not show or change it. Add the link "
        "first, then try again."
    ),
    "CMN.ATO.AUTH.003": (
        "The ATO does not recognise the practice's registered agent number ({AgentNumber}). "
        f"Ask {_ADMIN} to check the agent number in the practice's details."
    ),
    "CMN.ATO.GEN.XML03": (
        "The ATO could not read the request: it was not in the form the ATO expects. This is a fault in the "
        f"portal, not in what you entered, and nothing was changed. Tell {_ADMIN}."
    ),
    # A bulk or batch message (MAAS) goes as one attachment holding every record, and says its document type:
    # both are the portal's to get right, never the agent's.
    "CMN.ATO.GEN.UNEXPECTEDNUMPAYLOADS": (
        "The ATO takes a bulk message as one attachment holding all its records, and this one had more ({Count}). "
        f"This is a fault in the portal, not in what you entered, and nothing was processed. Tell {_ADMIN}."
    ),
    "CMN.ATO.GEN.ID01": _NO_CLIENT,
    # --- CUREL (client relationships: search, link, remove, list) ---
    "CMN.ATO.CUREL.SRCH01": _NO_CLIENT,
    "CMN.ATO.CUREL.SRCH02": (
        "The name you gave does not match the name the ATO holds for that TFN, ABN or WPN. Check the client's "
        "name (for a person, the family name; for an organisation, its name or legal name) and try again."
    ),
    "CMN.ATO.CUREL.SRCH03": (
        "The ATO needs a person's date of birth to find them, and the one you gave does not match the one it "
        "holds. Check it with your client and try again."
    ),
    # The level and its shape come as codes (CLIENT, "takes no account and no role"): the rule itself says more.
    "CMN.ATO.CUREL.LNK01": (
        "The link does not fit its level: a link to the whole client takes no account and no role, a link to an "
        "account names the account and no role, and a link to a role names an activity statement account and "
        "one of its roles. Check what the link is for and try again."
    ),
    "CMN.ATO.CUREL.LNK02": _NO_ACCOUNT,
    "CMN.ATO.CUREL.LNK03": ("The ATO holds no {Role} role on {Account} for this client. Check the role and try again."),
    "CMN.ATO.CUREL.LNK04": (
        "A BAS agent can be linked only to a client's activity statement accounts and their roles, not to "
        "{Covers}. Choose an activity statement account or one of its roles instead."
    ),
    "CMN.ATO.CUREL.LNK05": "You already have a link for {Covers}, so it was not added again.",
    "CMN.ATO.CUREL.LNK06": (
        "Going ahead will end the link {AgentName} ({AgentNumber}) has for {Covers}: only one agent can hold "
        "that link at a time. Go ahead only if the client wants you to take it over."
    ),
    "CMN.ATO.CUREL.LNK07": (
        "The link {AgentName} ({AgentNumber}) had for {Covers} has ended: your new link replaces it."
    ),
    "CMN.ATO.CUREL.REM01": (
        "You have no current link for {Covers}, so there is nothing to remove. Check your links to this client."
    ),
    "CMN.ATO.CUREL.REM02": (
        "Removing these links leaves you with no access to this client at the ATO. To act for them again you "
        "would need to add a link."
    ),
    "CMN.ATO.CUREL.REM03": "You no longer have any access to this client at the ATO.",
    "CMN.ATO.CUREL.LST01": _LIST_AGAIN,
    "CMN.ATO.CUREL.LST02": (
        "The end of the period you chose ({End}) is before its start ({Start}). Choose an end date on or after "
        "the start date."
    ),
    # --- CUADDR (addresses) ---
    "CMN.ATO.CUADDR.LST01": _LIST_AGAIN,
    "CMN.ATO.CUADDR.ACC01": (
        "You asked to update more accounts at once ({Count}) than the ATO takes in one request (at most "
        "{Maximum}). Make the change in smaller groups of accounts."
    ),
    "CMN.ATO.CUADDR.ACC02": _NO_ACCOUNT,
    "CMN.ATO.CUADDR.ADR01": "The postcode {Postcode} is not in {State}. Check {Field} and the state.",
    "CMN.ATO.CUADDR.ADR02": (
        "An address in Australia needs its state or territory and its postcode: {Field} is missing."
    ),
    "CMN.ATO.CUADDR.ADR03": _PHONE,
    "CMN.ATO.CUADDR.ADR04": _EMAIL,
    "CMN.ATO.CUADDR.ADR05": "{Field} is marked as the {Usage}, so give {Expected}.",
    "CMN.ATO.CUADDR.ADR06": "The {Usage} is given more than once ({Field}). Give each one only once.",
    "CMN.ATO.CUADDR.ADR07": (
        "The authorised contact is not changed as an address ({Field}): change it as the authorised contact."
    ),
    "CMN.ATO.CUADDR.DT01": (
        "The new {Usage} for {Level} would start ({StartD}) before the current one started ({CurrentStartD}). "
        "Choose a later start date."
    ),
    "CMN.ATO.CUADDR.DT02": _FUTURE_START,
    "CMN.ATO.CUADDR.W01": "The {Usage} for {Level} is already the one the ATO holds, so nothing changes.",
    # --- CUASSOC (associates) ---
    "CMN.ATO.CUASSOC.LST01": _LIST_AGAIN,
    # --- CUAUTHCNTCT (authorised contacts) ---
    "CMN.ATO.CUAUTHCNTCT.ACC02": _NO_ACCOUNT,
    "CMN.ATO.CUAUTHCNTCT.CNT01": "An authorised contact needs a family name and a given name: {Field} is missing.",
    "CMN.ATO.CUAUTHCNTCT.CNT02": _PHONE,
    "CMN.ATO.CUAUTHCNTCT.CNT03": _EMAIL,
    "CMN.ATO.CUAUTHCNTCT.DT01": (
        "The new authorised contact for {Level} would start ({StartD}) before the current one started "
        "({CurrentStartD}). Choose a later start date."
    ),
    "CMN.ATO.CUAUTHCNTCT.DT02": _FUTURE_START,
    "CMN.ATO.CUAUTHCNTCT.W01": (
        "The authorised contact for {Level} is already the one the ATO holds, so nothing changes."
    ),
    "CMN.ATO.CUAUTHCNTCT.W02": (
        "The ATO holds more than one current authorised contact ({Count}) for {Level}: the new contact replaces "
        "all of them."
    ),
    # --- CUDTL (client details) ---
    "CMN.ATO.CUDTL.DTL01": (
        "The ATO holds this client as {EntityType}, and a client's entity type cannot change. Check the entity "
        "type: a business that has restructured is a new entity, with its own TFN and ABN."
    ),
    "CMN.ATO.CUDTL.DTL02": "{Field} does not apply to this client, which the ATO holds as {EntityType}.",
    "CMN.ATO.CUDTL.DTL03": (
        "{Field} has characters the ATO does not accept in a name. A person's name takes letters, spaces, hyphens "
        "and apostrophes, an organisation's also digits and common punctuation, with no space at either end and "
        "no double spaces."
    ),
    "CMN.ATO.CUDTL.DTL04": "{Field} is longer than the ATO accepts (at most {Maximum} characters).",
    "CMN.ATO.CUDTL.DTL05": "The date of death is before the client's date of birth. Check both dates.",
    "CMN.ATO.CUDTL.DTL06": "{Field} cannot be in the future.",
    "CMN.ATO.CUDTL.DTL07": "The change gives no detail to update. Enter at least one detail to change.",
    "CMN.ATO.CUDTL.DTL08": (
        "This records a date of death for the client: from that date the ATO treats the client as a deceased "
        "estate. Check that the date is right."
    ),
    # --- CUFI (bank accounts for refunds) ---
    # The fields are the bank account's own and the words name them; the ATO never echoes an account number.
    "CMN.ATO.CUFI.ACC01": _NO_ACCOUNT,
    "CMN.ATO.CUFI.FI01": (
        "The BSB is not one the ATO accepts: it must be six digits, of a known bank's branch. Check it with your "
        "client."
    ),
    "CMN.ATO.CUFI.FI02": "The account number must be 5 to 9 digits. Check it with your client.",
    "CMN.ATO.CUFI.FI03": (
        "The account name must be given, in up to 32 characters: letters, digits, spaces, ampersands, "
        "apostrophes, hyphens, full stops, commas, slashes and brackets."
    ),
    "CMN.ATO.CUFI.FI04": "These bank account details are already the ones the ATO holds, so nothing was changed.",
    "CMN.ATO.CUFI.FI05": (
        "The account name does not match the client's name. The ATO pays refunds only into an account held by "
        "the client or into a registered tax agent's trust account: check that the account is one of those."
    ),
    "CMN.ATO.CUFI.LST01": _LIST_AGAIN,
    # --- COMMPREF (how the ATO sends letters) ---
    "CMN.ATO.COMMPREF.EML01": "Letters sent by email need an email address. Enter the client's email address.",
    "CMN.ATO.COMMPREF.EML02": "The email address {Email} is not valid. Check it with your client.",
    "CMN.ATO.COMMPREF.EML03": (
        "The email address you gave was not kept: the ATO keeps one only when letters go by email, and these go "
        "{Channel}."
    ),
    "CMN.ATO.COMMPREF.CHN01": (
        "The practice default cannot be email: the ATO emails letters only to a client's own address, set for "
        "that client. Choose the online inbox or post as the default, and email for each client who wants it."
    ),
    "CMN.ATO.COMMPREF.DEF01": (
        "The practice default itself cannot be removed; only a client can be returned to it. Choose a client first."
    ),
    "CMN.ATO.COMMPREF.DEF02": (
        "This client has no preference of its own: it already follows the practice default, so nothing changes."
    ),
    "CMN.ATO.COMMPREF.CAT01": (
        "As a BAS agent, the practice may set where the ATO sends only a client's activity statement and debt "
        "letters, not its {Category} letters. Leave that category out, or ask the client's tax agent."
    ),
    "CMN.ATO.COMMPREF.CAT02": (
        "As a BAS agent, the practice may not set where every letter of a client goes. Choose the activity "
        "statement or debt categories only."
    ),
    "CMN.ATO.COMMPREF.LST01": _LIST_AGAIN,
    # --- CC (client communications: the ATO's letters) ---
    "CMN.ATO.CC.LST01": (
        "The end date ({IssuedToD}) is before the start date ({IssuedFromD}). Choose an end date on or after the "
        "start date."
    ),
    "CMN.ATO.CC.LST02": (
        "The date range is longer than the ATO lists letters for at a time (at most {Years} years). Choose a "
        "shorter date range."
    ),
    "CMN.ATO.CC.LST03": (
        "You asked about more clients at once ({Count}) than the ATO takes in one request (at most {Maximum}). "
        "Ask in smaller groups."
    ),
    "CMN.ATO.CC.LST04": _LIST_AGAIN,
    "CMN.ATO.CC.GET01": (
        "The ATO found no letter with that reference ({CommunicationId}). List the client's letters again and "
        "choose it from there."
    ),
    # --- MAAS (SPRMBRINFO: a super fund's member accounts) ---
    # The TFN validation responses and what to do about them are the ATO's own (CRT Alert 071/2018, seed 003):
    # their meaning is kept exactly. A corrected or provided TFN comes as VALID with CORRECTEDTFN, worded by
    # CORRECTED_TFN_WORDS below. The 30 days run from when the fund collects this response.
    "CMN.ATO.SPRMBRINFO.VALID": (
        "The ATO matched the member's details (and the TFN, if you gave one) to the member. No action is needed."
    ),
    "CMN.ATO.SPRMBRINFO.NOT VALID": (
        "The ATO could not match this member: the TFN you gave does not match the member's details the ATO holds, "
        "or, with no TFN given, the ATO could not find the member from their details. Until the member is "
        "matched, their later contribution reports are not matched either, and those contributions are left out "
        "of the ATO's calculations, such as the member's total super balance and co-contributions. During the "
        "foundation data load, no action is needed. During real-time reporting, take reasonable steps to find "
        "out whether anything in the details you reported is wrong or missing and, if so, report the correct "
        "details within 30 days."
    ),
    "CMN.ATO.SPRMBRINFO.096604": (
        "The account reported belongs to a different account holder at the ATO, so this transaction was not "
        "processed. Either report the account as closed under that other account holder, or contact the ATO to "
        "confirm who holds it; then send the transaction again, within 30 days."
    ),
    "CMN.ATO.SPRMBRINFO.099264": (
        "The ATO has already processed a more recent transaction for this member account (its event on "
        "{LastEventDate}), so this older one (its event on {EventDate}) was not processed. Do not send it again "
        "as it is: if what it reports still holds, report it as a new event dated no earlier than that more "
        "recent one."
    ),
    "CMN.ATO.SPRMBRINFO.FUND01": (
        "The ATO does not know the sender (ABN {ABN}) as a super fund or as the administrator of one, so nothing "
        f"in the message was processed. Ask {_ADMIN} to check that the machine credential is the fund's own or "
        "that of the practice the ATO holds as the fund's administrator."
    ),
    "CMN.ATO.SPRMBRINFO.PART01": (
        "{Failed} of the {Total} transactions were not processed; the others were. Correct the ones not "
        "processed and send them again within 30 days."
    ),
    "CMN.ATO.SPRMBRINFO.DUP01": (
        "The transaction reference {TransactionId} is used more than once in this message, so the repeat was not "
        "processed. Give each transaction its own reference and send it again."
    ),
    "CMN.ATO.SPRMBRINFO.USI01": (
        f"The USI {{USI}} is not of a fund your credential may report for, {_NOT_PROCESSED} Check the USI and "
        "send the transaction again; if it is right, ask the ATO to record your practice as the fund's "
        "administrator."
    ),
    "CMN.ATO.SPRMBRINFO.MBR01": (
        f"The member number is missing, {_NOT_PROCESSED} Add it and send the transaction again."
    ),
    "CMN.ATO.SPRMBRINFO.TFN01": (
        f"The TFN given for this member is not a valid TFN, {_NOT_PROCESSED} Check the TFN with the member and "
        "send the transaction again."
    ),
    "CMN.ATO.SPRMBRINFO.DOB01": (
        f"The member's date of birth ({{BirthDate}}) is in the future, {_NOT_PROCESSED} Correct it and send the "
        "transaction again."
    ),
    "CMN.ATO.SPRMBRINFO.EVT01": (
        f"The event date ({{EventDate}}) is in the future, {_NOT_PROCESSED} Correct it and send the transaction again."
    ),
    "CMN.ATO.SPRMBRINFO.EVT02": (
        f"The account status ({{Status}}) does not agree with the event ({{Event}}), {_NOT_PROCESSED} An account "
        "opened is open and one closed is closed: correct one of them and send the transaction again."
    ),
    "CMN.ATO.SPRMBRINFO.EVT03": (
        f"The ATO does not hold this account as closed, {_NOT_PROCESSED} Only a closed account can be reopened: "
        "report it as changed instead, or report it closed first if it was, then send the transaction again."
    ),
    "CMN.ATO.SPRMBRINFO.ATT01": (
        f"{{Field}} has a code the ATO does not know ({{Value}}), {_NOT_PROCESSED} Choose one of the values the "
        "ATO lists for it and send the transaction again."
    ),
    "CMN.ATO.SPRMBRINFO.GET01": (
        "The ATO holds no member account with that number ({MemberId}) for that fund (USI {USI}). Check the "
        "member number; if it is right, the account has not been reported yet: report it first."
    ),
    # --- ebMS-level ---
    # A part of the message lacks a property the ATO needs (its document type): the portal's fault. The ebMS
    # errors themselves (EBMS:0001 and on) refuse a whole message, not one item of an answer: their words are in
    # FAILURE_WORDS, which in_plain_words also reads.
    "CMN.ATO.EBMS.001": (
        "The ATO could not process the message: part of it lacked a detail the ATO needs. This is a fault in the "
        f"portal, not in what you entered, and nothing was processed. Tell {_ADMIN}."
    ),
}

# VALID with the parameter CORRECTEDTFN: the seed's "matched and corrected" (a TFN given, but the wrong one) and
# "matched and provided" (no TFN given, and the member has quoted it for super) responses. The TFN itself is left
# out of the words: the portal shows it where it keeps TFNs, masked.
CORRECTED_TFN_WORDS = (
    "The ATO matched the member's details and returned the member's correct TFN: the TFN you gave was wrong, or "
    "you gave none. Update your records with the TFN the ATO returned."
)

FAILURE_WORDS: dict[str, str] = {
    # --- the transport (ato_gateway/transport.py) ---
    "HTTP:URL": f"The portal's setting for the ATO's address is not a web address. {_NOTHING_SENT} Tell {_ADMIN}.",
    "HTTP:TIMEOUT": f"The ATO did not answer in time. {_KEPT}",
    "HTTP:CONNECTION": f"The connection to the ATO failed or was cut off. {_KEPT}",
    "HTTP:TOO_LARGE": (
        "The ATO's reply was far larger than any answer it sends, so the portal refused to read it. "
        f"Tell {_ADMIN}: the message is kept in the gateway console."
    ),
    "HTTP:502": f"The ATO's service could not be reached just now, so it did not read the request. {_KEPT}",
    "HTTP:503": f"The ATO's service was too busy to take the request just now, so it did not read it. {_KEPT}",
    "HTTP:504": f"The ATO's service did not answer in time, so it did not read the request. {_KEPT}",
    "HTTP:5": f"The ATO's service failed while handling the request and gave no reason. {_KEPT}",
    "HTTP:4": (
        "The ATO refused the request as it was sent, without acting on it, so nothing was changed. Sent again "
        "unchanged it would be refused again, so the portal has stopped. This usually means the practice's "
        f"machine credential was refused or the portal is not set up as the ATO expects: tell {_ADMIN}."
    ),
    "HTTP:3": (
        "The ATO's address answered with a redirect, which the portal does not follow, so nothing was changed. "
        f"The portal's setting for the ATO's address may be wrong: tell {_ADMIN}."
    ),
    "HTTP:": f"The ATO's service answered with an error. {_KEPT}",
    # --- the gateway (ato_gateway/services/, ato_gateway/tokens.py) ---
    "GATEWAY:NO_OUTCOME": (
        "The portal tried to send this request many times without getting any outcome, and has stopped trying. "
        f"{_UNVERIFIED}"
    ),
    "GATEWAY:INTERNAL": (
        f"Something went wrong in the portal while preparing the request. {_NOTHING_SENT} The request is kept, "
        "and the portal tries again by itself."
    ),
    "GATEWAY:NO_RESPONSE": f"The ATO took the request, but its answer never came back. {_UNVERIFIED}",
    "GATEWAY:ENDPOINT": (
        f"The portal does not know where to send this kind of request to the ATO. {_NOTHING_SENT} Tell {_ADMIN}: "
        "the ATO's addresses in the portal's settings are incomplete."
    ),
    "REPLY:MALFORMED": (
        "The ATO's answer arrived damaged. The portal asks again: the ATO repeats its first answer and does not "
        "act twice."
    ),
    "REPLY:MISMATCH": (
        f"The answer that came back was for a different request, so the portal did not use it. {_UNVERIFIED}"
    ),
    "REPLY:REPLAYED": (
        f"The answer that came back repeated an earlier answer to another request, so the portal refused it. "
        f"{_UNVERIFIED}"
    ),
    "REPLY:TOKEN": (
        f"The ATO's sign-in service gave an answer the portal could not use. {_REQUEST_NOT_SENT} The portal "
        "tries again by itself."
    ),
    # A SOAP fault: Receiver says the ATO's service failed on the message; any other code that the message is at
    # fault (SOAP 1.2 part 1, 5.4.6).
    "REPLY:": f"The ATO's answer could not be used. {_UNVERIFIED}",
    "REPLY:FAULT:Receiver": f"The ATO's service failed while handling the request. {_KEPT}",
    "REPLY:FAULT:": (
        "The ATO refused the message as it was sent, without acting on it, so nothing was changed. Sent again "
        f"unchanged it would be refused again: tell {_ADMIN}."
    ),
    "EVENT:PARTIAL": (
        "The ATO accepted part of the request and refused the rest. What it accepted has been recorded; the "
        "parts it refused are listed with its answer, each with what to do."
    ),
    "HANDLER": (
        "The ATO answered, but the portal could not record its answer. The answer is kept: "
        f"{_ADMIN} can resend the message from the gateway console, and the stored answer is then recorded "
        "without asking the ATO again."
    ),
    # --- the wire library's exceptions, recorded by their class name (services._code) ---
    # A plain WireError carries the gateway's own sentence for people (no machine credential selected, an expired
    # one, the software's registration not configured, the ATO's certificate unreadable when checking an answer):
    # failure_in_plain_words adds it, TFNs masked.
    "WireError": f"The portal could not complete the request. {_KEPT}",
    "KeystoreError": (
        f"The practice's machine credential could not be read. {_NOTHING_SENT} Ask {_ADMIN} to import the "
        "machine credential again."
    ),
    "SignatureInvalid": (
        f"The answer that came back could not be verified as the ATO's, so the portal did not use it. {_UNVERIFIED}"
    ),
    "CertificateUntrusted": (
        f"The answer that came back was signed with a certificate the portal does not trust, so the portal did not "
        f"use it. {_UNVERIFIED}"
    ),
    "CertificateExpired": (
        f"The answer that came back was signed with an expired certificate, so the portal did not use it. {_UNVERIFIED}"
    ),
    "TokenRejected": (
        "The ATO's sign-in service did not give the portal a token it could use, so the request could not be "
        f"sent. {_REQUEST_NOT_SENT} If this keeps happening, ask {_ADMIN} to check the machine credential."
    ),
    "InvalidScope": (
        "The ATO's sign-in service would not give a token for this service, so the request could not be sent. "
        f"{_REQUEST_NOT_SENT} Tell {_ADMIN}."
    ),
    "SchemaInvalid": _OUT_OF_FORM,
    "DocumentError": _OUT_OF_FORM,
    "MalformedMessage": (
        "A message between the portal and the ATO could not be read. The request is kept, and "
        f"{_ADMIN} can resend it from the gateway console: the ATO acts on a message only once."
    ),
    "InvalidHeader": (
        "A message between the portal and the ATO could not be read. The request is kept, and "
        f"{_ADMIN} can resend it from the gateway console: the ATO acts on a message only once."
    ),
    "UnsafeXML": (
        f"The ATO's answer held content the portal refuses to read, so the portal did not use it. {_UNVERIFIED}"
    ),
    "SoapFault": f"The ATO refused the message with a fault. Tell {_ADMIN} if it keeps happening. {_UNVERIFIED}",
    "DecompressionFailure": f"The ATO's answer arrived damaged and could not be unpacked. {_UNVERIFIED}",
    "InflationLimitExceeded": (
        f"The ATO's answer was too large for the portal to unpack, so the portal did not use it. {_UNVERIFIED}"
    ),
    "StaleMessage": (
        "The ATO's answer was dated outside the time the portal accepts, so the portal did not use it (a clock "
        f"may be wrong). {_UNVERIFIED}"
    ),
    "MustUnderstandFault": (
        f"The ATO's answer asked for something the portal does not support, so the portal did not use it. {_UNVERIFIED}"
    ),
    "ReplayDetected": f"The ATO's answer repeated one already used, so the portal refused it. {_UNVERIFIED}",
    "EbmsFault": f"{_REFUSED} Tell {_ADMIN} if it keeps happening.",
    # --- ebMS errors (ebMS3 core, section 6.7: ato_gateway/wire/ebms.py) the ATO answers a message with ---
    "EBMS:0001": f"The ATO did not recognise something in how the message was addressed. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:0002": f"The ATO does not support something the message asked for. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:0003": f"Parts of the message did not agree with each other. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:0004": (
        f"{_REFUSED} This happens when the message is not in the form the ATO expects, or when the same message "
        f"reference was used before for a different message. Tell {_ADMIN} if it keeps happening."
    ),
    "EBMS:0005": (
        "The ATO could not pass the message on to its service just now, so it did not act on it. The portal "
        "keeps the request and sends it again by itself."
    ),
    "EBMS:0006": (
        "The ATO has no answers waiting to be collected yet. Nothing is wrong: the portal checks again later."
    ),
    "EBMS:0007": f"The parts of the message did not fit together. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:0008": f"The ATO does not support how the message was packed. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:0009": (
        f"The message's header was missing something or was not in the form the ATO expects. {_REFUSED} Tell {_ADMIN}."
    ),
    "EBMS:0010": (f"The message did not follow the agreement the ATO has for this service. {_REFUSED} Tell {_ADMIN}."),
    "EBMS:0011": f"The ATO could not fetch part of the message. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:0101": (
        "The ATO did not accept the practice's machine credential or sign-in for this message, so it did nothing "
        "with it. The portal gets a new sign-in for the next message. If this keeps happening, ask "
        f"{_ADMIN} to check that the machine credential is current and set up with the ATO."
    ),
    "EBMS:0102": f"The ATO could not decrypt the message. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:0103": (
        f"The message did not meet the ATO's security rules (for example, it was dated outside the time the ATO "
        f"accepts, which a wrong clock can cause). {_REFUSED} Tell {_ADMIN}."
    ),
    "EBMS:0201": f"The ATO's delivery of the message failed. {_KEPT}",
    "EBMS:0202": f"The ATO could not deliver the message to its service. {_KEPT}",
    "EBMS:0301": f"The receipt for the message never came. {_KEPT}",
    "EBMS:0302": f"The receipt for the message was not valid. {_KEPT}",
    "EBMS:0303": f"The ATO could not unpack a compressed part of the message. {_REFUSED} Tell {_ADMIN}.",
    "EBMS:": f"{_REFUSED} Tell {_ADMIN} if it keeps happening.",
}

GENERIC_WORDS = "The ATO raised an issue with the request."
GENERIC_FAILURE_WORDS = (
    "The request could not be completed. It is kept in the portal's gateway console, where "
    f"{_ADMIN} can see what happened and resend it."
)

# --- parameter values in words -----------------------------------------------------------------------------------
#
# The ATO sends parameter values as its codes and element paths (RES, AS 001, Address[2]/AddressDetails/PostcodeT).
# The vocabularies are the ATO's (and the stand-in's), which the portal may not import; they are small and fixed,
# so they are listed here. A value that is not in them is shown as it came.

_ELEMENT_WORDS = {
    "Account": "the account",
    "Address": "the address",
    "AccountPhaseC": "the account phase",
    "AddressDetails": "the street or postal address",
    "AuthorisedContact": "the authorised contact",
    "BirthD": "the date of birth",
    "DeathD": "the date of death",
    "ElectronicAddressT": "the email or web address",
    "EmailAddressT": "the email address",
    "FamilyNameT": "the family name",
    "FinancialInstitutionAccountBankStateBranchN": "the BSB",
    "FinancialInstitutionAccountFinancialInstitutionAccountN": "the account number",
    "FinancialInstitutionAccountNameT": "the account name",
    "GivenNameT": "the given name",
    "LegalNameT": "the legal name",
    "LostStatusC": "the lost member status",
    "NotForProfitI": "whether it is not-for-profit",
    "OrganisationNameT": "the organisation name",
    "OtherGivenNameT": "the other given names",
    "PersonNameDetails": "the person's name",
    "PostcodeT": "the postcode",
    "StartD": "the start date",
    "StateOrTerritoryC": "the state or territory",
    "SuperannuationFundRegulatedI": "whether it is a regulated super fund",
    "TelephoneNumberT": "the phone number",
    "UsageC": "the address type",
}
# Containers that say nothing a reader needs once their child is named.
_SILENT_CONTAINERS = frozenset({"AddressDetails", "PersonNameDetails", "AuthorisedContact"})
_STEP = re.compile(r"([A-Za-z]+)(?:\[([0-9]+)\])?")
_USAGES = {
    "RES": "residential address",
    "BUS": "business address",
    "POS": "postal address",
    "PHN": "phone number",
    "EML": "email address",
    "WEB": "web address",
    "CNT": "authorised contact's address",
}
_ENTITIES = {
    "IND": "an individual",
    "COY": "a company",
    "TRT": "a trust",
    "PTR": "a partnership",
    "SMF": "a super fund",
    "OTH": "another kind of entity",
}
_ACCOUNT_KINDS = {
    "ITX": "income tax account",
    "AS": "activity statement account",
    "FBT": "fringe benefits tax account",
}
_ROLES = {
    "GST": "GST",
    "PAYGW": "PAYG withholding",
    "PAYGI": "PAYG instalments",
    "FBTI": "FBT instalments",
    "FTC": "fuel tax credits",
    "WET": "wine equalisation tax",
    "LCT": "luxury car tax",
}
_CHANNELS = {"ELEC": "to your ATO online inbox", "POST": "by post to the client", "EMAIL": "by email to the client"}
# COMMPREF's categories (ato_gateway.wire.documents.commpref.CATEGORIES), as they read inside a sentence.
_CATEGORIES = {
    "ITX": "income tax",
    "AS": "activity statement",
    "SUP": "superannuation",
    "DEBT": "debt and payment plan",
    "FBT": "fringe benefits tax",
    "EXC": "excise and fuel scheme",
    "GEN": "general",
}
_STATES = {"OPEN": "open", "CLOSED": "closed", "OPENED": "opened", "CHANGED": "changed", "REOPENED": "reopened"}
_LEVELS = {"CLIENT": "the client", "ACCOUNT": "the account", "ROLE": "the role", "client level": "the client"}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Identifiers that are not TFNs but can look like one to the TFN scan (an 8-digit agent number passes the check
# digit one time in eleven): shown as sent. Every other value is scanned.
_NOT_TFNS = frozenset({"AgentNumber", "ABN", "CredentialABN", "USI"})

# What a placeholder reads as when the ATO did not send its parameter and gave no text of its own either. One not
# listed reads as nothing: the words put such placeholders in brackets, which then go with them, or where a
# sentence reads as well without them ("the USI {USI} is not ...").
_MISSING = {
    "Account": "that account",
    "AgentName": "another agent",
    "Covers": "that",
    "EntityType": "a different entity type",
    "Expected": "only what that type takes",
    "Failed": "Some",
    "Field": "that detail",
    "Level": "this client",
    "Postcode": "given",
    "Role": "such",
    "State": "the state given",
    "Channel": "another way",
    "Usage": "address",
}


def _words_for_element(name: str) -> str:
    known = _ELEMENT_WORDS.get(name)
    if known is not None:
        return known
    # An element the list does not know: its name without the type letter the ATO's names end in (T, C, D, N, I).
    parts = re.findall(r"[A-Z][a-z0-9]*", name)
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts = parts[:-1]
    return " ".join(p.lower() for p in parts) if parts else name


def field_in_words(path: str) -> str:
    """An element path of the request as a reader names it: ``Address[2]/AddressDetails/PostcodeT`` is "the
    postcode of address 2", ``AuthorisedContact/TelephoneNumberT`` "the phone number"."""
    steps = [m for m in (_STEP.fullmatch(s) for s in path.split("/")) if m is not None]
    if not steps or len(steps) != len(path.split("/")):
        return path
    leaf_name, leaf_index = steps[-1].group(1), steps[-1].group(2)
    if leaf_index:
        return f"{leaf_name.lower()} {leaf_index}"
    leaf = _words_for_element(leaf_name)
    for step in steps[:-1]:
        name, index = step.group(1), step.group(2)
        if index:
            leaf += f" of {name.lower()} {index}"
        elif name not in _SILENT_CONTAINERS:
            leaf += f" of {_words_for_element(name)}"
    return leaf


def _account_in_words(value: str) -> str:
    """``AS 001``, ``account AS 001`` (how the stand-in names accounts in different answers) as "activity statement
    account 001"; a value already in words is left as it is."""
    words = value.removeprefix("account ").split()
    if words and words[0] in _ACCOUNT_KINDS:
        return " ".join([_ACCOUNT_KINDS[words[0]], *words[1:]])
    return value


def _level_in_words(value: str) -> str:
    if value in _LEVELS:
        return _LEVELS[value]
    if value.startswith("role "):
        role = value.removeprefix("role ")
        return f"the {_ROLES.get(role, role)} role"
    return _account_in_words(value)


# What an address usage is given as (ADR05's Expected): "AddressDetails only".
_KINDS_OF_ADDRESS = {
    "AddressDetails": "a street or postal address",
    "TelephoneNumberT": "a phone number",
    "ElectronicAddressT": "an email or web address",
}


def _expected_in_words(value: str) -> str:
    for element, words in _KINDS_OF_ADDRESS.items():
        value = value.replace(element, words)
    return value


def _value_in_words(name: str, value: str) -> str:
    value = value if name in _NOT_TFNS else redact_tfns(value)
    if _ISO_DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
        return f"{day.day} {day:%B %Y}"
    if name == "Field":
        return field_in_words(value)
    if name == "Usage":
        return _USAGES.get(value, value)
    if name == "EntityType":
        return _ENTITIES.get(value, value)
    if name == "Account":
        return _account_in_words(value)
    if name == "Level":
        return _level_in_words(value)
    if name == "Role":
        return _ROLES.get(value, value)
    if name == "Channel":
        return _CHANNELS.get(value, value)
    if name == "Category":
        return _CATEGORIES.get(value, value)
    if name in ("Status", "Event"):
        return _STATES.get(value, value)
    if name == "Expected":
        return _expected_in_words(value)
    return value


def placeholders(words: str) -> set[str]:
    """The parameter names a text's ``{Parameter}`` placeholders use."""
    return {name for _, name, _, _ in string.Formatter().parse(words) if name}


_GONE = "\x00"  # stands for a missing parameter that reads as nothing, until _tidy takes it out
_BRACKETS_WITH_GONE = re.compile(rf"\s*\([^()]*{_GONE}[^()]*\)")


def _tidy(text: str) -> str:
    """Brackets holding a missing parameter go, with the spaces before them, and so does the space a missing
    parameter outside brackets leaves. The first letter is a capital: a sentence may start with {Field} (a value
    shown as sent, an email address say, never starts one)."""
    text = _BRACKETS_WITH_GONE.sub("", text).replace(_GONE, "")
    text = re.sub(r" {2,}", " ", text).strip()
    return text[:1].upper() + text[1:]


def in_plain_words(code: str, text: str = "", parameters: Mapping[str, str] | None = None) -> str:
    """One item of an ATO answer in words for an agent: the plain words for ``code`` filled from ``parameters``;
    the ATO's own ``text`` when there are none for the code, or when a parameter the words need did not come (the
    ATO's text has it filled); else the words with a neutral phrase where the parameter would be; else a generic
    sentence. TFNs in the ATO's text or in a parameter are masked."""
    values = {name: str(value) for name, value in (parameters or {}).items()}
    if code == "CMN.ATO.SPRMBRINFO.VALID" and "CORRECTEDTFN" in values:
        return CORRECTED_TFN_WORDS
    words = PLAIN_WORDS.get(code)
    if words is None:
        if code and _failure_key(code) is not None:  # an ebMS error, say, reported as an item
            return failure_in_plain_words(code, "")
        return redact_tfns(text) if text.strip() else GENERIC_WORDS
    needed = placeholders(words)
    if any(not values.get(name, "").strip() for name in needed) and text.strip():
        return redact_tfns(text)
    filled = {
        name: _value_in_words(name, values[name]) if values.get(name, "").strip() else _MISSING.get(name, _GONE)
        for name in needed
    }
    return _tidy(words.format_map(filled))


def _failure_key(code: str) -> str | None:
    """The FAILURE_WORDS key for a code: the code itself, else the longest key it starts with."""
    if code in FAILURE_WORDS:
        return code
    prefixes = [key for key in FAILURE_WORDS if code.startswith(key)]
    return max(prefixes, key=len) if prefixes else None


def failure_in_plain_words(code: str, text: str) -> str:
    """Why a message failed before or instead of an ATO answer, in words for an agent, from the gateway's failure
    ``code`` (prefixes match: every ``HTTP:5..`` status, every ``EBMS:`` code). The failure's ``text`` can quote
    what was sent, so it is shown only where it is the gateway's own sentence for people, or for a code with no
    words; its TFNs are masked."""
    key = _failure_key(code)
    if key is None:
        detail = redact_tfns(text).strip()
        return f"{GENERIC_FAILURE_WORDS} ({detail})" if detail else GENERIC_FAILURE_WORDS
    words = FAILURE_WORDS[key]
    if key == "WireError" and text.strip():
        return f"{words} {redact_tfns(text).strip()}"
    return words
