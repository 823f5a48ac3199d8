"""The inbox filtered by type and by owner, each in the inbox's own order (newest issue first): without these the
page walked the practice's letters newest first past every letter of another type or owner, and a rare type's or a
quiet owner's page read many thousands of index entries to find its fifty."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0008_letter_client_index_covered"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="letter",
            index=models.Index(fields=["practice", "kind", "-issued", "-id"], name="comms_letter_inbox_kind"),
        ),
        migrations.AddIndex(
            model_name="letter",
            index=models.Index(fields=["practice", "owner", "-issued", "-id"], name="comms_letter_inbox_owner"),
        ),
    ]
