"""Usernames become unique within a practice only, and each practice gets the code typed beside the username at
sign-in. Existing practices get their code from their name, as new ones do (portal.models.practice_code_for)."""

import django.contrib.auth.validators
import django.db.models.functions.text
from django.db import migrations, models
from django.utils.text import slugify


def give_codes(apps, schema_editor):  # type: ignore[no-untyped-def]
    Practice = apps.get_model("portal", "Practice")
    taken: set[str] = set()
    for practice in Practice.objects.order_by("pk"):
        base = slugify(practice.name)[:34].strip("-") or "practice"
        code, n = base, 1
        while code in taken:
            n += 1
            code = f"{base}-{n}"
        taken.add(code)
        practice.code = code
        practice.save(update_fields=["code"])


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0005_audit_chain_key_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="practice",
            name="code",
            # No index until every row has its code: the unique one below is then the only one.
            field=models.SlugField(db_index=False, default="", max_length=40, verbose_name="Practice code"),
            preserve_default=False,
        ),
        migrations.RunPython(give_codes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="practice",
            name="code",
            field=models.SlugField(max_length=40, unique=True, verbose_name="Practice code"),
        ),
        migrations.AlterField(
            model_name="user",
            name="username",
            field=models.CharField(
                help_text="150 characters or fewer. Letters, digits and @/./+/-/_ only.",
                max_length=150,
                validators=[django.contrib.auth.validators.UnicodeUsernameValidator()],
                verbose_name="username",
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("username"),
                models.F("practice"),
                name="username_unique_in_practice",
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("username"),
                condition=models.Q(("practice__isnull", True)),
                name="username_unique_without_practice",
            ),
        ),
    ]
