"""``manage.py sync_ato relationships --practice ID``: the nightly reconciliation, from the shell. Other apps'
syncs (``sync_ato demographics``) are theirs, registered in ``portal.apps.SYNC_COMMANDS``; this command only picks.

It starts a run (or joins the one already running) and follows it to the end, printing each page's progress. When
an RQ worker is listening, the pages go through it as they do at night and this command only watches; when none is
(or with ``--inline``), this process sends each page itself through the gateway's own send path, so the same
handler applies it. ``--no-wait`` starts the run and returns at once.
"""

from __future__ import annotations

import os
import time
from typing import Any

import django_rq
from django.core.management.base import BaseCommand, CommandError
from rq import Worker

from ato_gateway import api
from portal.apps import SYNC_COMMANDS
from portal.models import Practice
from relationships.reconcile.models import ReconcileRun, RunStatus
from relationships.reconcile.services import reconcile_start

POLL_SECONDS = 0.25


class Command(BaseCommand):
    help = "Bring a practice's records into line with the ATO as the nightly jobs do (relationships: CUREL List)."

    def add_arguments(self, parser: Any) -> None:
        what = ["relationships", *sorted(SYNC_COMMANDS)]
        parser.add_argument("what", choices=what, help="What to bring into line with the ATO.")
        parser.add_argument("--practice", type=int, required=True, help="The practice's id.")
        parser.add_argument("--inline", action="store_true", help="Send the pages from this process.")
        parser.add_argument("--no-wait", action="store_true", help="Start the run and return.")

    def handle(self, *args: Any, what: str, practice: int, inline: bool, no_wait: bool, **options: Any) -> None:
        owner = Practice.objects.filter(pk=practice).first()
        if owner is None:
            raise CommandError(f"There is no practice with id {practice}.")
        if what in SYNC_COMMANDS:
            if not inline and not no_wait and not self._workers_listening():
                self.stdout.write("No RQ worker is listening: sending from this process.")
                inline = True
            SYNC_COMMANDS[what](practice=owner, write=self.stdout.write, inline=inline, wait=not no_wait)
            return
        if not owner.agent_number:
            raise CommandError(f"{owner.name} has no registered agent number, so the ATO has no links to list.")
        run = reconcile_start(practice=owner)
        self.stdout.write(f"Reconciliation {run.pk} of {owner.name}: {run.get_status_display().lower()}.")
        if no_wait:
            return
        if not inline and not self._workers_listening():
            self.stdout.write("No RQ worker is listening: sending the pages from this process.")
            inline = True
        self._follow(run, inline=inline)

    @staticmethod
    def _workers_listening() -> bool:
        queue = django_rq.get_queue("high")
        return any(queue.name in w.queue_names() for w in Worker.all(connection=queue.connection))

    def _follow(self, run: ReconcileRun, *, inline: bool) -> None:
        shown = (-1, -1)
        worker = f"sync_ato-{os.getpid()}"
        while True:
            run = ReconcileRun.objects.select_related("current_question").get(pk=run.pk)
            if (run.pages, run.clients_seen) != shown:
                shown = (run.pages, run.clients_seen)
                self.stdout.write(
                    f"  page {run.pages}: {run.clients_seen} clients checked, {run.drift_count} differences"
                )
            if not run.is_running:
                break
            if run.is_stuck:
                raise CommandError(
                    f"Run {run.pk} is stuck: its page came back but could not be recorded (see the gateway's "
                    "message log). Running this command again resumes it."
                )
            question = run.current_question
            assert question is not None  # not stuck
            if not (inline and api.question_send_now(question, worker=worker)):
                time.sleep(POLL_SECONDS)
        if run.status == RunStatus.FAILED:
            raise CommandError(run.error)
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {run.clients_seen} clients in {run.pages} pages, {run.drift_count} differences, "
                f"access lost to {run.lost_access_count}."
            )
        )
