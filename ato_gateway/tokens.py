"""SAML tokens from the ATO's security token service, cached per machine credential until a few minutes before
they expire (they live about 30 minutes), so that a busy worker asks for one twice an hour, not per message.

Two levels: this process's memory, and the shared cache (Redis), where the assertion is kept encrypted under the
credential key ring. The shared level matters because RQ forks a fresh work horse for every job: with memory
alone each job asked the token service again (measured: 46 requests to the stand-in ATO for 23 list pages)."""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime, timedelta
from functools import lru_cache

import redis
from cryptography import x509
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from ato_gateway import transport
from ato_gateway.models import MachineCredential
from ato_gateway.wire import errors as wire_errors
from ato_gateway.wire import sts_client
from portal.sealing import CREDENTIAL_KEYS, InvalidToken, seal_bytes, unseal_bytes

REFRESH_MARGIN = timedelta(minutes=5)
GENERATION_KEY = "ato-token-generation"
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


def _shared_key(fingerprint: str) -> str:
    return f"ato-token:{_generation()}:{fingerprint}"


def _generation() -> int:
    """Bumped by forget_tokens(), so every process stops using what the shared cache holds."""
    return int(cache.get_or_set(GENERATION_KEY, 0) or 0)


def _from_shared(fingerprint: str, now: datetime) -> tuple[bytes, datetime] | None:
    try:
        sealed = cache.get(_shared_key(fingerprint))
        if not sealed:
            return None
        expires_at = datetime.fromisoformat(sealed["expires_at"])
        assertion = unseal_bytes(sealed["assertion"], keyring=CREDENTIAL_KEYS)
    except (InvalidToken, KeyError, TypeError, ValueError, redis.RedisError):
        return None  # unreadable or unreachable: ask the token service, as without a shared cache
    return (assertion, expires_at) if expires_at - REFRESH_MARGIN > now else None


def _to_shared(fingerprint: str, assertion: bytes, expires_at: datetime, now: datetime) -> None:
    ttl = int((expires_at - REFRESH_MARGIN - now).total_seconds())
    if ttl <= 0:
        return
    sealed = {
        "assertion": seal_bytes(assertion, keyring=CREDENTIAL_KEYS),
        "expires_at": expires_at.isoformat(),
    }
    with contextlib.suppress(redis.RedisError):  # the token is still good in this process; the next one asks again
        cache.set(_shared_key(fingerprint), sealed, timeout=ttl)


def saml_token(credential: MachineCredential) -> bytes:
    """A current SAML assertion for this credential, from a cache or freshly issued."""
    key = credential.fingerprint_sha256
    now = timezone.now()
    cached = _cache.get(key)
    if cached is not None and cached[1] - REFRESH_MARGIN > now:
        return cached[0]
    with _lock:
        cached = _cache.get(key) or _from_shared(key, now)
        if cached is not None and cached[1] - REFRESH_MARGIN > now:
            _cache[key] = cached
            return cached[0]
        try:
            body, content_type = sts_client.build_issue_request(
                key=credential.private_key(),
                certificate=credential.certificate(),
                abn=credential.abn,
                applies_to=settings.ATO_STS_APPLIES_TO,
                sts_url=settings.ATO_STS_URL,
            )
        except ValueError as exc:  # a credential whose certificate is not its recorded ABN's: it stays so
            raise wire_errors.WireError(str(exc), permanent=True) from exc
        reply = transport.post(settings.ATO_STS_URL, body, content_type)
        try:
            issued = sts_client.parse_issue_response(reply.body, sts_certificate=ato_certificate())
        except (wire_errors.MalformedMessage, wire_errors.UnsafeXML, wire_errors.SignatureInvalid) as exc:
            # A token reply mangled on the way, or not signed by the ATO, is never used; asking again is harmless.
            # The token service refusing our credential is a SOAP fault (TokenRejected, permanent), whatever its
            # HTTP status: transport hands SOAP answers back for the reply to say what happened.
            raise wire_errors.WireError(
                f"The token service's reply was unusable ({exc}); asking again.",
                permanent=False,
                ebms_code="REPLY:TOKEN",
            ) from exc
        _cache[key] = (issued.assertion, issued.expires_at)
        _to_shared(key, issued.assertion, issued.expires_at, now)
        return issued.assertion


def forget_tokens() -> None:
    """Drop every cached token, in this process and in the shared cache (for example after the ATO refused one)."""
    _cache.clear()
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no generation yet: nothing shared to forget
        cache.set(GENERATION_KEY, 1, timeout=None)
    except redis.RedisError:
        pass
