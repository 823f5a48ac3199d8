"""TFNs at rest: Fernet encryption under a rotatable key list, a keyed hash for exact look-up, and masking.

MultiFernet decrypts with any listed key and encrypts with the first, so rotation is: put the new key first,
run `manage.py rotate_tfn_key`, then drop the old key."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import MultiFernet
from django.conf import settings

from portal.crypto import keyring


def fernet() -> MultiFernet:
    return keyring("TFN_ENCRYPTION_KEYS")


def encrypt_tfn(tfn: str) -> str:
    return fernet().encrypt(tfn.encode()).decode()


def decrypt_tfn(token: str) -> str:
    return fernet().decrypt(token.encode()).decode()


def rotate_ciphertext(token: str) -> str:
    return fernet().rotate(token.encode()).decode()


def tfn_lookup_hash(tfn: str) -> str:
    return hmac.new(settings.TFN_HASH_KEY.encode(), tfn.encode(), hashlib.sha256).hexdigest()


def mask_tfn(last3: str) -> str:
    return f"*** *** {last3}" if last3 else ""


def format_tfn(tfn: str) -> str:
    return f"{tfn[:3]} {tfn[3:6]} {tfn[6:]}" if len(tfn) == 9 else tfn


def looks_like_tfn(text: str) -> bool:
    """8 or 9 digits, spaces and dashes aside: treated as a TFN wherever it could be echoed back."""
    digits = text.replace(" ", "").replace("-", "")
    return digits.isdigit() and len(digits) in (8, 9)
