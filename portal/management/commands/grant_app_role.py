"""Give the application's own database role what it needs, and nothing that would let it rewrite history.

Run by the migrations' owner after every `migrate` (docker-compose.yml's migrate service; docs/database-roles.md):
the application's role may read and write every table, except that of the append-only ones it may only read and
add to. It owns no table, so it cannot alter, disable or drop the triggers that guard them either (in PostgreSQL
only a table's owner or a superuser can)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from portal.models import AuditEvent

# Tables the application only appends to: it keeps SELECT and INSERT on them, nothing else.
APPEND_ONLY = [AuditEvent]


class Command(BaseCommand):
    help = "Grant the application's database role its privileges (after migrate, run as the tables' owner)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the database role the web app and the workers connect as")

    def handle(self, *args: Any, role: str, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Database roles are PostgreSQL's: there is nothing to grant on this database.")
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
            found = cursor.fetchone()
            if found is None:
                raise CommandError(f"There is no database role {role!r}: create it first (docs/database-roles.md).")
            if found[0]:
                raise CommandError(f"{role!r} is a superuser: the application must run as an ordinary role.")
            cursor.execute(
                "SELECT tableowner = %s FROM pg_tables WHERE tablename = %s", [role, AuditEvent._meta.db_table]
            )
            owns = cursor.fetchone()
            if owns is not None and owns[0]:
                raise CommandError(f"{role!r} owns the audit table: migrate as another role, the owner.")
            cursor.execute(f"GRANT USAGE ON SCHEMA public TO {quote(role)}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quote(role)}")
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quote(role)}")
            for model in APPEND_ONLY:
                table = quote(model._meta.db_table)
                cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {table} FROM {quote(role)}")
        self.stdout.write(
            f"{role} may read and write the application's tables; of "
            f"{', '.join(m._meta.db_table for m in APPEND_ONLY)} only read and add."
        )
