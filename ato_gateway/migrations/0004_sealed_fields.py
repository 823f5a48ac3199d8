# The sealed columns become portal.sealing.SealedField, which names its key ring so that rotation finds them.
# The columns stay text holding Fernet tokens: no data changes, and PostgreSQL sees no schema change.

from django.db import migrations

import portal.sealing


class Migration(migrations.Migration):
    dependencies = [
        ("ato_gateway", "0003_outbox_fewer_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="machinecredential",
            name="private_key_encrypted",
            field=portal.sealing.SealedField(keyring="CREDENTIAL_ENCRYPTION_KEYS"),
        ),
        migrations.AlterField(
            model_name="outboxmessage",
            name="payloads_encrypted",
            field=portal.sealing.SealedField(),
        ),
        migrations.AlterField(
            model_name="outboxmessage",
            name="response_encrypted",
            field=portal.sealing.SealedField(blank=True),
        ),
        migrations.AlterField(
            model_name="pulledresponse",
            name="reply_encrypted",
            field=portal.sealing.SealedField(),
        ),
    ]
