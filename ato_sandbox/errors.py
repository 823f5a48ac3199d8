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
    _e("CMN.ATO.GEN.ID01", "Error", "The client identifier was not found in the ATO client register."),
    # --- CUREL ---
    _e("CMN.ATO.CUREL.SRCH01", "Error", "No client with that identifier was found in the ATO client register."),
    _e("CMN.ATO.CUREL.SRCH02", "Error", "The name provided does not match the ATO's records for that identifier."),
    _e(
        "CMN.ATO.CUREL.SRCH03",
        "Error",
        "The date of birth provided does not match the ATO's records for that individual (it is required for one).",
    ),
    # --- CUADDR ---
    # --- CUASSOC ---
    # --- CUAUTHCNTCT ---
    # --- CUDTL ---
    # --- CUFI ---
    # --- COMMPREF ---
    # --- CC ---
    # --- MAAS (SPRMBRINFO) ---
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
