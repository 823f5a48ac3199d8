"""No full TFN at rest in clear from a client import: the uploaded file is sealed, deleted when the import
finishes or after seven days abandoned, and staff restricted to groups see only their own imports. The tests read
the database rows themselves, not the models, which would open what they hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from clients.models import Client, ClientGroup, ImportJob, ImportStatus
from clients.testdata import make_client_rows, rows_to_csv
from portal.apps import CRON_JOBS
from portal.capabilities import Role
from tests.conftest import make_user, run_worker_burst

pytestmark = pytest.mark.django_db(transaction=True)


def upload(http, rows: list[dict[str, str]], name: str = "clients.csv") -> ImportJob:
    content = rows_to_csv(rows).encode()
    response = http.post(reverse("clients:import_upload"), {"file": SimpleUploadedFile(name, content, "text/csv")})
    assert response.status_code == 302, response.content.decode()[-2000:]
    return ImportJob.objects.get(filename=name)


def stored_content(job: ImportJob) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT content FROM clients_importjob WHERE id = %s", [job.pk])
        return cursor.fetchone()[0]


def every_row_as_text() -> str:
    """Every row of every table of the database, each cast to text: what a stolen backup would show."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        texts: list[str] = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT CAST(t AS text) FROM {quote(table)} t")  # noqa: S608 - the database's own names
            texts.extend(row[0] for row in cursor.fetchall())
    return "\n".join(texts)


def test_the_file_is_sealed_at_rest_and_deleted_when_the_import_finishes(practice, agent, login):
    rows = make_client_rows(25, seed=21)
    tfns = [row["tfn"] for row in rows if row["tfn"]]
    assert len(tfns) > 10
    http = login(agent)
    job = upload(http, rows)

    sealed = stored_content(job)
    assert sealed.startswith("gAAAAA")  # a Fernet token (version byte 0x80), not CSV
    assert "kind" not in sealed and rows[0]["family_name"] not in sealed
    everything = every_row_as_text()
    assert [tfn for tfn in tfns if tfn in everything] == []

    http.post(reverse("clients:import_start", args=[job.pk]))
    run_worker_burst()
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created_count == 25
    assert stored_content(job) == ""
    assert Client.objects.filter(practice=practice).count() == 25
    everything = every_row_as_text()
    assert [tfn for tfn in tfns if tfn in everything] == []  # the register keeps them sealed too
    assert "25 clients added" in http.get(reverse("clients:import_detail", args=[job.pk])).content.decode()


def test_an_abandoned_import_loses_its_file_after_seven_days(practice, agent, login):
    http = login(agent)
    now = timezone.now()
    unconfirmed = upload(http, make_client_rows(3, seed=1), "unconfirmed.csv")
    failed = upload(http, make_client_rows(3, seed=2), "failed.csv")
    recent = upload(http, make_client_rows(3, seed=3), "recent.csv")
    failed_lately = upload(http, make_client_rows(3, seed=4), "failed-lately.csv")
    ImportJob.objects.filter(pk=unconfirmed.pk).update(created_at=now - timedelta(days=7, hours=1))
    ImportJob.objects.filter(pk=failed.pk).update(
        status=ImportStatus.FAILED, created_at=now - timedelta(days=9), heartbeat_at=now - timedelta(days=8)
    )
    ImportJob.objects.filter(pk=recent.pk).update(created_at=now - timedelta(days=6, hours=23))
    ImportJob.objects.filter(pk=failed_lately.pk).update(
        status=ImportStatus.FAILED, created_at=now - timedelta(days=9), heartbeat_at=now - timedelta(days=1)
    )

    # The job as RQ's scheduler runs it: looked up through the cron registry.
    (entry,) = [job for job in CRON_JOBS if job["func"] == "clients.jobs.expire_abandoned_imports"]
    assert import_string(entry["func"])() == 2
    assert import_string(entry["func"])() == 0  # a second run finds nothing more to do

    for job in (unconfirmed, failed):
        job.refresh_from_db()
        assert stored_content(job) == "" and job.status == ImportStatus.EXPIRED
        page = http.get(reverse("clients:import_detail", args=[job.pk])).content.decode()
        assert "deleted after 7 days" in page and ">Resume<" not in page and "Import 3 rows</button>" not in page
        http.post(reverse("clients:import_start", args=[job.pk]))  # a stale form posted anyway changes nothing
        job.refresh_from_db()
        assert job.status == ImportStatus.EXPIRED
    assert "Import 3 rows</button>" in http.get(reverse("clients:import_detail", args=[recent.pk])).content.decode()
    for job in (recent, failed_lately):
        assert stored_content(job).startswith("gAAAAA")
        assert ImportJob.objects.get(pk=job.pk).status != ImportStatus.EXPIRED
    assert not Client.objects.exists()


def test_staff_restricted_to_groups_see_only_the_imports_they_uploaded(practice, admin, agent, login):
    restricted = make_user(practice, "rhonda", Role.AGENT)
    restricted.restricted_to_groups = True
    restricted.save(update_fields=["restricted_to_groups"])
    ClientGroup.objects.create(practice=practice, name="Payroll").staff.add(restricted)
    theirs = upload(login(admin), make_client_rows(3, seed=5), "whole-practice.csv")
    own = upload(login(restricted), make_client_rows(3, seed=6), "payroll.csv")

    http = login(restricted)
    listing = http.get(reverse("clients:import_upload")).content.decode()
    assert "payroll.csv" in listing and "whole-practice.csv" not in listing
    dashboard = http.get(reverse("portal:dashboard")).content.decode()
    assert "payroll.csv" in dashboard and "whole-practice.csv" not in dashboard
    assert http.get(reverse("clients:import_detail", args=[own.pk])).status_code == 200
    assert http.get(reverse("clients:import_detail", args=[theirs.pk])).status_code == 404
    assert http.get(reverse("clients:import_progress", args=[theirs.pk])).status_code == 404
    assert http.post(reverse("clients:import_start", args=[theirs.pk])).status_code == 404
    assert ImportJob.objects.get(pk=theirs.pk).status == ImportStatus.UPLOADED

    everyone = login(agent).get(reverse("clients:import_upload")).content.decode()  # unrestricted: all of them
    assert "payroll.csv" in everyone and "whole-practice.csv" in everyone


def test_the_pages_that_list_imports_do_not_read_their_files(practice, agent, login):
    http = login(agent)
    upload(http, make_client_rows(3, seed=7))
    for page in (reverse("clients:import_upload"), reverse("portal:dashboard")):
        with CaptureQueriesContext(connection) as queries:
            assert "clients.csv" in http.get(page).content.decode()
        read = [q["sql"] for q in queries.captured_queries if '"clients_importjob"."content"' in q["sql"]]
        assert read == [], page


def test_the_progress_fragment_polled_every_second_does_not_read_the_file(practice, agent, login):
    http = login(agent)
    rows = make_client_rows(3, seed=8)
    job = upload(http, rows)
    with CaptureQueriesContext(connection) as queries:
        assert http.get(reverse("clients:import_progress", args=[job.pk])).status_code == 200
    assert [q["sql"] for q in queries.captured_queries if '"clients_importjob"."content"' in q["sql"]] == []
    name = rows[0]["family_name"] or rows[0]["organisation_name"]
    assert name in http.get(reverse("clients:import_detail", args=[job.pk])).content.decode()  # the preview reads it
