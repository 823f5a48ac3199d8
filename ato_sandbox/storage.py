"""The stand-in ATO's storage: one SQLite file in its data directory, shared by every worker process and thread.

WAL mode lets readers run beside the one writer; every decision that must be made once across all processes
(has this MessageId been applied? which fault comes next? which queued response goes to this pull?) runs inside a
``BEGIN IMMEDIATE`` transaction, which takes the database's write lock at the start, so two workers can never
both see "not applied yet". Connections are per thread and per process (never shared across a fork).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import register

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL               -- (a data directory from before effects may also have an unused applied)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS next_outcomes (seq INTEGER PRIMARY KEY AUTOINCREMENT, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queued_responses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mpc TEXT NOT NULL,
    ref_message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    service TEXT NOT NULL,
    action TEXT NOT NULL,
    to_abn TEXT NOT NULL,
    document_names TEXT NOT NULL,
    delivered_by TEXT,
    payloads TEXT,                         -- JSON [[document name, text]], the response of an action applied at
                                           -- push time (NULL: a generic acknowledgement of what was received)
    response_content_type TEXT,            -- the signed response as first pulled, handed out again, byte for
    response_body BLOB                     -- byte, to every selective pull for it (NULL: not pulled yet)
);
CREATE INDEX IF NOT EXISTS queued_responses_mpc ON queued_responses (mpc, delivered_by, seq);
CREATE INDEX IF NOT EXISTS queued_responses_ref ON queued_responses (ref_message_id);
-- One row per application of a message's business action, written in the transaction that applies it: what
-- "applied exactly once" is measured by (GET /_control/stats). A second application shows as a second row.
CREATE TABLE IF NOT EXISTS effects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    applied_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS effects_message ON effects (message_id);
CREATE TABLE IF NOT EXISTS trusted (fingerprint TEXT PRIMARY KEY, pem BLOB NOT NULL);
"""


def _add_column(db: sqlite3.Connection, table: str, column: str, declaration: str) -> None:
    if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


class Storage:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def initialise(self) -> None:
        connection = self.connection()
        connection.execute("PRAGMA journal_mode=WAL")
        # A register being generated holds the write lock for a minute or more at 100,000 taxpayers; a worker
        # starting meanwhile waits for it rather than failing to boot (which stops the whole stand-in ATO).
        connection.execute("PRAGMA busy_timeout=600000")
        try:
            self._create_schema()
        finally:
            connection.execute("PRAGMA busy_timeout=30000")

    def _create_schema(self) -> None:
        with self.write() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            register.create_schema(db)
            # A data directory from before a column existed gets it (CREATE TABLE IF NOT EXISTS leaves it alone).
            _add_column(db, "queued_responses", "payloads", "TEXT")
            _add_column(db, "queued_responses", "response_content_type", "TEXT")
            _add_column(db, "queued_responses", "response_body", "BLOB")

    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below), never implicit.
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            self._local.pid = os.getpid()
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A transaction holding the write lock from its first statement."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    # --- small helpers used inside or outside a transaction ---

    def increment(self, name: str, by: int = 1, db: sqlite3.Connection | None = None) -> int:
        if db is None:
            with self.write() as db_:
                return self.increment(name, by, db_)
        row = db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value RETURNING value",
            (name, by),
        ).fetchone()
        return int(row[0])

    def increment_many(self, names: list[str], db: sqlite3.Connection | None = None) -> None:
        if db is None:
            with self.write() as db_:
                self.increment_many(names, db_)
            return
        for name in names:
            self.increment(name, 1, db)

    def counter(self, name: str) -> int:
        row = self.connection().execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def setting(self, name: str, default: Any = None, db: sqlite3.Connection | None = None) -> Any:
        row = (db or self.connection()).execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def settings(self, names: tuple[str, ...], db: sqlite3.Connection) -> dict[str, Any]:
        """Several settings in one query; names that are not set are absent."""
        marks = ", ".join("?" * len(names))
        rows = db.execute(f"SELECT name, value FROM settings WHERE name IN ({marks})", names)  # noqa: S608
        return {str(name): json.loads(value) for name, value in rows}

    def set_setting(self, name: str, value: Any, db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, json.dumps(value)),
        )

    def trusted_pems(self) -> list[bytes]:
        return [bytes(row[0]) for row in self.connection().execute("SELECT pem FROM trusted ORDER BY fingerprint")]
