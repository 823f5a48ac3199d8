"""Key rings for encryption at rest; seal and open through portal.sealing, not here. MultiFernet decrypts with any
listed key and encrypts with the first, so rotating a key is: put the new key first, re-encrypt (a management
command per key ring: rotate_tfn_key, rotate_credential_key), drop the old."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=8)
def _ring(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def keyring(setting: str) -> MultiFernet:
    """The key ring named by a settings list, e.g. keyring("TFN_ENCRYPTION_KEYS")."""
    return _ring(tuple(getattr(settings, setting)))
