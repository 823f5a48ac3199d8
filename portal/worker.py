"""The RQ worker class every `manage.py rqworker` of this project runs (settings.RQ["WORKER_CLASS"]).

RQ's default Worker forks a fresh work horse for every job. A job then starts from a cold process: modules the
job imports lazily, the decrypted machine key (about 46 ms to load and check), the token read from Redis, the HTTP
keep-alive connections to the ATO and the database connection are all rebuilt and thrown away again with the
child. Measured on the gateway benchmark (2,000 signed round trips), that was about 8.5 ms of worker CPU a message
against 5.5 ms in a process that keeps them.

So jobs run in the worker process itself, as RQ's SimpleWorker does, with what Django does around every web
request done around every job: a database connection that broke (PostgreSQL restarted) or outlived CONN_MAX_AGE
is closed before the job and after it, never handed to the next job. Job timeouts still apply (RQ's death
penalty works in the worker's main thread). A job that brings the process down takes the worker with it; the
process manager starts it again, RQ marks the job abandoned, and the gateway's sweeper re-sends what it held.
"""

from __future__ import annotations

from typing import Any

from django.db import close_old_connections
from rq import SimpleWorker


class Worker(SimpleWorker):
    def perform_job(self, job: Any, queue: Any, execution: Any = None) -> bool:
        close_old_connections()
        try:
            return bool(super().perform_job(job, queue, execution))
        finally:
            close_old_connections()
