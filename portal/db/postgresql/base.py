"""Django's PostgreSQL backend with a connection health check that needs no round trip (settings.DATABASES uses
this engine in place of django.db.backends.postgresql).

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the first query of every request by sending
it `SELECT 1`: one extra round trip per page, ~0.2M instructions in the worker (callgrind of the client list) plus
the server's work and two context switches on a machine the web workers share with PostgreSQL; the check and its
round trip were ~3% of the client list's request in a profile. This check asks the connection instead: psycopg
marks it closed or broken when it has seen it fail, and an idle connection has nothing to read unless the server
has written to it, which it does to one it ends (the FATAL of a restart, pg_terminate_backend or an idle timeout,
then end of file). Only when something is waiting, or the connection is not idle, does a real `SELECT 1` decide,
as before. A peer that vanished without a word (no FIN, no RST) is not seen by either check until a query's TCP
timeout; Django then drops that connection at the end of the request, as it does after any failure."""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None:
            return False
        if not isinstance(connection, psycopg.Connection):  # pragma: no cover - psycopg2: Django's own check
            return bool(super().is_usable())
        if connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return bool(super().is_usable())
        try:
            readable, _, _ = select.select([pgconn.socket], [], [], 0)
        except (OSError, ValueError, psycopg.Error):
            return False
        return bool(super().is_usable()) if readable else True
