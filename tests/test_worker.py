"""The worker class every `manage.py rqworker` runs: jobs in the worker's own process, with Django's connection
hygiene around each one."""

from __future__ import annotations

import django_rq
import psycopg
import pytest
from django.db import connection

from portal.models import Practice
from portal.worker import Worker


def count_practices() -> int:
    return Practice.objects.count()


def test_rqworker_uses_the_project_worker_class() -> None:
    assert isinstance(django_rq.get_worker("high"), Worker)


@pytest.mark.django_db(transaction=True)
def test_a_job_after_the_server_ended_the_workers_connection_gets_a_new_one(practice: Practice) -> None:
    """The worker keeps its database connection from job to job. One that PostgreSQL ended meanwhile (a restart,
    an idle timeout, pg_terminate_backend as here) is replaced before the next job, not handed to it."""
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    dsn = connection.connection.info.dsn
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])
    queue = django_rq.get_queue("default")
    job = queue.enqueue(count_practices)
    Worker([queue], connection=queue.connection).work(burst=True)
    job.refresh()
    result = job.latest_result()
    assert job.is_finished, result.exc_string if result is not None else job.get_status()
    assert job.return_value() == 1
    assert connection.connection.info.backend_pid != backend
