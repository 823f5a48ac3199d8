"""A request's state, answer and message move to the gateway's Question (the tracked question every app asks the ATO
with): each existing request gets the question of its message, in the state it had, and a reconciliation run's page
in flight is named by its question."""

import django.db.models.deletion
from django.db import migrations, models

import portal.sealing

PURPOSE = "relationships.request"
BULK_PURPOSE = "relationships.bulk_row"
RECONCILE_PURPOSE = "relationships.reconcile_page"


def _question(Question, message, purpose, state, asked_by_id, answered_at):
    existing = Question.objects.filter(message_id=message.pk).first()
    if existing is not None:
        return existing
    return Question.objects.create(
        practice_id=message.practice_id,
        asked_by_id=asked_by_id,
        purpose=purpose,
        service_action=f"{message.service}.{message.action}",
        subject_type=message.subject_type,
        subject_id=message.subject_id,
        subject_repr=message.subject_repr,
        message=message,
        state=state,
        failure=message.error_text if state == "failed" else "",
        failure_code=message.error_code if state == "failed" else "",
        answered_at=answered_at,
    )


def forwards(apps, schema_editor):
    AtoRequest = apps.get_model("relationships", "AtoRequest")
    ReconcileRun = apps.get_model("relationships", "ReconcileRun")
    Question = apps.get_model("ato_gateway", "Question")
    for req in AtoRequest.objects.exclude(message=None).select_related("message").iterator():
        purpose = BULK_PURPOSE if req.bulk_row_id else PURPOSE
        req.question = _question(Question, req.message, purpose, req.status, req.created_by_id, req.answered_at)
        req.save(update_fields=["question"])
    for run in ReconcileRun.objects.exclude(current_message=None).select_related("current_message").iterator():
        message = run.current_message
        state = {"done": "answered", "failed": "failed", "dead": "failed"}.get(message.status, "waiting")
        run.current_question = _question(
            Question, message, RECONCILE_PURPOSE, state, run.started_by_id, message.completed_at
        )
        run.save(update_fields=["current_question"])


class Migration(migrations.Migration):
    dependencies = [
        ("ato_gateway", "0005_question"),
        ("relationships", "0002_reconciliation"),
    ]

    operations = [
        migrations.AddField(
            model_name="atorequest",
            name="question",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="ato_gateway.question",
            ),
        ),
        migrations.AddField(
            model_name="reconcilerun",
            name="current_question",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="ato_gateway.question",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveField(model_name="atorequest", name="answer"),
        migrations.RemoveField(model_name="atorequest", name="answered_at"),
        migrations.RemoveField(model_name="atorequest", name="message"),
        migrations.RemoveField(model_name="atorequest", name="status"),
        migrations.RemoveField(model_name="reconcilerun", name="current_message"),
        migrations.AlterField(
            model_name="atorequest",
            name="identifier_sealed",
            field=portal.sealing.SealedField(),
        ),
    ]
