"""The exceptions of the wire library.

Every exception says whether retrying can help (``permanent``) and which ebMS error code a receiver answers with
(``ebms_code``), so that the gateway's outbox and the stand-in ATO classify failures from one place
(docs/wire-contract.md, "Errors and what the gateway does with them").
"""

from __future__ import annotations


class WireError(Exception):
    """Base class. ``permanent`` is True when resending the same message cannot succeed."""

    permanent: bool = True
    ebms_code: str = "EBMS:0004"

    def __init__(self, message: str, *, permanent: bool | None = None, ebms_code: str | None = None) -> None:
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent
        if ebms_code is not None:
            self.ebms_code = ebms_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnsafeXML(WireError):
    """A DOCTYPE, an entity declaration, an oversized or too deeply nested document: never parsed."""

    ebms_code = "EBMS:0004"


class MalformedMessage(WireError):
    """Not well-formed XML, a broken MIME package, a missing part: the bytes cannot be a valid message."""

    ebms_code = "EBMS:0004"


class InvalidHeader(MalformedMessage):
    """The ebMS3 header is missing or lacks a mandatory field."""

    ebms_code = "EBMS:0009"


class SchemaInvalid(WireError):
    """XML that is well-formed but does not satisfy its schema (our own eb:Messaging, or a business document)."""

    ebms_code = "EBMS:0009"


class DecompressionFailure(WireError):
    """A part marked ``CompressionType=application/gzip`` that does not gunzip."""

    ebms_code = "EBMS:0303"


class InflationLimitExceeded(WireError):
    """The parts of one message inflate beyond the receiver's total limit. Not a DecompressionFailure: the
    parts are sound gzip and signed as sent, so asking again brings the same message and the same refusal."""

    ebms_code = "EBMS:0303"


class StaleMessage(WireError):
    """An ``eb:Timestamp`` outside the receiver's window: a captured message sent again, or a badly set clock."""

    ebms_code = "EBMS:0103"


class MustUnderstandFault(WireError):
    """A SOAP 1.2 header block marked ``mustUnderstand="true"`` that this receiver does not understand: SOAP 1.2
    (part 1, section 5.4.8) answers with a MustUnderstand fault naming each one, and processes nothing else."""

    ebms_code = "EBMS:0009"

    def __init__(self, message: str, *, not_understood: list[str]) -> None:
        super().__init__(message)
        self.not_understood = not_understood  # Clark names, ``{namespace}local``


class SignatureInvalid(WireError):
    """The XML signature is missing, does not cover what it must, or does not verify."""

    ebms_code = "EBMS:0101"


class CertificateUntrusted(SignatureInvalid):
    """The signer's certificate is not one the receiver trusts."""


class CertificateExpired(CertificateUntrusted):
    """The signer's certificate is outside its validity period."""


class TokenRejected(WireError):
    """The SAML token is missing, expired, not issued by the token service, or for another ABN;
    or the token service refused to issue one (``wst:FailedAuthentication``)."""

    ebms_code = "EBMS:0101"


class InvalidScope(TokenRejected):
    """The token service refuses to issue for an ``AppliesTo`` that is not one of its services
    (WS-Trust 1.3 fault ``wst:InvalidScope``)."""


class ReplayDetected(WireError):
    """A MessageId that was already used for different content."""

    ebms_code = "EBMS:0004"


class KeystoreError(WireError):
    """A keystore that cannot be read, or a wrong password."""


class EbmsFault(WireError):
    """A well-formed, correctly signed reply that carries ebMS errors. Permanent unless every error is one of
    the transient codes (EBMS:0005 ConnectionFailure, EBMS:0006 EmptyMessagePartitionChannel)."""

    def __init__(self, message: str, *, codes: list[str], permanent: bool) -> None:
        super().__init__(message, permanent=permanent, ebms_code=codes[0] if codes else "EBMS:0004")
        self.codes = codes


# Codes a sender may retry with the same MessageId; every other ebMS error code is permanent.
TRANSIENT_EBMS_CODES: frozenset[str] = frozenset({"EBMS:0005", "EBMS:0006"})


class SoapFault(MalformedMessage):
    """A SOAP 1.2 Fault where an ebMS message was expected. ``Sender`` (and ``MustUnderstand``,
    ``VersionMismatch``, ``DataEncodingUnknown``) says the message is at fault: permanent. ``Receiver`` says the
    service failed to process it (SOAP 1.2 part 1, 5.4.6): worth sending again."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, permanent=code != "Receiver")
        self.code = code  # the local name of the fault's Code/Value: Sender, Receiver, ...
