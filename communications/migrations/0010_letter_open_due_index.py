from django.db import migrations, models


class Migration(migrations.Migration):
    """The open letters by due date, carrying the owner, the escalation and the client: the dashboard's counts and
    its most overdue letters read this index alone (before, each read every open letter from the table, and for
    staff restricted to groups once for each of their clients). It takes the place of the index by state and due,
    whose every use asked for open letters."""

    dependencies = [("communications", "0009_letter_inbox_by_kind_and_owner_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="letter", name="comms_letter_due"),
        migrations.AddIndex(
            model_name="letter",
            index=models.Index(
                condition=models.Q(("state__in", ["new", "in_progress"])),
                fields=["practice", "due", "id"],
                include=("client", "owner", "escalated_at"),
                name="comms_letter_open_due",
            ),
        ),
    ]
