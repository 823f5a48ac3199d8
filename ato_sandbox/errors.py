"""Every business error, warning and information code the stand-in ATO returns: one table.

``published`` is True for codes the ATO has published (the seeds, the ATO's own pages); the others are the
sandbox's own, named in the ATO's pattern (``CMN.ATO.<SERVICE>.<code>``) until the real service packages say
otherwise. Texts take ``{parameter}`` placeholders, filled from the parameters each item carries, so a portal can
show the text or build its own from the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from ato_gateway.wire.events import EventItem


@dataclass(frozen=True)
class ErrorCode:
    code: str
    severity: str  # Error, Warning, Information
    text: str
    parameters: tuple[str, ...] = ()
    published: bool = False


def _e(code: str, severity: str, text: str, *parameters: str, published: bool = False) -> ErrorCode:
    return ErrorCode(code, severity, text, parameters, published)


TABLE: tuple[ErrorCode, ...] = (
    # --- common ---
    _e("GEN.OK", "Information", "The request was processed.", published=True),
    _e(
        "CMN.ATO.AUTH.001",
        "Error",
        "The agent or intermediary is not related to the credential's ABN.",
        "CredentialABN",
        published=True,
    ),
    _e(
        "CMN.ATO.AUTH.002",
        "Error",
        "You are not authorised to access this client's information: there is no current relationship between "
        "the agent and the client for {Level}.",
        "Level",
        published=True,
    ),
    _e("CMN.ATO.AUTH.003", "Error", "The registered agent number {AgentNumber} is not recognised.", "AgentNumber"),
    _e("CMN.ATO.GEN.XML03", "Error", "The message did not pass XML validation: {Detail}", "Detail"),
    # Reported by another implementation (the texts are ours): a bulk or batch message carries one attachment.
    _e(
        "CMN.ATO.GEN.UNEXPECTEDNUMPAYLOADS",
        "Error",
        "A bulk or batch message carries one payload, its records separated by record delimiters; this one has "
        "{Count}.",
        "Count",
    ),
    _e("CMN.ATO.EBMS.001", "Error", "A mandatory part property is missing: {Property}.", "Property"),
    _e("CMN.ATO.GEN.ID01", "Error", "The client identifier was not found in the ATO client register."),
    # --- CUREL ---
    _e("CMN.ATO.CUREL.SRCH01", "Error", "No client with that identifier was found in the ATO client register."),
    _e("CMN.ATO.CUREL.SRCH02", "Error", "The name provided does not match the ATO's records for that identifier."),
    _e(
        "CMN.ATO.CUREL.SRCH03",
        "Error",
        "The date of birth provided does not match the ATO's records for that individual (it is required for one).",
    ),
    _e("CMN.ATO.CUREL.LNK01", "Error", "A link at {Level} level {Detail}.", "Level", "Detail"),
    _e("CMN.ATO.CUREL.LNK02", "Error", "The client has no {Account}.", "Account"),
    _e("CMN.ATO.CUREL.LNK03", "Error", "The client's {Account} has no {Role} role.", "Account", "Role"),
    _e(
        "CMN.ATO.CUREL.LNK04",
        "Error",
        "A BAS agent can be linked to activity statement accounts and their roles only, not to {Covers}.",
        "Covers",
    ),
    _e(
        "CMN.ATO.CUREL.LNK05",
        "Information",
        "You already have a link covering {Covers}; it was not added again.",
        "Covers",
    ),
    _e(
        "CMN.ATO.CUREL.LNK06",
        "Warning",
        "This will end the link of {AgentName} ({AgentNumber}) for {Covers}.",
        "AgentName",
        "AgentNumber",
        "Level",
        "AccountType",
        "Branch",
        "Role",
        "Covers",
    ),
    _e(
        "CMN.ATO.CUREL.LNK07",
        "Information",
        "The link of {AgentName} ({AgentNumber}) for {Covers} has been ended.",
        "AgentName",
        "AgentNumber",
        "Level",
        "AccountType",
        "Branch",
        "Role",
        "Covers",
    ),
    _e("CMN.ATO.CUREL.REM01", "Error", "You have no current link for {Covers} to remove.", "Covers"),
    _e("CMN.ATO.CUREL.REM02", "Warning", "Removing these links leaves you without any access to this client."),
    _e("CMN.ATO.CUREL.REM03", "Information", "You no longer have any access to this client."),
    _e(
        "CMN.ATO.CUREL.LST01",
        "Error",
        "The continuation is not one this service issued for this list; start the list again without it.",
    ),
    _e("CMN.ATO.CUREL.LST02", "Error", "The ended period ends ({End}) before it starts ({Start}).", "Start", "End"),
    # --- CUADDR ---
    # {Field} is the element's path in the request (Address[2]/AddressDetails/PostcodeT) and {Level} "client level"
    # or the account ("account AS 001"), so that the portal can point at the input.
    _e(
        "CMN.ATO.CUADDR.LST01",
        "Error",
        "The continuation is not one this service issued for this list; start the list again without it.",
    ),
    _e(
        "CMN.ATO.CUADDR.ACC01",
        "Error",
        "The request names {Count} accounts; at most {Maximum} can be updated in one request.",
        "Count",
        "Maximum",
    ),
    _e("CMN.ATO.CUADDR.ACC02", "Error", "{Field}: the client has no {Account}.", "Field", "Account"),
    _e(
        "CMN.ATO.CUADDR.ADR01",
        "Error",
        "{Field}: {Postcode} is not a postcode of {State}.",
        "Field",
        "Postcode",
        "State",
    ),
    _e("CMN.ATO.CUADDR.ADR02", "Error", "{Field} is required for an address in Australia.", "Field"),
    _e("CMN.ATO.CUADDR.ADR03", "Error", "{Field}: a telephone number is 6 to 15 digits and nothing else.", "Field"),
    _e("CMN.ATO.CUADDR.ADR04", "Error", "{Field}: an email address has text on both sides of one @.", "Field"),
    _e(
        "CMN.ATO.CUADDR.ADR05",
        "Error",
        "{Field}: a {Usage} address is given as {Expected}.",
        "Field",
        "Usage",
        "Expected",
    ),
    _e("CMN.ATO.CUADDR.ADR06", "Error", "{Field}: the {Usage} address is given twice.", "Field", "Usage"),
    _e(
        "CMN.ATO.CUADDR.ADR07",
        "Error",
        "{Field}: the authorised contact is maintained with CUAUTHCNTCT, not as an address.",
        "Field",
    ),
    _e(
        "CMN.ATO.CUADDR.DT01",
        "Error",
        "{Field}: the new {Usage} address at {Level} cannot start on {StartD}, before the current one "
        "({CurrentStartD}).",
        "Field",
        "Usage",
        "Level",
        "StartD",
        "CurrentStartD",
    ),
    _e(
        "CMN.ATO.CUADDR.DT02",
        "Error",
        "{Field}: {StartD} is in the future; a change starts today at the latest.",
        "Field",
        "StartD",
    ),
    _e(
        "CMN.ATO.CUADDR.W01",
        "Warning",
        "{Field}: the {Usage} address at {Level} is the same as the current one; nothing changes.",
        "Field",
        "Usage",
        "Level",
    ),
    # --- CUASSOC ---
    _e(
        "CMN.ATO.CUASSOC.LST01",
        "Error",
        "The continuation is not one this service issued for this list; start the list again without it.",
    ),
    # --- CUAUTHCNTCT ---
    _e("CMN.ATO.CUAUTHCNTCT.ACC02", "Error", "{Field}: the client has no {Account}.", "Field", "Account"),
    _e("CMN.ATO.CUAUTHCNTCT.CNT01", "Error", "{Field} is required for an authorised contact.", "Field"),
    _e(
        "CMN.ATO.CUAUTHCNTCT.CNT02",
        "Error",
        "{Field}: a telephone number is 6 to 15 digits and nothing else.",
        "Field",
    ),
    _e("CMN.ATO.CUAUTHCNTCT.CNT03", "Error", "{Field}: an email address has text on both sides of one @.", "Field"),
    _e(
        "CMN.ATO.CUAUTHCNTCT.DT01",
        "Error",
        "{Field}: the new contact at {Level} cannot start on {StartD}, before the current one ({CurrentStartD}).",
        "Field",
        "Level",
        "StartD",
        "CurrentStartD",
    ),
    _e(
        "CMN.ATO.CUAUTHCNTCT.DT02",
        "Error",
        "{Field}: {StartD} is in the future; a change starts today at the latest.",
        "Field",
        "StartD",
    ),
    _e(
        "CMN.ATO.CUAUTHCNTCT.W01",
        "Warning",
        "The authorised contact at {Level} is the same as the current one; nothing changes.",
        "Level",
    ),
    _e(
        "CMN.ATO.CUAUTHCNTCT.W02",
        "Warning",
        "{Count} authorised contacts are current at {Level}; the new contact replaces them all.",
        "Count",
        "Level",
    ),
    # --- CUDTL ---
    _e(
        "CMN.ATO.CUDTL.DTL01",
        "Error",
        "The entity type of a client cannot be changed: the ATO holds this client as entity type {EntityType}.",
        "EntityType",
    ),
    _e(
        "CMN.ATO.CUDTL.DTL02",
        "Error",
        "{Field} does not apply to a client of entity type {EntityType}.",
        "Field",
        "EntityType",
    ),
    _e("CMN.ATO.CUDTL.DTL03", "Error", "{Field} contains characters that are not accepted in a name.", "Field"),
    _e("CMN.ATO.CUDTL.DTL04", "Error", "{Field} is longer than {Maximum} characters.", "Field", "Maximum"),
    _e("CMN.ATO.CUDTL.DTL05", "Error", "The date of death cannot be before the client's date of birth."),
    _e("CMN.ATO.CUDTL.DTL06", "Error", "{Field} cannot be a date in the future.", "Field"),
    _e("CMN.ATO.CUDTL.DTL07", "Error", "The request gives no client detail to update."),
    _e(
        "CMN.ATO.CUDTL.DTL08",
        "Warning",
        "A date of death is recorded for this client: from that date the ATO treats the client as a deceased estate.",
    ),
    # --- CUFI ---
    # Texts name the field, never the account number: the ATO does not echo a full bank account number.
    _e("CMN.ATO.CUFI.ACC01", "Error", "The client has no {Account} account.", "Account"),
    _e(
        "CMN.ATO.CUFI.FI01",
        "Error",
        "{Field} is not a valid BSB: six digits, of a known financial institution and a state's branch.",
        "Field",
    ),
    _e("CMN.ATO.CUFI.FI02", "Error", "{Field} must be 5 to 9 digits.", "Field"),
    _e(
        "CMN.ATO.CUFI.FI03",
        "Error",
        "{Field} must give the account name: up to 32 letters, digits, spaces and & ' - . , / ( ).",
        "Field",
    ),
    _e("CMN.ATO.CUFI.FI04", "Error", "The financial institution details are the same as the current ones."),
    _e(
        "CMN.ATO.CUFI.FI05",
        "Warning",
        "The account name does not match the client's name: refunds are paid only into an account held by the "
        "client or a registered tax agent's trust account.",
    ),
    _e("CMN.ATO.CUFI.LST01", "Error", "ContinuationT is not a continuation this service gave for this request."),
    # --- COMMPREF ---
    _e("CMN.ATO.COMMPREF.EML01", "Error", "An email address is required to send a client's letters by email."),
    _e("CMN.ATO.COMMPREF.EML02", "Error", "The email address {Email} is not valid.", "Email"),
    _e(
        "CMN.ATO.COMMPREF.EML03",
        "Warning",
        "An email address is kept only for the EMAIL channel: the address given with {Channel} was ignored.",
        "Channel",
    ),
    _e(
        "CMN.ATO.COMMPREF.CHN01",
        "Error",
        "The practice default must be ELEC or POST: letters go by email only to a client's own address, set for "
        "that client.",
    ),
    _e(
        "CMN.ATO.COMMPREF.DEF01",
        "Error",
        "The practice default cannot be dropped: name a client to return it to the practice default.",
    ),
    _e(
        "CMN.ATO.COMMPREF.DEF02",
        "Warning",
        "The client has no preference of its own: it already follows the practice default.",
    ),
    _e(
        "CMN.ATO.COMMPREF.CAT01",
        "Error",
        "A BAS agent may not set the preference for the category {Category}.",
        "Category",
    ),
    _e(
        "CMN.ATO.COMMPREF.CAT02",
        "Error",
        "A BAS agent must name the categories of a client's preference: it may not set every category.",
    ),
    _e("CMN.ATO.COMMPREF.LST01", "Error", "ContinuationT is not a continuation this service gave for this request."),
    # --- CC ---
    _e(
        "CMN.ATO.CC.LST01",
        "Error",
        "The end date {IssuedToD} is before the start date {IssuedFromD}.",
        "IssuedFromD",
        "IssuedToD",
    ),
    _e("CMN.ATO.CC.LST02", "Error", "The date range is longer than {Years} years.", "Years"),
    _e(
        "CMN.ATO.CC.LST03",
        "Error",
        "The request names {Count} clients; at most {Maximum} can be asked for at once.",
        "Count",
        "Maximum",
    ),
    _e("CMN.ATO.CC.LST04", "Error", "The continuation is not one this service issued."),
    _e("CMN.ATO.CC.GET01", "Error", "There is no communication with the id {CommunicationId}.", "CommunicationId"),
    # --- MAAS (SPRMBRINFO) ---
    # Per transaction (in the SPRMBRINFOResponse document) unless said otherwise. A corrected or provided TFN
    # comes with VALID as the parameter CORRECTEDTFN (the seed's "VALID CORRECTEDTFN").
    _e("CMN.ATO.SPRMBRINFO.VALID", "Information", "The member's details have been matched.", published=True),
    _e(
        "CMN.ATO.SPRMBRINFO.NOT VALID",
        "Warning",
        "The member's details could not be matched in the ATO client register.",
        published=True,
    ),
    _e(
        "CMN.ATO.SPRMBRINFO.096604",
        "Error",
        "The reported account belongs to a different account holder; the transaction was not processed.",
        published=True,
    ),
    _e(
        "CMN.ATO.SPRMBRINFO.099264",
        "Error",
        "A more recent member account request has already been processed (its event on {LastEventDate}); this "
        "transaction (event on {EventDate}) was not processed.",
        "EventDate",
        "LastEventDate",
        published=True,
    ),
    _e(
        "CMN.ATO.SPRMBRINFO.FUND01",
        "Error",
        "The sender (ABN {ABN}) is not a superannuation fund known to the ATO, nor the administrator of one; the "
        "message was not processed.",
        "ABN",
    ),
    _e(
        "CMN.ATO.SPRMBRINFO.PART01",
        "Warning",
        "{Failed} of {Total} transactions were not processed; correct them and submit them again.",
        "Failed",
        "Total",
    ),
    _e("CMN.ATO.SPRMBRINFO.DUP01", "Error", "The transaction identifier {TransactionId} is repeated.", "TransactionId"),
    _e("CMN.ATO.SPRMBRINFO.USI01", "Error", "The USI {USI} is not of a fund the sender may report for.", "USI"),
    _e("CMN.ATO.SPRMBRINFO.MBR01", "Error", "The member number is missing."),
    _e("CMN.ATO.SPRMBRINFO.TFN01", "Error", "The TFN provided is not a valid TFN (its check digit fails)."),
    _e("CMN.ATO.SPRMBRINFO.DOB01", "Error", "The date of birth {BirthDate} is in the future.", "BirthDate"),
    _e("CMN.ATO.SPRMBRINFO.EVT01", "Error", "The event date {EventDate} is in the future.", "EventDate"),
    _e(
        "CMN.ATO.SPRMBRINFO.EVT02",
        "Error",
        "The account status {Status} does not agree with the event {Event}.",
        "Status",
        "Event",
    ),
    _e("CMN.ATO.SPRMBRINFO.EVT03", "Error", "The account is not closed, so it cannot be reopened."),
    _e("CMN.ATO.SPRMBRINFO.ATT01", "Error", "{Field}: {Value} is not a known code.", "Field", "Value"),
    # Get (a whole-message error): the ATO holds no such account of the fund.
    _e(
        "CMN.ATO.SPRMBRINFO.GET01",
        "Error",
        "There is no member account {MemberId} of the fund {USI}.",
        "MemberId",
        "USI",
    ),
)

ERRORS: dict[str, ErrorCode] = {e.code: e for e in TABLE}
assert len(ERRORS) == len(TABLE), "an error code is defined twice"


def item(code: str, **parameters: object) -> EventItem:
    """The event item for a code, its text filled from the parameters (a code missing from the table is a bug)."""
    definition = ERRORS[code]
    values = {k: str(v) for k, v in parameters.items()}
    missing = [p for p in definition.parameters if p not in values]
    if missing:
        raise KeyError(f"{code} needs parameters {missing}")
    return EventItem(
        code=code,
        severity=definition.severity,
        short_description=definition.text.format(**values),
        parameters=tuple(values.items()),
    )
