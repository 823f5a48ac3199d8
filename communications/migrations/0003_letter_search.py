"""The letters' full-text index: a tsvector per letter (its title now; its text as each document is stored) with a
GIN index, on PostgreSQL. SQLite (the laptop default) keeps the column empty and searches titles by substring.
Letters held already get their titles' words here; a document stored before this migration is not read again, so
its text is not searchable (its title is)."""

import django.contrib.postgres.search
from django.db import migrations

ID_LIKE = r"(?<!\d)(?:\d{8,}|\d{2,3}(?:[ -]\d{3}){2,3})(?!\d)"  # communications.models._ID_LIKE, as it was


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        # The rule of communications.models.searchable (PostgreSQL's regular expressions take the same pattern):
        # no digits shaped as a TFN or an ABN are indexed.
        schema_editor.execute(
            "UPDATE communications_letter SET search = "
            "setweight(to_tsvector('english', regexp_replace(title, %s, ' ', 'g')), 'A')",
            [ID_LIKE],
        )
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS comms_letter_search ON communications_letter USING gin (search)"
        )


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS comms_letter_search")


class Migration(migrations.Migration):
    dependencies = [("communications", "0002_letters_told_and_preferences")]

    operations = [
        migrations.AddField(
            model_name="letter",
            name="search",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(forward, backward),
    ]
