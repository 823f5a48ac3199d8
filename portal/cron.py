"""The cron configuration for `manage.py rqcron portal.cron`: every app's periodic jobs, from the registry the
apps fill in their AppConfig.ready()."""

from django.utils.module_loading import import_string
from rq import cron

from portal.apps import CRON_JOBS

for job in CRON_JOBS:
    cron.register(**{**job, "func": import_string(job["func"])})
