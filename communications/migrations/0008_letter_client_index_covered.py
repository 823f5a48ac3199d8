"""A letter's foreign key to its client loses the index Django gives every foreign key: comms_letter_client starts
with the client and serves what that index did (a client's letters, a client's deletion), while each was written
for every letter a sync stores."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0008_import_invalid_rows"),
        ("communications", "0007_letter_foreign_key_indexes_partial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="letter",
            name="client",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="letters",
                to="clients.client",
            ),
        ),
    ]
