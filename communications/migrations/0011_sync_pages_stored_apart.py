"""A sync's pages read and stored apart (SyncPage): the next page is fetched while a job stores this one. The runs
before this stored every page as they read it, so all their pages count as stored."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ato_gateway", "0005_question"),
        ("communications", "0010_letter_open_due_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="paged",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="pages_stored",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.CreateModel(
            name="SyncPage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveIntegerField()),
                ("read_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("stored_at", models.DateTimeField(blank=True, null=True)),
                ("error", models.TextField(blank=True)),
                (
                    "question",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="ato_gateway.question"
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="communications.syncrun",
                    ),
                ),
            ],
            options={
                "ordering": ["run", "number"],
                "constraints": [models.UniqueConstraint(fields=("run", "number"), name="comms_syncpage_run_number")],
            },
        ),
        migrations.RunSQL(
            "UPDATE communications_syncrun SET pages_stored = pages, paged = (status = 'done')",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
