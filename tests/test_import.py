"""CSV import: whole-file problems refused with nothing stored; row problems listed without stopping good rows;
the work runs on a real RQ worker against the real test Redis, and resumes without duplicates after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from clients.csv_io import iter_rows
from clients.models import Client, ClientGroup, ImportJob, ImportRowError, ImportStatus
from clients.testdata import make_client_rows, rows_to_csv
from tests.conftest import run_worker_burst

pytestmark = pytest.mark.django_db(transaction=True)


def upload(http, content: bytes, name: str = "clients.csv"):
    return http.post(reverse("clients:import_upload"), {"file": SimpleUploadedFile(name, content, "text/csv")})


def bad_rows_csv(count: int = 12) -> tuple[bytes, list[dict[str, str]]]:
    rows = make_client_rows(count, seed=11)
    rows[3]["tfn"] = rows[3]["tfn"][:-1] + str((int(rows[3]["tfn"][-1]) + 1) % 10)  # breaks the check digit
    rows[6]["abn"] = "12345678901"
    rows[8]["kind"] = "spaceship"
    rows[9] = dict(rows[2])  # a duplicate of row 3 (spreadsheet row 4)
    rows[10]["group"] = "Payroll"
    return rows_to_csv(rows).encode(), rows


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a CSV text file"),
        (b"name,tfn\nSmith,123456782\n", "must name the columns"),
        (b"kind,family_name\n", "no client rows"),
        (b'kind,family_name\nindividual,"unterminated\n', "not valid CSV"),
    ],
)
def test_whole_file_problems_are_refused_and_nothing_is_stored(agent, login, content, message):
    response = upload(login(agent), content)
    assert response.status_code == 200
    assert message in response.context["form"].errors["file"][0]
    assert not ImportJob.objects.exists() and not Client.objects.exists()


@override_settings(CLIENT_IMPORT_MAX_BYTES=2000)
def test_oversized_file_is_refused(agent, login):
    content = rows_to_csv(make_client_rows(50)).encode()
    response = upload(login(agent), content)
    assert "larger than" in response.context["form"].errors["file"][0]
    assert not ImportJob.objects.exists()


@override_settings(CLIENT_IMPORT_MAX_ROWS=10)
def test_too_many_rows_is_refused(agent, login):
    response = upload(login(agent), rows_to_csv(make_client_rows(11)).encode())
    assert "more than 10 rows" in response.context["form"].errors["file"][0]


def test_preview_then_import_on_a_real_worker(practice, agent, login):
    http = login(agent)
    content, rows = bad_rows_csv()
    response = upload(http, content)
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("clients:import_detail", args=[job.pk])
    preview = http.get(response["Location"])
    assert job.total_rows == 12 and len(preview.context["preview"]) == 10
    page = preview.content.decode()
    assert "tfn: This TFN fails the TFN check" in page
    for row in rows:
        if row["tfn"]:
            assert row["tfn"] not in page  # the preview masks TFNs
    assert not Client.objects.exists()  # nothing is written before the user confirms

    http.post(reverse("clients:import_start", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED
    run_worker_burst()
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.percent == 100
    assert (job.created_count, job.error_count) == (8, 4)
    errors = {(e.row_number, e.field) for e in ImportRowError.objects.filter(job=job)}
    assert errors == {(5, "tfn"), (8, "abn"), (10, "kind"), (11, "tfn")}
    assert Client.objects.filter(practice=practice).count() == 8
    assert ClientGroup.objects.get(name="Payroll").clients.count() == 1
    done_page = http.get(reverse("clients:import_detail", args=[job.pk])).content.decode()
    assert "8 clients added, 4 rows not imported" in done_page


def test_progress_fragment_polls_while_running_and_stops_when_done(practice, agent, login):
    http = login(agent)
    upload(http, rows_to_csv(make_client_rows(5)).encode())
    job = ImportJob.objects.get()
    http.post(reverse("clients:import_start", args=[job.pk]))
    running = http.get(reverse("clients:import_progress", args=[job.pk]), headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in running.content.decode()
    run_worker_burst()
    done = http.get(reverse("clients:import_progress", args=[job.pk]) + "?was_active=1", headers={"HX-Request": "true"})
    assert "every 1s" not in done.content.decode() and done["HX-Refresh"] == "true"


def test_a_killed_worker_loses_nothing_and_duplicates_nothing(practice, agent, login):
    """SIGKILL a real worker and its work horse mid-import (as a crashed machine would); the page then shows the
    import as stalled, and Resume continues from the last committed chunk."""
    http = login(agent)
    upload(http, rows_to_csv(make_client_rows(6000, seed=5)).encode())
    job = ImportJob.objects.get()
    http.post(reverse("clients:import_start", args=[job.pk]))
    env = {**os.environ, "DATABASE_URL": f"postgres:///{settings.DATABASES['default']['NAME']}"}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.next_row >= 1000:
            break
        time.sleep(0.02)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and the horse it forked
    worker.wait()
    time.sleep(0.3)
    job.refresh_from_db()
    assert 1000 <= job.next_row < 6000, "the kill should land mid-import"
    assert Client.objects.count() == job.created_count  # every committed row is counted, nothing half-written
    assert job.status == ImportStatus.RUNNING and not job.is_stalled

    # Waiting out the two-minute stall window would slow the suite; age the heartbeat instead.
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=3))
    page = http.get(reverse("clients:import_detail", args=[job.pk])).content.decode()
    assert "no progress for over two minutes" in page and ">Resume<" in page
    http.post(reverse("clients:import_start", args=[job.pk]))
    run_worker_burst()
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.created_count, job.error_count) == (6000, 0)
    assert Client.objects.count() == 6000


def test_a_superseded_run_writes_nothing(practice, agent, login):
    """A run thought dead but only slow must not write once a resumed run owns the job."""
    from clients import services

    http = login(agent)
    upload(http, rows_to_csv(make_client_rows(30, seed=9)).encode())
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, run_token="old-run")
    job.refresh_from_db()
    ImportJob.objects.filter(pk=job.pk).update(run_token="new-run")  # a resume took the job over
    with pytest.raises(services.ImportSuperseded):
        services._import_chunk(job, "old-run", list(iter_rows(services.import_file_text(job))), set(), set(), {})
    assert not Client.objects.exists() and ImportJob.objects.get().next_row == 0


def test_the_sweeper_resumes_an_import_whose_job_was_lost(practice, agent, login):
    """A queued job that never ran (Redis lost it) is found by the scheduled sweeper and finished."""
    from clients.jobs import sweep_stalled_imports

    http = login(agent)
    upload(http, rows_to_csv(make_client_rows(20, seed=3)).encode())
    job = ImportJob.objects.get()
    http.post(reverse("clients:import_start", args=[job.pk]))
    import django_rq

    django_rq.get_connection("default").flushdb()  # the queued RQ job is lost
    assert sweep_stalled_imports() == 0  # not yet stalled: nothing to do
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=3))
    assert sweep_stalled_imports() == 1
    run_worker_burst()
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and Client.objects.count() == 20
