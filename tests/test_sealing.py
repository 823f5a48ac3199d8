"""portal.sealing: the one way to seal a secret, and the field type through which rotation finds every one."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from portal.sealing import (
    CREDENTIAL_KEYS,
    TFN_KEYS,
    SealedField,
    seal,
    seal_bytes,
    seal_json,
    sealed_fields,
    unseal,
    unseal_bytes,
    unseal_json,
)


def test_values_open_under_their_own_ring_only(settings):
    token = seal("123456782")
    assert token != "123456782" and unseal(token) == "123456782"
    assert unseal_json(seal_json({"documents": [["A", "<x/>"]]})) == {"documents": [["A", "<x/>"]]}
    key = seal_bytes(b"\x30\x82der", keyring=CREDENTIAL_KEYS)
    assert unseal_bytes(key, keyring=CREDENTIAL_KEYS) == b"\x30\x82der"
    with pytest.raises(InvalidToken):
        unseal_bytes(key, keyring=TFN_KEYS)
    # Compatible with the tokens stored before this module: plain Fernet under the ring's key.
    legacy = Fernet(settings.TFN_ENCRYPTION_KEYS[0].encode()).encrypt(b"987654321").decode()
    assert unseal(legacy) == "987654321"


def test_the_field_keeps_its_ring_through_migrations():
    _name, path, args, kwargs = SealedField(keyring=CREDENTIAL_KEYS, blank=True).deconstruct()
    assert path == "portal.sealing.SealedField" and kwargs == {"keyring": CREDENTIAL_KEYS, "blank": True}
    assert SealedField(*args, **kwargs).keyring == CREDENTIAL_KEYS
    assert "keyring" not in SealedField().deconstruct()[3]  # the default ring is left out, as Django does


@pytest.mark.django_db
def test_the_migrations_know_every_sealed_field_and_its_ring():
    """Data migrations see the historical models: their fields must be SealedFields with the right ring."""
    state = MigrationExecutor(connection).loader.project_state()
    historical = {
        (label, name): field.keyring
        for label, model in (
            ("clients.Client", state.apps.get_model("clients", "Client")),
            ("ato_gateway.MachineCredential", state.apps.get_model("ato_gateway", "MachineCredential")),
        )
        for name, field in ((f.name, f) for f in model._meta.fields)
        if isinstance(field, SealedField)
    }
    assert historical == {
        ("clients.Client", "tfn_ciphertext"): TFN_KEYS,
        ("ato_gateway.MachineCredential", "private_key_encrypted"): CREDENTIAL_KEYS,
    }


def test_rotation_finds_every_sealed_column_of_every_app():
    found = {(c.label, f) for keyring in (TFN_KEYS, CREDENTIAL_KEYS) for c in sealed_fields(keyring) for f in c.fields}
    assert {
        ("clients.Client", "tfn_ciphertext"),
        ("clients.ImportJob", "content"),
        ("ato_gateway.OutboxMessage", "payloads_encrypted"),
        ("ato_gateway.OutboxMessage", "response_encrypted"),
        ("ato_gateway.PulledResponse", "reply_encrypted"),
        ("ato_gateway.MachineCredential", "private_key_encrypted"),
        ("relationships.AtoRequest", "identifier_sealed"),
    } <= found
    tfn = {(c.label, f) for c in sealed_fields(TFN_KEYS) for f in c.fields}
    assert ("ato_gateway.MachineCredential", "private_key_encrypted") not in tfn
