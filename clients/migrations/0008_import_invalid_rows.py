# The count of rows that fail their own checks, taken at upload: the preview offers to import only the others.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0007_sealed_import_file"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="invalid_rows",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
