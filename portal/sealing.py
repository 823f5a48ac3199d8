"""The one way to keep a secret at rest: sealed with Fernet under a key ring named in settings (portal/crypto.py).

A `SealedField` holds the ciphertext, a Fernet token as text, and names its key ring, so that rotation finds every
sealed value of every installed app through the field type alone (`sealed_fields`, `sealed_rotate`), whichever
app declares it. Opening is explicit, by `unseal(...)`, never on load: a list page reads many rows and shows none
of their secrets, and each Fernet decryption costs an HMAC and an AES pass.

An empty string stands for "nothing sealed": `seal` is never asked to seal "", and rotation skips it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models, transaction

from portal.crypto import keyring as _keyring

TFN_KEYS = "TFN_ENCRYPTION_KEYS"
CREDENTIAL_KEYS = "CREDENTIAL_ENCRYPTION_KEYS"

__all__ = [
    "CREDENTIAL_KEYS",
    "TFN_KEYS",
    "InvalidToken",
    "SealedField",
    "SealedValueUnreadable",
    "seal",
    "seal_bytes",
    "seal_json",
    "sealed_fields",
    "sealed_not_under_first_key",
    "sealed_rotate",
    "unseal",
    "unseal_bytes",
    "unseal_json",
]


class SealedField(models.TextField):
    """Text column holding a Fernet token sealed under the key ring `keyring` (a settings name). The model keeps
    the token as it is; code that needs the secret calls unseal(...) with the same key ring."""

    description = "Sealed (Fernet-encrypted) text"

    def __init__(self, *args: Any, keyring: str = TFN_KEYS, **kwargs: Any) -> None:
        self.keyring = keyring
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.keyring != TFN_KEYS:
            kwargs["keyring"] = self.keyring
        return name, path, args, kwargs


def seal_bytes(data: bytes, *, keyring: str = TFN_KEYS) -> str:
    return _keyring(keyring).encrypt(data).decode()


def unseal_bytes(token: str, *, keyring: str = TFN_KEYS) -> bytes:
    """Raises InvalidToken if no key of the ring opens the token (a dropped key, or a damaged value)."""
    return _keyring(keyring).decrypt(token.encode())


def seal(text: str, *, keyring: str = TFN_KEYS) -> str:
    return seal_bytes(text.encode(), keyring=keyring)


def unseal(token: str, *, keyring: str = TFN_KEYS) -> str:
    return unseal_bytes(token, keyring=keyring).decode()


def seal_json(value: Any, *, keyring: str = TFN_KEYS) -> str:
    return seal(json.dumps(value), keyring=keyring)


def unseal_json(token: str, *, keyring: str = TFN_KEYS) -> Any:
    """The JSON value sealed by seal_json; its shape is the caller's to know, hence Any."""
    return json.loads(unseal(token, keyring=keyring))


class SealedValueUnreadable(Exception):
    """A stored token that no key of its ring opens: named by model, row and field, never by its content."""


@dataclass(frozen=True)
class SealedColumns:
    """The sealed fields under one key ring in one model."""

    model: type[models.Model]
    fields: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label


def sealed_fields(keyring: str) -> Iterator[SealedColumns]:
    """Every concrete model of every installed app with SealedFields under `keyring`, and those fields."""
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        names = tuple(
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, SealedField) and f.keyring == keyring and f.model is model
        )
        if names:
            yield SealedColumns(model, names)


def sealed_rotate(keyring: str, *, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every value sealed under `keyring` with the ring's first key; {model label: rows rewritten}.

    Batches of `batch_size` rows in key order, each in its own transaction with its rows locked, so a worker
    updating a row waits for its batch instead of writing back a token read before it. MultiFernet.rotate keeps
    each token's timestamp. A value that no key opens raises SealedValueUnreadable, naming its row, before its
    batch is written: restore the key it needs or clear the value, then run again (rotating twice is harmless)."""
    ring = _keyring(keyring)
    done: dict[str, int] = {}
    for columns in sealed_fields(keyring):
        model, fields = columns.model, columns.fields
        manager = model._base_manager
        not_empty = models.Q()
        for name in fields:
            not_empty |= ~models.Q(**{name: ""}) & models.Q(**{f"{name}__isnull": False})
        count, last_pk = 0, None
        while True:
            with transaction.atomic():
                rows = manager.filter(not_empty).order_by("pk")
                if last_pk is not None:
                    rows = rows.filter(pk__gt=last_pk)
                batch = list(rows.select_for_update().values_list("pk", *fields)[:batch_size])
                if not batch:
                    break
                updated = []
                for pk, *tokens in batch:
                    row = model(pk=pk)
                    for name, token in zip(fields, tokens, strict=True):
                        setattr(
                            row, name, _rotated(ring, token, where=f"{columns.label} {pk} {name}") if token else token
                        )
                    updated.append(row)
                manager.bulk_update(updated, list(fields))
                count += len(batch)
                last_pk = batch[-1][0]
        done[columns.label] = count
    return done


def sealed_not_under_first_key(keyring: str) -> dict[str, int]:
    """{model label: values the ring's first key alone cannot open}, for every model with sealed fields under
    `keyring`: all zero once a rotation is complete and the older keys can go. Reads and opens every value."""
    first = Fernet(getattr(settings, keyring)[0].encode())
    left: dict[str, int] = {}
    for columns in sealed_fields(keyring):
        count = 0
        rows = columns.model._base_manager.values_list(*columns.fields).order_by("pk")
        for tokens in rows.iterator(chunk_size=2000):
            for token in tokens:
                if token:
                    try:
                        first.decrypt(token.encode())
                    except InvalidToken:
                        count += 1
        left[columns.label] = count
    return left


def _rotated(ring: MultiFernet, token: str, *, where: str) -> str:
    try:
        return ring.rotate(token.encode()).decode()
    except InvalidToken:
        raise SealedValueUnreadable(f"{where}: no key of the ring opens this value") from None
