"""Key rotation as the README tells it: put a new key first, run the rotation commands, drop the old key. Every
sealed value must still open afterwards, on every page that shows one, and a message must still go to the
stand-in ATO (its payload opened, signed with the rotated credential key) when the console resends it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Model
from django.urls import reverse

from ato_gateway import api, services, tokens
from ato_gateway.models import MachineCredential, MessageStatus, OutboxMessage, PulledResponse
from ato_gateway.wire.documents import curel
from ato_gateway.wire.documents.common import PersonName
from clients.models import Client, ImportJob
from clients.services import import_preview
from portal.models import Practice
from portal.sealing import CREDENTIAL_KEYS, TFN_KEYS, seal, sealed_fields, unseal_bytes
from relationships import services as relationship_services
from relationships.models import AtoRequest, RequestKind
from tests.gateway_fixtures import Sandbox, pump, sandbox, settled  # noqa: F401 - the fixture
from tests.questions import fabricate_question

pytestmark = pytest.mark.django_db(transaction=True)
TFN = "123456782"
CSV = "kind,family_name,given_names,tfn\nindividual,Nguyen,Lan,876543210\n"


@pytest.fixture
def gateway(settings, sandbox: Sandbox, practice: Practice, admin) -> Iterator[Sandbox]:  # noqa: F811
    for name, value in sandbox.env().items():
        setattr(settings, name, value)
    settings.GATEWAY_BACKOFF_BASE_SECONDS = 0.05
    settings.GATEWAY_BACKOFF_CAP_SECONDS = 0.2
    settings.ATO_READ_TIMEOUT_SECONDS = 5
    tokens.forget_tokens()
    sandbox.clear_faults()
    services.credential_import(
        practice=practice,
        data=sandbox.demo_keystore.read_bytes(),
        filename="demo-keystore.xml",
        password="demo-keystore-password",
        actor=admin,
    )
    yield sandbox
    sandbox.clear_faults()
    tokens.forget_tokens()


def ping(practice: Practice, text: str) -> OutboxMessage:
    document = f'<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>{text}</Text></PingRequest>'
    with transaction.atomic():
        return services.outbox_enqueue(
            practice=practice, service="PING", action="Ping.001.00", documents=[("PingRequest", document)]
        )


def raw_column(model: type[Model], field: str, pk: int) -> str:
    table = model._meta.db_table  # every sealed field here keeps its column named after it
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{field}" FROM "{table}" WHERE id = %s', [pk])  # noqa: S608 - model metadata
        return cursor.fetchone()[0]


def test_rotate_drop_the_old_keys_and_everything_still_opens(settings, gateway, practice, admin, login):
    # Something of every kind sealed under the old keys.
    client = Client(practice=practice, family_name="Citizen", given_names="Jo")
    client.set_tfn(TFN)
    client.save()
    answered = ping(practice, "answered before the rotation")
    pump(settled(answered))
    gateway.faults(next=["bad_signature"])  # its reply is spoilt: the message fails, to be resent after rotating
    refused = ping(practice, "resent after the rotation")
    pump(settled(refused))
    answered.refresh_from_db()
    refused.refresh_from_db()
    assert (answered.status, refused.status) == (MessageStatus.DONE, MessageStatus.FAILED), refused.error_text
    pulled = PulledResponse(practice=practice, ref_to_message_id="pulled-before-rotation")
    pulled.set_reply("application/soap+xml", b"<reply>TFN 123456782</reply>")
    pulled.save()
    upload = ImportJob.objects.create(
        practice=practice, created_by=admin, filename="c.csv", content=seal(CSV, keyring=TFN_KEYS), total_rows=1
    )
    request = AtoRequest(practice=practice, created_by=admin, kind=RequestKind.SEARCH, family_name="Citizen")
    request.seal_identifier("TFN", TFN)
    request.save()
    found = curel.FoundClient(entity_type="IND", person_name=PersonName("Citizen", "Jo"))
    request.question = fabricate_question(
        practice=practice,
        by=admin,
        purpose=relationship_services.PURPOSE,
        request=relationship_services.request_document(request),
        response=curel.SearchResponse(client=found),
    )
    request.save(update_fields=["question"])
    credential = MachineCredential.objects.get(practice=practice)
    before = {
        "tfn": raw_column(Client, "tfn_ciphertext", client.pk),
        "payloads": raw_column(OutboxMessage, "payloads_encrypted", answered.pk),
        "response": raw_column(OutboxMessage, "response_encrypted", answered.pk),
        "reply": raw_column(PulledResponse, "reply_encrypted", pulled.pk),
        "private_key": raw_column(MachineCredential, "private_key_encrypted", credential.pk),
        "import": raw_column(ImportJob, "content", upload.pk),
        "identifier": raw_column(AtoRequest, "identifier_sealed", request.pk),
    }

    # The README's steps: the new key first, rotate, then the old key goes.
    new_tfn_key, new_credential_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TFN_ENCRYPTION_KEYS = [new_tfn_key, *settings.TFN_ENCRYPTION_KEYS]
    settings.CREDENTIAL_ENCRYPTION_KEYS = [new_credential_key, *settings.CREDENTIAL_ENCRYPTION_KEYS]
    with pytest.raises(CommandError, match="still need an older key"):
        call_command("rotate_tfn_key", check=True)
    with pytest.raises(CommandError, match="still need an older key"):
        call_command("rotate_credential_key", check=True)
    call_command("rotate_tfn_key", batch_size=2)  # batches smaller than the rows, so batching is exercised
    call_command("rotate_credential_key")
    call_command("rotate_tfn_key", check=True)  # nothing needs the old keys any more
    call_command("rotate_credential_key", check=True)
    settings.TFN_ENCRYPTION_KEYS = [new_tfn_key]
    settings.CREDENTIAL_ENCRYPTION_KEYS = [new_credential_key]
    tokens.forget_tokens()  # so that the next send signs a fresh token request with the rotated private key

    after = {
        "tfn": raw_column(Client, "tfn_ciphertext", client.pk),
        "payloads": raw_column(OutboxMessage, "payloads_encrypted", answered.pk),
        "response": raw_column(OutboxMessage, "response_encrypted", answered.pk),
        "reply": raw_column(PulledResponse, "reply_encrypted", pulled.pk),
        "private_key": raw_column(MachineCredential, "private_key_encrypted", credential.pk),
        "import": raw_column(ImportJob, "content", upload.pk),
        "identifier": raw_column(AtoRequest, "identifier_sealed", request.pk),
    }
    assert all(after[name] != before[name] for name in before), "every sealed value was rewritten"

    # Every sealed value of every model opens under the new keys alone, whichever app declares it.
    for keyring in (TFN_KEYS, CREDENTIAL_KEYS):
        for columns in sealed_fields(keyring):
            for row in columns.model._base_manager.values("pk", *columns.fields):
                for name in columns.fields:
                    if row[name]:
                        unseal_bytes(row[name], keyring=keyring)  # raises InvalidToken if it cannot
    assert Client.objects.get(pk=client.pk).reveal_tfn() == TFN
    answered.refresh_from_db()
    assert "answered before the rotation" in answered.payloads()[0][1]
    assert "answered before the rotation" in answered.response()["documents"]["PingResponse"]
    assert PulledResponse.objects.get(pk=pulled.pk).reply() == ("application/soap+xml", b"<reply>TFN 123456782</reply>")
    assert MachineCredential.objects.get(pk=credential.pk).private_key().key_size >= 2048
    assert AtoRequest.objects.get(pk=request.pk).identifier() == TFN
    assert [p.row.family_name for p in import_preview(ImportJob.objects.get(pk=upload.pk)) if p.row] == ["Nguyen"]

    # A relationship goes on to its next step: the search's question and answer open, and the Validate that follows
    # asks with the identifier sealed under the old key.
    searched = AtoRequest.objects.get(pk=request.pk)
    assert searched.question is not None and api.question_request(searched.question).client.tfn == TFN
    assert relationship_services.found_client(searched) == found
    validated = relationship_services.link_validate(user=admin, previous=searched, links=[("CLIENT", "", "", "")])
    assert validated.question is not None and api.question_request(validated.question).client.tfn == TFN

    # The pages that open them.
    http = login(admin)
    page = http.get(reverse("clients:detail", args=[client.pk]))
    assert page.status_code == 200 and "*** *** 782" in page.content.decode()
    revealed = http.post(reverse("clients:reveal_tfn", args=[client.pk]))
    assert revealed.status_code == 200 and "123 456 782" in revealed.content.decode()
    for message, text in ((answered, "answered before the rotation"), (refused, "resent after the rotation")):
        page = http.get(reverse("ato_gateway:message", args=[message.pk]))
        assert page.status_code == 200 and text in page.content.decode()
    page = http.get(reverse("relationships:request", args=[searched.pk]))
    assert page.status_code == 200 and "CITIZEN, Jo" in page.content.decode()
    page = http.get(reverse("clients:import_detail", args=[upload.pk]))
    assert page.status_code == 200 and "Nguyen" in page.content.decode()

    # A resend through the console: the payload opens, the credential signs, the ATO answers.
    assert http.post(reverse("ato_gateway:resend", args=[refused.pk])).status_code == 302
    pump(settled(refused), timeout=60)
    refused.refresh_from_db()
    assert refused.status == MessageStatus.DONE, f"{refused.error_code}: {refused.error_text}"
    assert "resent after the rotation" in refused.response()["documents"]["PingResponse"]


def test_a_value_no_key_opens_stops_the_rotation_with_its_row_named(practice):
    client = Client(practice=practice, family_name="Citizen", given_names="Jo")
    client.set_tfn(TFN)
    client.save()
    Client.objects.filter(pk=client.pk).update(tfn_ciphertext=Fernet(Fernet.generate_key()).encrypt(b"x").decode())
    with pytest.raises(CommandError, match=rf"clients\.Client {client.pk} tfn_ciphertext: no key of the ring"):
        call_command("rotate_tfn_key")
