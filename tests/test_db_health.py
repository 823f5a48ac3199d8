"""The PostgreSQL backend's health check (portal/db/postgresql/base.py) asks the connection instead of sending
`SELECT 1`: a connection the server has ended is still found unusable and replaced before the request's first query,
and a healthy one is kept."""

from __future__ import annotations

import select

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("The health check is PostgreSQL's: run the suite on PostgreSQL (make test does).")


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def end_request() -> None:
    """What Django does when a request finishes: the next request's first query runs the health check again."""
    connection.close_if_unusable_or_obsolete()


def test_the_project_uses_the_backend():
    from portal.db.postgresql.base import DatabaseWrapper

    assert isinstance(connections["default"], DatabaseWrapper)


def test_a_healthy_idle_connection_is_kept_across_requests():
    first = backend_pid()
    end_request()
    assert connection.is_usable()
    assert backend_pid() == first


def test_a_connection_the_server_ended_is_replaced_before_the_next_query():
    ended = backend_pid()
    end_request()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [ended])
    finally:
        other.close()
    # The server's goodbye (a FATAL, then end of file) reaches the socket; wait until it has.
    select.select([connection.connection.pgconn.socket], [], [], 30)
    assert not connection.is_usable()
    assert backend_pid() != ended  # the health check closed it and Django connected again


def test_a_connection_inside_a_transaction_is_checked_with_a_query():
    from django.db import transaction

    with transaction.atomic():
        backend_pid()
        assert connection.is_usable()
