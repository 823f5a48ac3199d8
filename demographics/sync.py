"""``manage.py sync_ato demographics --practice ID``: the nightly drift watch, from the shell (registered in
``portal.apps.SYNC_COMMANDS``). The watch's steps only record questions, so they run in this process; the questions
go through the workers as at night, or through this process when none listens (``--inline``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from django.core.management.base import CommandError

from ato_gateway import api
from demographics import drift, services
from demographics.models import DriftAlert
from portal.models import Practice

POLL_SECONDS = 0.25


def drift_watch_sync(*, practice: Practice, write: Callable[[str], None], inline: bool, wait: bool) -> None:
    if not api.practices_able_to_ask().filter(pk=practice.pk).exists():
        raise CommandError(f"{practice.name} cannot ask the ATO: it needs an agent number and a machine credential.")
    run = drift.drift_watch_start(practice=practice)
    write(f"Drift watch {run.pk} of {practice.name}: started.")
    if not wait:
        drift.drift_watch_enqueue(run.pk)
        return
    while drift.drift_watch_step(run.pk):
        run.refresh_from_db()
        write(f"  {run.clients_asked} clients asked about")
    # Only this run's questions: one asked from a client's page meanwhile is not the watch's to wait for.
    asked = api.Question.objects.filter(practice=practice, purpose=services.PURPOSE, created_at__gte=run.started_at)
    waiting = asked.filter(state=api.QuestionState.WAITING)
    worker = f"sync_ato-{os.getpid()}"
    while waiting.exists():
        # Each due question is sent, not only until the first one goes (a list, not a short-circuiting generator).
        sent = [api.question_send_now(q, worker=worker) for q in waiting[:50]] if inline else []
        if not any(sent):
            time.sleep(POLL_SECONDS)
    run.refresh_from_db()
    failed = asked.filter(state=api.QuestionState.FAILED).count()
    alerts = DriftAlert.objects.filter(practice=practice, found_at__gte=run.started_at)
    urgent = alerts.filter(urgent=True).count()
    write(
        f"Done: {run.clients_asked} clients asked about, {alerts.count()} changes the practice did not make "
        f"({urgent} urgent: a bank account), {failed} questions the ATO could not answer."
    )
