"""The cron configuration for `manage.py rqcron portal.cron`: every app's periodic jobs, from the registry the
apps fill in their AppConfig.ready()."""

from rq import cron

from portal.apps import CRON_JOBS

for job in CRON_JOBS:
    cron.register(**job)
