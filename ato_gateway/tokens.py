"""SAML tokens from the ATO's security token service, cached per machine credential until a few minutes before
they expire (they live about 30 minutes), so that a busy worker asks for one twice an hour, not per message."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from django.conf import settings
from django.utils import timezone

from ato_gateway import transport
from ato_gateway.models import MachineCredential
from ato_gateway.wire import errors as wire_errors
from ato_gateway.wire import sts

REFRESH_MARGIN = timedelta(minutes=5)
_lock = threading.Lock()
_cache: dict[str, tuple[bytes, datetime]] = {}


@lru_cache(maxsize=4)
def _load_cert(path: str, mtime: float) -> x509.Certificate:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def ato_certificate() -> x509.Certificate:
    """The certificate the ATO signs with (settings.ATO_SIGNING_CERT_FILE), reloaded when the file changes."""
    import os

    path = settings.ATO_SIGNING_CERT_FILE
    try:
        return _load_cert(path, os.stat(path).st_mtime)
    except OSError as exc:
        raise wire_errors.WireError(
            f"The ATO signing certificate {path} cannot be read: {exc}.", permanent=False
        ) from exc


def saml_token(credential: MachineCredential) -> bytes:
    """A current SAML assertion for this credential, from the cache or freshly issued."""
    key = credential.fingerprint_sha256
    now = timezone.now()
    cached = _cache.get(key)
    if cached is not None and cached[1] - REFRESH_MARGIN > now:
        return cached[0]
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[1] - REFRESH_MARGIN > now:
            return cached[0]
        body, content_type = sts.build_issue_request(
            key=credential.private_key(),
            certificate=credential.certificate(),
            abn=credential.abn,
            applies_to=settings.ATO_STS_APPLIES_TO,
        )
        reply = transport.post(settings.ATO_STS_URL, body, content_type)
        try:
            issued = sts.parse_issue_response(reply.body, sts_certificate=ato_certificate())
        except (wire_errors.MalformedMessage, wire_errors.UnsafeXML, wire_errors.SignatureInvalid) as exc:
            # A token reply mangled on the way, or not signed by the ATO, is never used; asking again is harmless.
            # (The token service refusing our credential comes back as an HTTP 4xx: permanent, in transport.)
            raise wire_errors.WireError(
                f"The token service's reply was unusable ({exc}); asking again.",
                permanent=False,
                ebms_code="REPLY:TOKEN",
            ) from exc
        _cache[key] = (issued.assertion, issued.expires_at)
        return issued.assertion


def forget_tokens() -> None:
    _cache.clear()
