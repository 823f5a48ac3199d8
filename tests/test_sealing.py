"""portal.sealing: the one way to seal a secret, and the field type through which rotation finds every one."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import isolate_apps

from ato_gateway.models import OutboxMessage
from clients.models import Client
from portal.models import Practice
from portal.sealing import (
    CREDENTIAL_KEYS,
    TFN_KEYS,
    SealedField,
    SealedValueUnreadable,
    seal,
    seal_bytes,
    seal_json,
    sealed_fields,
    sealed_not_under_first_key,
    sealed_rotate,
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
    # Each form passes its ring on: a credential's secret sealed as text or JSON is not under the TFN ring.
    for sealed, opened in (
        (seal("secret", keyring=CREDENTIAL_KEYS), "secret"),
        (seal_json({"k": 1}, keyring=CREDENTIAL_KEYS), '{"k": 1}'),
    ):
        with pytest.raises(InvalidToken):
            unseal(sealed)
        assert unseal(sealed, keyring=CREDENTIAL_KEYS) == opened
    with pytest.raises(InvalidToken):
        unseal(seal("secret"), keyring=CREDENTIAL_KEYS)
    with pytest.raises(InvalidToken):
        unseal_json(seal_json({"k": 1}), keyring=CREDENTIAL_KEYS)
    assert unseal_json(seal_json([1], keyring=CREDENTIAL_KEYS), keyring=CREDENTIAL_KEYS) == [1]
    # Compatible with the tokens stored before this module: plain Fernet under the ring's key.
    legacy = Fernet(settings.TFN_ENCRYPTION_KEYS[0].encode()).encrypt(b"987654321").decode()
    assert unseal(legacy) == "987654321"


def test_the_field_keeps_its_ring_through_migrations():
    _name, path, args, kwargs = SealedField(keyring=CREDENTIAL_KEYS, blank=True).deconstruct()
    assert path == "portal.sealing.SealedField" and kwargs == {"keyring": CREDENTIAL_KEYS, "blank": True}
    assert SealedField(*args, **kwargs).keyring == CREDENTIAL_KEYS
    assert "keyring" not in SealedField().deconstruct()[3]  # the default ring is left out, as Django does
    assert SealedField("Sealed TFN", keyring=CREDENTIAL_KEYS).verbose_name == "Sealed TFN"  # a field's own arguments


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


# Rotation, fast: the rotation tests in tests/test_sealing_rotation.py walk the README's steps through the stand-in
# ATO and every page; these pin sealed_rotate and sealed_not_under_first_key themselves, on a few rows.

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def sealed_client(practice: Practice, tfn: str) -> Client:
    return Client.objects.create(practice=practice, display_name=tfn, sort_name=tfn, tfn_ciphertext=seal(tfn))


def raw_tfns(practice: Practice) -> list[str]:
    return list(Client.objects.filter(practice=practice).order_by("pk").values_list("tfn_ciphertext", flat=True))


@pytest.mark.django_db
def test_rotation_reseals_every_value_under_the_first_key_in_batches(settings, practice):
    settings.TFN_ENCRYPTION_KEYS = [OLD]
    clients = [sealed_client(practice, f"12345678{i}") for i in range(5)]
    Client.objects.create(practice=practice, display_name="none", sort_name="none", tfn_ciphertext="")
    message = OutboxMessage.objects.create(
        practice=practice, service="PING", action="Ping", message_id="m1", conversation_id="c1",
        payloads_encrypted=seal_json([["PingRequest", "<x/>"]]),
    )  # fmt: skip
    before = raw_tfns(practice)
    settings.TFN_ENCRYPTION_KEYS = [NEW, OLD]
    assert sealed_not_under_first_key(TFN_KEYS)["clients.Client"] == 5  # the empty one needs no key
    assert sealed_not_under_first_key(TFN_KEYS)["ato_gateway.OutboxMessage"] == 1

    done = sealed_rotate(TFN_KEYS, batch_size=2)  # batches smaller than the rows: each batch picks up after the last

    assert done["clients.Client"] == 5 and done["ato_gateway.OutboxMessage"] == 1
    assert done["clients.ImportJob"] == 0  # a model with no rows is reported too
    assert "ato_gateway.MachineCredential" not in done  # another ring's values are not touched
    after = raw_tfns(practice)
    assert after[-1] == "" and all(a != b for a, b in zip(after[:-1], before[:-1], strict=True))
    settings.TFN_ENCRYPTION_KEYS = [NEW]  # the old key dropped: everything still opens
    assert [unseal(token) for token in after[:-1]] == [f"12345678{i}" for i in range(5)]
    assert [c.pk for c in clients] == list(
        Client.objects.exclude(tfn_ciphertext="").order_by("pk").values_list("pk", flat=True)
    )
    message.refresh_from_db()
    assert message.response_encrypted == ""  # an empty field beside a sealed one stays empty
    assert unseal_json(message.payloads_encrypted) == [["PingRequest", "<x/>"]]
    assert sealed_not_under_first_key(TFN_KEYS) == dict.fromkeys(sealed_not_under_first_key(TFN_KEYS), 0)
    assert {"clients.Client", "ato_gateway.OutboxMessage"} <= set(sealed_not_under_first_key(TFN_KEYS))


@pytest.mark.django_db
def test_rotation_with_one_row_per_batch_ends(settings, practice):
    settings.TFN_ENCRYPTION_KEYS = [OLD]
    for i in range(3):
        sealed_client(practice, f"87654321{i}")
    settings.TFN_ENCRYPTION_KEYS = [NEW, OLD]
    assert sealed_rotate(TFN_KEYS, batch_size=1)["clients.Client"] == 3
    assert sealed_rotate(TFN_KEYS)["clients.Client"] == 3  # rotating twice is harmless
    settings.TFN_ENCRYPTION_KEYS = [NEW]
    assert sorted(unseal(t) for t in raw_tfns(practice)) == [f"87654321{i}" for i in range(3)]


@pytest.mark.django_db
def test_rotation_keeps_each_tokens_timestamp(settings, practice):
    settings.TFN_ENCRYPTION_KEYS = [OLD]
    client = sealed_client(practice, "123456782")
    stamped = Fernet(OLD.encode()).extract_timestamp(client.tfn_ciphertext.encode())
    settings.TFN_ENCRYPTION_KEYS = [NEW, OLD]
    sealed_rotate(TFN_KEYS)
    assert Fernet(NEW.encode()).extract_timestamp(raw_tfns(practice)[0].encode()) == stamped


@pytest.mark.django_db
def test_a_value_no_key_opens_stops_its_batch_and_is_named(settings, practice):
    settings.TFN_ENCRYPTION_KEYS = [OLD]
    first = sealed_client(practice, "123456782")
    lost = Client.objects.create(
        practice=practice,
        display_name="x",
        sort_name="x",
        tfn_ciphertext=Fernet(Fernet.generate_key()).encrypt(b"x").decode(),
    )
    before = raw_tfns(practice)
    settings.TFN_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(SealedValueUnreadable) as raised:
        sealed_rotate(TFN_KEYS)
    # The command prints this to the person rotating, who must find the row: model, primary key, field.
    assert str(raised.value) == f"clients.Client {lost.pk} tfn_ciphertext: no key of the ring opens this value"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no token in a traceback
    assert raw_tfns(practice) == before  # the batch with the unreadable value is not written
    assert first.pk < lost.pk
    assert sealed_not_under_first_key(TFN_KEYS)["clients.Client"] == 2


@pytest.mark.django_db
def test_only_the_first_key_counts_as_done(settings, practice):
    settings.TFN_ENCRYPTION_KEYS = [OLD]
    sealed_client(practice, "123456782")
    settings.TFN_ENCRYPTION_KEYS = [NEW]
    sealed_client(practice, "876543210")
    settings.TFN_ENCRYPTION_KEYS = [OLD, NEW]
    assert sealed_not_under_first_key(TFN_KEYS)["clients.Client"] == 1
    settings.TFN_ENCRYPTION_KEYS = [NEW, OLD]
    assert sealed_not_under_first_key(TFN_KEYS)["clients.Client"] == 1


def test_rotation_finds_only_concrete_managed_models_that_declare_the_field(monkeypatch):
    """A proxy, an unmanaged table and a child in multi-table inheritance are not sealed columns of their own:
    rotating them too would rewrite the parent's rows twice, or a table that Django does not own."""
    with isolate_apps("clients") as registry:

        class Holder(models.Model):  # noqa: DJ008 - never shown
            secret = SealedField()
            other = SealedField(keyring=CREDENTIAL_KEYS)
            plain = models.TextField()

            class Meta:
                app_label = "clients"

        class HolderProxy(Holder):  # noqa: DJ008 - never shown
            class Meta:
                app_label = "clients"
                proxy = True

        class Child(Holder):  # noqa: DJ008 - never shown
            extra = SealedField(blank=True)

            class Meta:
                app_label = "clients"

        class Unmanaged(models.Model):  # noqa: DJ008 - never shown
            secret = SealedField()

            class Meta:
                app_label = "clients"
                managed = False

        class Plain(models.Model):  # noqa: DJ008 - never shown
            text = models.TextField()

            class Meta:
                app_label = "clients"

        monkeypatch.setattr("portal.sealing.apps", registry)
        found = list(sealed_fields(TFN_KEYS))
    assert [(c.model, c.fields, c.label) for c in found] == [
        (Holder, ("secret",), "clients.Holder"),
        (Child, ("extra",), "clients.Child"),
    ]
