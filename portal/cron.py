"""The cron configuration for `manage.py rqcron portal.cron`: every app's periodic jobs, from the registry the
apps fill in their AppConfig.ready()."""

from django.utils.module_loading import import_string
from rq import cron

from portal.apps import CRON_JOBS
from portal.queues import PrefixedQueue

# RQ's cron job pushes onto rq.Queue(queue_name) itself, whatever settings.RQ's QUEUE_CLASS says; with the class the
# workers use, the job lands in the queue they listen on (portal/queues.py). Only this process loads this module.
cron.Queue = PrefixedQueue  # type: ignore[attr-defined,misc]

for job in CRON_JOBS:
    cron.register(**{**job, "func": import_string(job["func"])})
