"""The application runs as a database role that owns no table and may only read and add to the audit trail: an
UPDATE, a DELETE or a change to the append-only trigger fails for it with a permission error (not merely the
trigger's), while the application's own writes still work (docs/database-roles.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from portal.audit import audit_record, audit_verify_chains
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("Database roles are PostgreSQL's: run the suite on PostgreSQL (make test does).")


@pytest.fixture
def app_role(db: None) -> Iterator[str]:
    """A role created inside the test's transaction, so it is gone again when the test's changes roll back."""
    name = f"portal_app_test_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {name} NOLOGIN")
    call_command("grant_app_role", name)
    yield name


def as_role(role: str, sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {role}")
        cursor.execute(sql)
        cursor.execute("RESET ROLE")


def refused(role: str, sql: str) -> str:
    with pytest.raises(DatabaseError) as raised:
        as_role(role, sql)
    return str(raised.value)


def test_the_application_s_role_cannot_rewrite_the_audit_trail(app_role, practice, admin):
    event = audit_record("test.recorded", actor=admin, practice=practice)
    table = AuditEvent._meta.db_table
    where = f"WHERE id = {int(event.pk)}"
    assert "permission denied" in refused(app_role, f"UPDATE {table} SET object_repr = 'x' {where}")  # noqa: S608
    assert "permission denied" in refused(app_role, f"DELETE FROM {table} {where}")  # noqa: S608
    assert "permission denied" in refused(app_role, f"TRUNCATE {table}")
    assert "must be owner" in refused(app_role, f"ALTER TABLE {table} DISABLE TRIGGER portal_auditevent_append_only")
    assert "must be owner" in refused(app_role, f"DROP TRIGGER portal_auditevent_append_only ON {table}")
    assert "permission denied" in refused(app_role, "SET session_replication_role = replica")
    assert AuditEvent.objects.get(pk=event.pk).object_repr == event.object_repr


def test_the_application_s_role_still_appends_and_chains(app_role, practice, admin):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {app_role}")
        audit_record("test.as_app_role", actor=admin, practice=practice)
        audit_record("test.as_app_role", actor=admin, practice=practice)
        admin.first_name = "Alicia"
        admin.save(update_fields=["first_name"])
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == app_role
        cursor.execute("RESET ROLE")
    assert AuditEvent.objects.filter(action="test.as_app_role").count() == 2
    assert list(audit_verify_chains()) == []


def test_a_superuser_or_the_owner_is_refused_as_the_application_s_role(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        me = cursor.fetchone()[0]
    with pytest.raises(CommandError, match=r"superuser|owns the audit table"):
        call_command("grant_app_role", me)
    with pytest.raises(CommandError, match="There is no database role"):
        call_command("grant_app_role", "no_such_role_here")
