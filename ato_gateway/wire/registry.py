"""The one table of every service and action, and every other value the project chose itself.

Values marked [ours] in docs/sbr-ebms3.md and docs/wire-contract.md live here and nowhere else, so that putting in
the ATO's real values (from its service registry packages, not available to this project) is an edit of this data,
not of any logic. Service names and versions come from the seed; URIs and action strings follow the pattern seen
in a real request (``http://sbr.gov.au/ato/payevnt/2020``, ``Submit.004.00``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ExchangePattern = Literal["single-sync", "push-pull"]
# The ATO's logical endpoints [published: SBR ebMS3 Web Services Implementation Guide]. Each action names the one
# it is sent to; settings.ATO_ENDPOINTS gives each name its URL per environment.
Endpoint = Literal["Single-sync", "Single-async", "BulkBatch-async-push", "BulkBatch-async-pull", "Collect-async"]
ENDPOINTS: tuple[Endpoint, ...] = (
    "Single-sync",
    "Single-async",
    "BulkBatch-async-push",
    "BulkBatch-async-pull",
    "Collect-async",
)

# --- parties and roles [seen / reported] ---
ATO_ABN = "51824753556"
PARTY_TYPE_ABN = "http://abr.gov.au/PartyIdType/ABN"
PARTY_TYPE_TAN = "http://ato.gov.au/PartyIdType/TAN"
PARTY_TYPE_WPN = "http://ato.gov.au/PartyIdType/WPN"  # [published] a withholding payer number, for a sender without ABN
SENDER_PARTY_TYPES: tuple[str, ...] = (PARTY_TYPE_ABN, PARTY_TYPE_WPN)
ROLE_BUSINESS = "http://sbr.gov.au/ato/Role/Business"
ROLE_REGISTERED_AGENT = "http://sbr.gov.au/ato/Role/Registered Agent"
ROLE_AGENCY = "http://sbr.gov.au/agency"

# --- message properties [seen]: the software's registration with the ATO, values from settings ---
MESSAGE_PROPERTY_NAMES: tuple[str, ...] = ("ProductID", "BMS Vendor", "BMS Name", "BMS Version")
# [published] These must match the software's registration with the ATO: never sent empty or made up.
REGISTRATION_PROPERTY_NAMES: tuple[str, ...] = ("ProductID", "BMS Vendor", "BMS Name")

# --- pull channel [ours] ---
MPC_PREFIX = "http://sbr.gov.au/mpc/"

# --- business response ("event") [reported namespace; ours document name] ---
EVENT_NAMESPACE = "http://sbr.gov.au/comn/event.02.data"
EVENT_DOCUMENT_NAME = "Event"

# --- payload parts [ours] ---
PAYLOAD_MIME_TYPE = "application/xml"
GZIP_MIME_TYPE = "application/gzip"
DEFAULT_MESSAGE_ID_HOST = "practice-portal.invalid"

# --- security token service [published: the ATO's reference client requests these claims] ---
# AppliesTo [reported by another implementation]: one per environment, chosen in settings (ATO_STS_APPLIES_TO).
STS_APPLIES_TO_PRODUCTION = "https://sbr.gov.au/services"
STS_APPLIES_TO_TEST = "https://test.sbr.gov.au/services"
STS_APPLIES_TO_DEFAULT = STS_APPLIES_TO_PRODUCTION
STS_CLAIMS_DIALECT = "http://schemas.xmlsoap.org/ws/2005/05/identity"
STS_CLAIMS_NAMESPACE = STS_CLAIMS_DIALECT  # the ClaimType elements' namespace is the dialect's
STS_CLAIM_ABN = "http://vanguard.ebusiness.gov.au/2008/06/identity/claims/abn"
STS_CLAIM_CREDENTIAL_TYPE = "http://vanguard.ebusiness.gov.au/2008/06/identity/claims/credentialtype"
CREDENTIAL_TYPE_DEVICE = "D"
STS_TOKEN_LIFETIME_SECONDS = 30 * 60
STS_REQUEST_LIFETIME_SECONDS = 5 * 60
SAML_ATTRIBUTE_ABN = "http://sbr.gov.au/claims/abn"
SAML_ATTRIBUTE_CERTIFICATE_SERIAL = "http://sbr.gov.au/claims/certificate-serial"
SAML_ATTRIBUTE_CREDENTIAL_TYPE = "http://sbr.gov.au/claims/credential-type"

# --- the connection test [published: OASIS ebMS 3.0 core, 5.2.2, the test service and action] ---
TEST_SERVICE = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service"
TEST_ACTION = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test"
PING_NAMESPACE = "http://www.sbr.gov.au/ato/ping"  # [ours] the text the test message carries


@dataclass(frozen=True)
class ServiceAction:
    """One action of one service: everything needed to address it on the wire."""

    service: str  # our short name, unique per version: "CUREL", "CUDTL2016"
    version: str  # the seed's service version, "0004.2018"
    service_uri: str
    action: str  # "Submit.004.00"
    pattern: ExchangePattern
    request_document: str  # the DocumentName part property of the request's payload
    response_document: str
    document_namespace: str  # the business documents' XML namespace
    document_type: str = "BASE"  # the DocumentType part property: BASE, BULK, PARENT, CHILD
    endpoint: Endpoint = "Single-sync"  # the ATO's logical endpoint this action is sent to
    name: str = ""  # the action's short name when the wire's action is a URI (the connection test's)

    @property
    def pull_endpoint(self) -> Endpoint:
        """Where the responses to a pushed message are pulled from [ours, after the endpoints' names]: a bulk or
        batch push's from BulkBatch-async-pull, a single one's from Collect-async."""
        return "BulkBatch-async-pull" if self.endpoint == "BulkBatch-async-push" else "Collect-async"

    @property
    def bulk(self) -> bool:
        """Bulk and batch messages carry one attachment, its records separated by record delimiters."""
        return self.document_type == "BULK"

    @property
    def key(self) -> str:
        return f"{self.service}.{self.name or self.action}"

    @property
    def verb(self) -> str:
        return (self.name or self.action).split(".", 1)[0]


def _row(
    service: str,
    version: str,
    uri: str,
    namespace: str,
    action: str,
    request_document: str,
    response_document: str,
    pattern: ExchangePattern = "single-sync",
    document_type: str = "BASE",
    endpoint: Endpoint | None = None,
) -> ServiceAction:
    if endpoint is None:
        endpoint = "Single-sync" if pattern == "single-sync" else "Single-async"
    return ServiceAction(
        service, version, uri, action, pattern, request_document, response_document, namespace, document_type, endpoint
    )


_CUREL = ("CUREL", "0004.2018", "http://sbr.gov.au/ato/curel/2018", "http://www.sbr.gov.au/ato/curel")
_CUADDR = ("CUADDR", "0003.2016", "http://sbr.gov.au/ato/cuaddr/2016", "http://www.sbr.gov.au/ato/cuaddr")
_CUASSOC = ("CUASSOC", "0001.2017", "http://sbr.gov.au/ato/cuassoc/2017", "http://www.sbr.gov.au/ato/cuassoc")
_CUAUTHCNTCT = (
    "CUAUTHCNTCT",
    "0001.2017",
    "http://sbr.gov.au/ato/cuauthcntct/2017",
    "http://www.sbr.gov.au/ato/cuauthcntct",
)
_CUDTL = ("CUDTL", "0003.2017", "http://sbr.gov.au/ato/cudtl/2017", "http://www.sbr.gov.au/ato/cudtl")
_CUDTL2016 = ("CUDTL2016", "0003.2016", "http://sbr.gov.au/ato/cudtl/2016", "http://www.sbr.gov.au/ato/cudtl/2016")
_CUFI = ("CUFI", "0003.2016", "http://sbr.gov.au/ato/cufi/2016", "http://www.sbr.gov.au/ato/cufi")
_COMMPREF = ("COMMPREF", "2018", "http://sbr.gov.au/ato/commpref/2018", "http://www.sbr.gov.au/ato/commpref")
_CC = ("CC", "0001.2016", "http://sbr.gov.au/ato/cc/2016", "http://www.sbr.gov.au/ato/cc")
# MAAS is the ATO's SPRMBRINFO.0001 2018 [published]: its interactions "Submit or Maintain member account" (Submit,
# bulk, pushed and pulled) and "Get or Provision of Details" (Get, single). The short name MAAS, the action strings
# and the document names are ours, after the pattern of the others.
_MAAS = ("MAAS", "0001.2018", "http://sbr.gov.au/ato/sprmbrinfo/2018", "http://www.sbr.gov.au/ato/sprmbrinfo")
# The connection test: OASIS's test service and action, answered by the receiving MSH and applied to nothing.
# Its key, what the outbox stores (service and action columns), is the short name it has always had.
_CONNECTION_TEST = ServiceAction(
    "PING",
    "2026",
    TEST_SERVICE,
    TEST_ACTION,
    "single-sync",
    "PingRequest",
    "PingResponse",
    PING_NAMESPACE,
    name="Ping.001.00",
)

# The table. Document names follow the ping's style (docs/wire-contract.md): <SERVICE><Verb>Request / Response.
SERVICE_ACTIONS: tuple[ServiceAction, ...] = (
    _row(*_CUREL, "Submit.004.00", "CURELSubmitRequest", "CURELSubmitResponse"),
    _row(*_CUREL, "Validate.004.00", "CURELValidateRequest", "CURELValidateResponse"),
    _row(*_CUREL, "Remove.004.00", "CURELRemoveRequest", "CURELRemoveResponse"),
    _row(*_CUREL, "ValidateRemove.004.00", "CURELValidateRemoveRequest", "CURELValidateRemoveResponse"),
    _row(*_CUREL, "List.004.00", "CURELListRequest", "CURELListResponse"),
    _row(*_CUREL, "Search.004.00", "CURELSearchRequest", "CURELSearchResponse"),
    _row(*_CUADDR, "List.003.00", "CUADDRListRequest", "CUADDRListResponse"),
    _row(*_CUADDR, "Submit.003.00", "CUADDRSubmitRequest", "CUADDRSubmitResponse"),
    _row(*_CUADDR, "Validate.003.00", "CUADDRValidateRequest", "CUADDRValidateResponse"),
    _row(*_CUASSOC, "List.001.00", "CUASSOCListRequest", "CUASSOCListResponse"),
    _row(*_CUAUTHCNTCT, "Submit.001.00", "CUAUTHCNTCTSubmitRequest", "CUAUTHCNTCTSubmitResponse"),
    _row(*_CUAUTHCNTCT, "Validate.001.00", "CUAUTHCNTCTValidateRequest", "CUAUTHCNTCTValidateResponse"),
    _row(*_CUDTL, "Submit.003.00", "CUDTLSubmitRequest", "CUDTLSubmitResponse"),
    _row(*_CUDTL, "Validate.003.00", "CUDTLValidateRequest", "CUDTLValidateResponse"),
    _row(*_CUDTL, "Get.003.00", "CUDTLGetRequest", "CUDTLGetResponse"),
    _row(*_CUDTL2016, "Get.003.00", "CUDTLGetRequest", "CUDTLGetResponse"),
    _row(*_CUFI, "List.003.00", "CUFIListRequest", "CUFIListResponse"),
    _row(*_CUFI, "Submit.003.00", "CUFISubmitRequest", "CUFISubmitResponse"),
    _row(*_CUFI, "Validate.003.00", "CUFIValidateRequest", "CUFIValidateResponse"),
    _row(*_COMMPREF, "Get.001.00", "COMMPREFGetRequest", "COMMPREFGetResponse"),
    _row(*_COMMPREF, "List.001.00", "COMMPREFListRequest", "COMMPREFListResponse"),
    _row(*_COMMPREF, "Submit.001.00", "COMMPREFSubmitRequest", "COMMPREFSubmitResponse"),
    _row(*_COMMPREF, "Validate.001.00", "COMMPREFValidateRequest", "COMMPREFValidateResponse"),
    _row(*_CC, "List.001.00", "CCListRequest", "CCListResponse"),
    _row(*_CC, "Get.001.00", "CCGetRequest", "CCGetResponse"),
    _row(*_MAAS, "Submit.001.00", "SPRMBRINFO", "SPRMBRINFOResponse", "push-pull", "BULK", "BulkBatch-async-push"),
    _row(*_MAAS, "Get.001.00", "SPRMBRINFOGetRequest", "SPRMBRINFOGetResponse"),
    _CONNECTION_TEST,
)

_BY_KEY: dict[str, ServiceAction] = {sa.key: sa for sa in SERVICE_ACTIONS}
_BY_URI: dict[tuple[str, str], ServiceAction] = {(sa.service_uri, sa.action): sa for sa in SERVICE_ACTIONS}
assert len(_BY_KEY) == len(SERVICE_ACTIONS), "duplicate service/action key in the registry"
assert len(_BY_URI) == len(SERVICE_ACTIONS), "duplicate service URI/action in the registry"

PING: ServiceAction = _CONNECTION_TEST
MAAS_SUBMIT: ServiceAction = _BY_KEY["MAAS.Submit.001.00"]
MAAS_GET: ServiceAction = _BY_KEY["MAAS.Get.001.00"]


def get(key: str) -> ServiceAction:
    """The action for a key such as ``"CUREL.Submit.004.00"``; ``KeyError`` names the known keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown service action {key!r}; known: {', '.join(sorted(_BY_KEY))}") from None


def by_uri(service_uri: str, action: str) -> ServiceAction | None:
    """The action a received message addresses, or None when the registry does not know it."""
    return _BY_URI.get((service_uri, action))


def resolve(service_action: ServiceAction | str) -> ServiceAction:
    return service_action if isinstance(service_action, ServiceAction) else get(service_action)


def mpc_for(abn: str) -> str:
    """The message partition channel from which a party pulls the responses to what it pushed."""
    return f"{MPC_PREFIX}{abn}"


def abn_from_mpc(mpc: str) -> str | None:
    if mpc.startswith(MPC_PREFIX):
        rest = mpc[len(MPC_PREFIX) :]
        return rest if rest.isdigit() else None
    return None
