"""TFNs at rest: sealed under the TFN key ring (portal.sealing, rotated by `manage.py rotate_tfn_key`), a keyed
hash for exact look-up (TFN_HASH_KEY, which rotation leaves alone), and masking."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from portal.sealing import TFN_KEYS, seal, unseal


def encrypt_tfn(tfn: str) -> str:
    return seal(tfn, keyring=TFN_KEYS)


def decrypt_tfn(token: str) -> str:
    return unseal(token, keyring=TFN_KEYS)


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
