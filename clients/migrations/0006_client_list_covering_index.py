"""The client list's index covers the columns a list row shows (the new index is built before the old one goes)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0005_client_wpn_index"),
        ("portal", "0003_session_epoch"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="client",
            index=models.Index(
                fields=["practice", "sort_name", "id"],
                include=("display_name", "kind", "tfn_last3", "abn"),
                name="client_list_covering",
            ),
        ),
        migrations.RemoveIndex(
            model_name="client",
            name="client_practice_sort",
        ),
    ]
