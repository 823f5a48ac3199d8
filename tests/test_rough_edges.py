"""The rough edges a new practice met in its first hour, each pinned by a test that failed before its fix."""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from ato_gateway import services as gateway_services
from ato_gateway.models import AttemptOutcome, MessageAttempt, OutboxMessage
from clients.models import Client
from portal.audit import audit_record
from portal.audit_words import EVENT_WORDS
from portal.models import Practice, User
from relationships import services as relationships

pytestmark = pytest.mark.django_db
# The access review's browser test drives Playwright's sync API, whose event loop runs in this thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _ping(practice: Practice) -> OutboxMessage:
    document = '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>hi</Text></PingRequest>'
    with transaction.atomic():
        return gateway_services.outbox_enqueue(
            practice=practice, service="PING", action="Ping.001.00", documents=[("PingRequest", document)]
        )


def test_message_page_title_is_plain_text(admin: User, login) -> None:
    message = _ping(admin.tenant)
    html = login(admin).get(reverse("ato_gateway:message", args=[message.pk])).content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    assert title is not None
    assert "<" not in title.group(1)


def _printed_by_the_console(run: Callable[[], object]) -> str:
    """What the application's own console handlers print while `run` runs (pytest's capture handlers left out)."""
    printed = io.StringIO()
    streams = [
        h
        for h in logging.getLogger().handlers + logging.getLogger("django.server").handlers
        if isinstance(h, logging.StreamHandler) and not type(h).__module__.startswith("_pytest")
    ]
    old = [h.setStream(printed) for h in streams]
    try:
        run()
    finally:
        for handler, stream in zip(streams, old, strict=True):
            if stream is not None:
                handler.setStream(stream)
    return printed.getvalue()


def test_a_403_is_one_log_line_without_a_traceback(reader: User, login) -> None:
    http = login(reader)
    printed = _printed_by_the_console(lambda: http.get(reverse("portal:staff_list")))
    lines = [line for line in printed.splitlines() if line.strip()]
    assert len(lines) == 1 and "Forbidden" in lines[0] and "/staff/" in lines[0], printed
    assert "Traceback" not in printed


def test_the_console_names_the_client_a_link_is_for(agent: User, admin: User, login) -> None:
    relationships.link_search(
        user=agent, identifier_kind="TFN", identifier="876543210", family_name="Green", given_name="Liam"
    )
    client = Client.objects.create(practice=agent.tenant, kind="company", organisation_name="Acme Pty Ltd")
    relationships.link_search(user=agent, identifier_kind="ABN", identifier="53004085616", client=client)
    html = login(admin).get(reverse("ato_gateway:console")).content.decode()
    assert "GREEN, Liam *** *** 210" in html
    assert "Acme Pty Ltd 53004085616" in html


def test_last_success_has_one_full_stop(admin: User, login) -> None:
    message = _ping(admin.tenant)
    # 3 a.m.: Django's default date format spells the hour "a.m.", and the sentence adds its own full stop.
    at = timezone.make_aware(datetime(2026, 12, 2, 3, 5), timezone.get_current_timezone())
    MessageAttempt.objects.create(message=message, number=1, started_at=at, outcome=AttemptOutcome.OK)
    html = login(admin).get(reverse("ato_gateway:console")).content.decode()
    assert "Last success: 2 Dec 2026 03:05:00." in html
    assert ".." not in re.sub(r"<[^>]+>", "", html).replace("…", "")


def test_the_audit_search_shows_events_in_words(admin: User, login) -> None:
    audit_record("staff.deactivated", actor=admin, target_repr="Bob Tester")
    http = login(admin)
    html = http.get(reverse("portal:audit_search")).content.decode()
    assert "Deactivated a staff member" in html
    # Found by its words as well as by its code.
    found = http.get(reverse("portal:audit_search"), {"q": "deactivated a staff"}).content.decode()
    assert "Bob Tester" in found


def test_every_audit_code_the_portal_records_has_words() -> None:
    from pathlib import Path

    from django.conf import settings

    codes: set[str] = set()
    # Every app of this repository that is installed, so a new app's events are held to the rule too.
    apps = [a for a in settings.INSTALLED_APPS if (Path(settings.BASE_DIR) / a).is_dir() and a != "ato_sandbox"]
    assert "superannuation" in apps
    for app in apps:
        for source in (Path(settings.BASE_DIR) / app).rglob("*.py"):
            if "tests" in source.parts or "migrations" in source.parts:
                continue
            text = source.read_text()
            codes |= set(re.findall(r'audit_record(?:_system_many)?\(\s*"([a-z_]+\.[a-z_]+|logout)"', text))
    missing = sorted(code for code in codes if code not in EVENT_WORDS)
    assert codes and not missing


@pytest.mark.parametrize("tab", ["relationships", "details", "communications"])
def test_a_tab_without_its_app_says_what_is_true(tab: str, agent: User, login, monkeypatch: pytest.MonkeyPatch) -> None:
    from portal import apps

    monkeypatch.delitem(apps.CLIENT_TABS, tab)
    client = Client.objects.create(practice=agent.tenant, kind="company", organisation_name="Acme Pty Ltd")
    html = login(agent).get(reverse("clients:detail", args=[client.pk]), {"tab": tab}).content.decode()
    assert "switched on" not in html
    assert "does not include" in html


def test_the_favicon_is_linked_and_served(agent: User, login) -> None:
    http = login(agent)
    html = http.get(reverse("portal:dashboard")).content.decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', html)
    assert icon is not None
    response = HttpClient().get(icon.group(1))
    assert response.status_code == 200
    assert b"<svg" in b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_the_next_page_link_carries_no_name(agent: User, login, settings) -> None:
    import base64
    from urllib.parse import unquote

    from tests.conftest import add_clients

    settings.CLIENT_LIST_PAGE_SIZE = 5
    add_clients(agent.tenant, 12)
    http = login(agent)
    first = http.get(reverse("clients:list"))
    last = first.context["clients"][-1]
    link = re.search(r'<a href="\?([^"]*after=([^"&]*))" rel="next">', first.content.decode())
    assert link is not None
    cursor = unquote(link.group(2))
    family = last.sort_name.split(",")[0]
    assert family not in cursor.lower()
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("latin-1").lower()
    assert family not in decoded
    # Still keyset paging: the second page starts after the first page's last client.
    second = http.get(reverse("clients:list"), {"after": cursor}).context["clients"]
    assert second and second[0].sort_name >= last.sort_name and second[0].pk != last.pk


@pytest.mark.django_db(transaction=True)  # the import job is enqueued when its transaction commits
def test_an_import_counts_rows_not_errors(agent: User, login) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from clients.models import ImportJob, ImportStatus
    from clients.testdata import make_client_rows, rows_to_csv
    from tests.conftest import run_worker_burst

    rows = make_client_rows(4, seed=3)
    # One bad row with three problems: an unknown kind, a TFN that fails its check, an ABN that is not one.
    rows[1].update(kind="spaceship", tfn="123456789", abn="12345678901", organisation_name="Orbit Holdings")
    http = login(agent)
    upload = SimpleUploadedFile("clients.csv", rows_to_csv(rows).encode(), "text/csv")
    http.post(reverse("clients:import_upload"), {"file": upload})
    job = ImportJob.objects.get()
    preview = http.get(reverse("clients:import_detail", args=[job.pk])).content.decode()
    assert "Import 3 rows" in preview and "Import 4 rows" not in preview
    bad = re.search(r"<tr><td>3</td>\s*<td>([^<]*)</td>", preview)
    assert bad is not None and bad.group(1) == "Orbit Holdings"

    http.post(reverse("clients:import_start", args=[job.pk]))
    run_worker_burst()
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.row_errors.count() >= 3
    done = http.get(reverse("clients:import_detail", args=[job.pk])).content.decode()
    assert "3 clients added, 1 row not imported" in done


def test_deactivating_asks_first(admin: User, agent: User, login) -> None:
    http = login(admin)
    detail = http.get(reverse("portal:staff_detail", args=[agent.pk])).content.decode()
    # The staff page's button only opens the question: a GET form, no CSRF token, nothing done.
    form = re.search(r'<form method="(\w+)" action="([^"]+)"><button class="danger" type="submit">Deactivate', detail)
    assert form is not None and form.group(1) == "get"
    asked = http.get(form.group(2))
    assert asked.status_code == 200 and "Deactivate: Bob Tester?" in asked.content.decode()
    agent.refresh_from_db()
    assert agent.is_active
    http.post(form.group(2))
    agent.refresh_from_db()
    assert not agent.is_active


def test_resetting_the_second_factor_asks_first(admin: User, agent: User, login) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    http = login(admin)
    detail = http.get(reverse("portal:staff_detail", args=[agent.pk])).content.decode()
    form = re.search(r'<form method="(\w+)" action="([^"]+)"><button type="submit">Reset two-step', detail)
    assert form is not None and form.group(1) == "get"
    asked = http.get(form.group(2)).content.decode()
    assert "Reset two-step sign-in: Bob Tester?" in asked and 'method="post"' in asked
    assert TOTPDevice.objects.filter(user=agent).exists()
    http.post(form.group(2))
    assert not TOTPDevice.objects.filter(user=agent).exists()


def _invite(http: HttpClient) -> User:
    http.post(
        reverse("portal:staff_add"),
        {"username": "dana", "first_name": "Dana", "last_name": "Fisher", "email": "dana@example.com", "role": "agent"},
    )
    return User.objects.get(username="dana")


def _link_in(body: str) -> str:
    found = re.search(r"https?://\S+/invite/[^/\s]+/", body)
    assert found is not None, body
    return found.group(0)


def test_an_invitation_is_emailed_and_can_be_sent_again(admin: User, login, mailoutbox) -> None:
    http = login(admin)
    invitee = _invite(http)
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["dana@example.com"]
    first = _link_in(mailoutbox[0].body)
    assert HttpClient().get(first).status_code == 200

    detail = http.get(reverse("portal:staff_detail", args=[invitee.pk])).content.decode()
    assert 'data-testid="invite-pending"' in detail
    page = http.post(reverse("portal:staff_invite_resend", args=[invitee.pk])).content.decode()
    assert len(mailoutbox) == 2
    second = _link_in(mailoutbox[1].body)
    assert second != first and second in page
    assert HttpClient().get(first).status_code == 404  # the earlier link no longer works
    assert HttpClient().get(second).status_code == 200


def test_a_withdrawn_invitation_no_longer_works(admin: User, login, mailoutbox) -> None:
    http = login(admin)
    invitee = _invite(http)
    link = _link_in(mailoutbox[0].body)
    url = reverse("portal:staff_invite_withdraw", args=[invitee.pk])
    assert "Withdraw the invitation: Dana Fisher?" in http.get(url).content.decode()
    assert HttpClient().get(link).status_code == 200  # asking changed nothing
    http.post(url)
    assert HttpClient().get(link).status_code == 404
    refused = HttpClient().post(link, {"password1": "a-new-long-password-1", "password2": "a-new-long-password-1"})
    assert refused.status_code == 404
    invitee.refresh_from_db()
    assert not invitee.is_active and not invitee.has_usable_password()


def _attempts(message: OutboxMessage, outcomes: Sequence[str], *, start: int = 1, ago: int = 0) -> None:
    """Attempts one second apart, the last `ago` seconds ago."""
    now = timezone.now()
    MessageAttempt.objects.bulk_create(
        MessageAttempt(
            message=message,
            number=start + i,
            started_at=now - timedelta(seconds=ago + len(outcomes) - i),
            outcome=outcome,
            error_code="" if outcome == AttemptOutcome.OK else "HTTP:503",
        )
        for i, outcome in enumerate(outcomes)
    )


def test_the_outage_banner_rises_on_the_latest_failures_of_the_practice_alone(
    admin: User, outsider: User, login
) -> None:
    ours, theirs = _ping(admin.tenant), _ping(outsider.tenant)
    # A busy morning of successes, then the ATO stops answering: three failures in a row, just now.
    _attempts(ours, [AttemptOutcome.OK] * 20, ago=60)
    _attempts(theirs, [AttemptOutcome.OK] * 20, ago=60)
    banner = "The ATO is not answering reliably"
    assert banner not in login(admin).get(reverse("portal:dashboard")).content.decode()
    _attempts(ours, [AttemptOutcome.TRANSIENT] * 3, start=21)
    from django.core.cache import cache

    cache.clear()  # the banner's figure is cached for 15 s
    health = gateway_services.gateway_health(practice=admin.tenant)
    assert health.error_rate < 0.5 and health.failing
    assert banner in login(admin).get(reverse("portal:dashboard")).content.decode()
    assert banner not in login(outsider).get(reverse("portal:dashboard")).content.decode()


def test_two_failures_in_a_row_do_not_raise_it(admin: User, login) -> None:
    ours = _ping(admin.tenant)
    _attempts(ours, [AttemptOutcome.OK] * 20 + [AttemptOutcome.TRANSIENT] * 2)
    assert not gateway_services.gateway_health(practice=admin.tenant).failing


def test_a_retry_is_never_scheduled_before_its_row_is_due(admin: User) -> None:
    import django_rq
    from rq.registry import ScheduledJobRegistry

    from ato_gateway.services import sending

    message = _ping(admin.tenant)
    due = timezone.now() + timedelta(seconds=1.3)
    sending.outbox_dispatch([message.pk], delay=due - timezone.now())
    # RQ's scheduler takes a job once the clock passes its score (whole seconds): the score is when it may run.
    registry = ScheduledJobRegistry(queue=django_rq.get_queue("high"))
    scored = django_rq.get_connection("high").zrange(registry.key, 0, -1, withscores=True)
    scores = [float(entry[1]) for entry in scored]
    assert scores and all(score >= due.timestamp() for score in scores), (scores, due.timestamp())


def test_the_project_redis_db_and_cache_prefix_are_settings() -> None:
    """Without REDIS_URL the portal takes the project's Redis db (REDIS_DB), not db 0 of whatever Redis listens, and
    its cache keys carry the project's prefix; REDIS_URL and CACHE_KEY_PREFIX (what the tests set) still win."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    show = "from django.conf import settings as s; print(s.REDIS_URL, s.CACHES['default']['KEY_PREFIX'])"
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CACHE_KEY_PREFIX", "REDIS_DB")}

    def shown(**env: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", show],
            cwd=settings.BASE_DIR,
            env={**base, "DJANGO_DEBUG": "1", **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    assert shown(REDIS_DB="4") == "redis://127.0.0.1:6379/4 practice-portal"
    assert shown(REDIS_DB="4", REDIS_URL="redis://x:1/9", CACHE_KEY_PREFIX="t") == "redis://x:1/9 t"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_access_review_fits_a_1280_px_screen(page, base_url: str, firm: Practice) -> None:
    from portal.capabilities import Role
    from tests.browser_support import sign_in
    from tests.conftest import make_user

    make_user(firm, "alice", Role.PRACTICE_ADMIN)
    make_user(firm, "bob", Role.AGENT)
    make_user(firm, "rita", Role.READ_ONLY)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, base_url, "alice")
    page.goto(f"{base_url}{reverse('portal:access_review')}")
    region = page.get_by_role("region", name="Access by staff member")
    # Nothing of the table is hidden behind the region's scrollbar, and its last column ends on the screen.
    assert region.evaluate("el => el.scrollWidth - el.clientWidth") <= 0
    assert page.locator("table.matrix").evaluate("t => t.getBoundingClientRect().right") <= 1280
    last_heading = page.locator("table.matrix th.cap").last
    assert last_heading.evaluate("th => th.getBoundingClientRect().right") <= 1280


@pytest.mark.django_db(transaction=True)  # on_db_commit: pushed at once only outside a transaction
def test_the_queues_have_the_projects_names(settings) -> None:
    """Another app's worker, or a second checkout's, listening on "high" never sees the portal's jobs."""
    import django_rq

    from portal.jobs import verify_audit_chains

    queue = django_rq.get_queue("high")
    assert queue.name == settings.RQ_QUEUE_PREFIX + "high" and settings.RQ_QUEUE_PREFIX
    queue.enqueue(verify_audit_chains)
    connection = django_rq.get_connection("high")
    assert connection.llen("rq:queue:high") == 0 and connection.llen(queue.key) == 1


@pytest.mark.django_db(transaction=True)  # on_db_commit: pushed at once only outside a transaction
def test_cron_jobs_land_in_the_queues_the_workers_listen_on() -> None:
    import importlib

    import django_rq
    from rq.cron import CronJob

    from portal.jobs import verify_audit_chains

    importlib.import_module("portal.cron")  # what `manage.py rqcron portal.cron` loads
    connection = django_rq.get_connection("low")
    CronJob(queue_name="low", func=verify_audit_chains, interval=60).enqueue(connection)
    assert django_rq.get_queue("low").count == 1
    assert connection.llen("rq:queue:low") == 0


@pytest.mark.django_db(transaction=True)
def test_a_retry_is_sent_by_rqs_scheduler_alone(live_server, rq_worker, credentialed: Practice, gateway) -> None:
    """A real `rqworker --with-scheduler` and no sweeper: a retry whose job fired before its row was due was never
    sent at all here (in production the sweeper took it 30 s later)."""
    import time

    from ato_gateway.models import MessageStatus

    gateway.faults(next=["http_503", "ok"])
    slow_backoff = {"GATEWAY_BACKOFF_BASE_SECONDS": "2", "GATEWAY_BACKOFF_CAP_SECONDS": "2"}
    rq_worker(env_extra={**gateway.env(), **slow_backoff}, scheduler=True)
    message = _ping(credentialed)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not OutboxMessage.objects.get(pk=message.pk).is_terminal:
        time.sleep(0.2)
    message.refresh_from_db()
    assert message.status == MessageStatus.DONE
    assert list(message.attempt_log.values_list("outcome", flat=True)) == ["transient", "ok"]


def test_the_tab_bar_keeps_the_apps_order_whenever_a_tab_was_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tab registered again (as a test's monkeypatch does on undo) must not move to the end of the bar."""
    from clients.views import client_tabs
    from portal import apps

    before = client_tabs()
    assert before[:2] == ("overview", "relationships") and before.index("details") < before.index("communications")
    url = apps.CLIENT_TABS["details"]
    monkeypatch.delitem(apps.CLIENT_TABS, "details")
    monkeypatch.setitem(apps.CLIENT_TABS, "details", url)  # now last in the dict
    assert client_tabs() == before
