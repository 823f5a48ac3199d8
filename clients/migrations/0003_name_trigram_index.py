"""Name search is a substring match; on PostgreSQL a trigram index keeps it fast at tens of thousands of clients.
SQLite (the laptop default) scans, which is fine at its scale."""

from django.db import migrations


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS client_sort_name_trgm ON clients_client USING gin (sort_name gin_trgm_ops)"
        )


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS client_sort_name_trgm")


class Migration(migrations.Migration):
    dependencies = [("clients", "0002_initial")]
    operations = [migrations.RunPython(forward, backward)]
