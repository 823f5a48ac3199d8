# The client's TFN and the uploaded import file become SealedFields. The TFN column already held Fernet tokens;
# the import files were kept in clear, so this seals those still needed and deletes those of finished imports.

from django.db import migrations, models

import portal.sealing


def seal_import_files(apps, schema_editor):
    ImportJob = apps.get_model("clients", "ImportJob")
    for job in ImportJob.objects.exclude(content="").only("pk", "status", "content").iterator(chunk_size=100):
        content = "" if job.status == "done" else portal.sealing.seal(job.content)
        ImportJob.objects.filter(pk=job.pk).update(content=content)


def open_import_files(apps, schema_editor):
    ImportJob = apps.get_model("clients", "ImportJob")
    for job in ImportJob.objects.exclude(content="").only("pk", "content").iterator(chunk_size=100):
        ImportJob.objects.filter(pk=job.pk).update(content=portal.sealing.unseal(job.content))


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0006_client_list_covering_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="client",
            name="tfn_ciphertext",
            field=portal.sealing.SealedField(blank=True),
        ),
        migrations.AlterField(
            model_name="importjob",
            name="content",
            field=portal.sealing.SealedField(blank=True),
        ),
        migrations.AlterField(
            model_name="importjob",
            name="status",
            field=models.CharField(
                choices=[
                    ("uploaded", "Awaiting confirmation"),
                    ("queued", "Queued"),
                    ("running", "Importing"),
                    ("done", "Finished"),
                    ("failed", "Failed"),
                    ("expired", "Abandoned (file deleted)"),
                ],
                default="uploaded",
                max_length=12,
            ),
        ),
        migrations.RunPython(seal_import_files, open_import_files, elidable=True),
    ]
