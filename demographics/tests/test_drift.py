"""The drift watch against the stand-in ATO: a bank account changed behind the practice's back is an urgent
possible-fraud alert on the dashboard with the old and new accounts side by side; one the portal's approved change
explains is not; a run resumes where it stopped and asks no client twice."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from ato_gateway import api
from ato_gateway.wire.documents import cufi
from ato_gateway.wire.documents.common import ClientIdentifier
from clients.models import Client, ClientGroup
from demographics import drift, jobs
from demographics.models import BankAccountsSnapshot, BankChange, BankChangeStatus, DriftAlert, DriftRun
from portal.models import AuditEvent, User
from tests.ato_fixtures import Ato
from tests.gateway_fixtures import pump

from .test_snapshots import ask_and_wait, register_client, taxpayer

pytestmark = pytest.mark.django_db(transaction=True)

_BANKED = (
    "t.entity = 'IND' AND EXISTS (SELECT 1 FROM reg_bank_accounts b WHERE b.taxpayer_id = t.id "
    "AND b.account_id IS NULL AND b.end_date IS NULL)"
)


def _change_at_the_ato(ato: Ato, person: dict[str, Any], number: str) -> None:
    """The ATO's record changed without the portal: as a fraudster with the client's details would do."""
    name = f"{person['given_name'] or ''} {person['family_name']}".strip()[:32]
    account = cufi.FinancialInstitutionAccount(bsb="062000", number=number, name=name)
    changed = ato.result(cufi.SubmitRequest(client=ClientIdentifier.of(tfn=person["tfn"]), bank_account=account))
    assert changed.ok, changed.errors


def _watch(ato: Ato) -> DriftRun:
    run = drift.drift_watch_start(practice=ato.practice)
    jobs.drift_watch(run.pk)

    def settled() -> bool:
        run.refresh_from_db()
        waiting = api.Question.objects.filter(practice=ato.practice, state=api.QuestionState.WAITING)
        return run.finished_at is not None and not waiting.exists()

    pump(settled, timeout=90)
    return run


def test_a_bank_account_changed_behind_the_practices_back_is_an_urgent_alert(
    ato: Ato, agent: User, admin: User, login: Any
) -> None:
    person = taxpayer(ato, _BANKED)
    client = register_client(ato, person)
    User.objects.filter(pk=admin.pk).update(email="alice@example.com")
    User.objects.filter(pk=agent.pk).update(email="bob@example.com")
    ClientGroup.objects.create(practice=ato.practice, name="Other").staff.add(agent)  # not this client's group
    http = login(agent)
    ask_and_wait(http, client, "bank")
    old = BankAccountsSnapshot.objects.get(client=client).facts or []
    _change_at_the_ato(ato, person, "87654321")
    run = _watch(ato)
    assert run.clients_asked == 1 and run.last_client_id == client.pk
    [alert] = DriftAlert.objects.filter(client=client)
    assert alert.urgent and alert.service == "bank"
    assert any("…321" in line for line in alert.after)
    assert {f["summary"] for f in old if f["current"]} <= set(alert.before)
    page = http.get(reverse("portal:dashboard")).content.decode()
    assert 'data-testid="fraud-alert"' in page and "…321" in page
    # Told by email: the admins (the client is in no group of the agent's).
    [told] = mail.outbox
    assert told.to == ["alice@example.com"] and told.subject.startswith("URGENT possible fraud")
    # The next watch finds nothing new: no second alert.
    _watch(ato)
    assert DriftAlert.objects.filter(client=client).count() == 1


def test_a_change_the_portal_made_and_the_ato_accepted_is_no_alert(ato: Ato, agent: User, login: Any) -> None:
    person = taxpayer(ato, _BANKED)
    client = register_client(ato, person)
    ask_and_wait(login(agent), client, "bank")
    _change_at_the_ato(ato, person, "11223344")
    now = timezone.now()
    BankChange.objects.create(  # the portal's own change, approved and accepted (its flow is test_bank's)
        practice=ato.practice,
        client=client,
        status=BankChangeStatus.ACCEPTED,
        bsb="062000",
        number="11223344",
        account_name=person["family_name"],
        proposed_by=agent,
        proposed_at=now,
        expires_at=now,
        approved_at=now,
    )
    _watch(ato)
    assert not DriftAlert.objects.exists()
    assert BankAccountsSnapshot.objects.filter(client=client, answered_at__isnull=False).count() == 2


def test_a_run_resumes_where_it_stopped(ato: Ato, agent: User, settings: Any) -> None:
    people = [taxpayer(ato, _BANKED)]
    clients = [register_client(ato, people[0])]
    clients.append(Client.objects.create(practice=ato.practice, kind="individual", family_name="NoIds"))
    run = drift.drift_watch_start(practice=ato.practice)
    drift.CHUNK, chunk = 1, drift.CHUNK
    try:
        assert drift.drift_watch_step(run.pk)  # the first client
        run.refresh_from_db()
        assert run.last_client_id == clients[0].pk and run.clients_asked == 1
        assert drift.drift_watch_step(run.pk)  # the second, which has no identifier: passed over
        assert not drift.drift_watch_step(run.pk)
    finally:
        drift.CHUNK = chunk
    run.refresh_from_db()
    assert run.finished_at is not None and run.clients_asked == 1
    assert BankAccountsSnapshot.objects.filter(client=clients[0]).count() == 1
    assert not drift.drift_watch_step(run.pk)  # a finished run asks nothing more
    assert BankAccountsSnapshot.objects.count() == 1


def test_an_admin_starts_the_watch_and_follows_its_progress(ato: Ato, admin: User, agent: User, login: Any) -> None:
    person = taxpayer(ato, _BANKED)
    register_client(ato, person)
    assert login(agent).post(reverse("demographics:watch_start")).status_code == 403
    http = login(admin)
    assert "Watch for changes now" in http.get(reverse("portal:dashboard")).content.decode()
    response = http.post(reverse("demographics:watch_start"))
    assert response.status_code == 302
    run = DriftRun.objects.get()
    page = http.get(response["Location"]).content.decode()
    assert "0 of 1 clients asked about" in page and 'data-finished="false"' in page
    pump(lambda: DriftRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(), timeout=60)
    page = http.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "1 of 1 clients asked about" in page and 'data-finished="true"' in page


def test_the_nightly_watch_runs_for_every_practice_able_to_ask(ato: Ato) -> None:
    from portal.apps import CRON_JOBS

    (entry,) = [job for job in CRON_JOBS if job["func"] == "demographics.jobs.drift_watch_nightly"]
    assert entry["queue_name"] == "low"
    person = taxpayer(ato, _BANKED)
    client = register_client(ato, person)
    jobs.drift_watch_nightly()
    run = DriftRun.objects.get(practice=ato.practice)
    pump(lambda: DriftRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(), timeout=60)
    assert BankAccountsSnapshot.objects.filter(client=client).count() == 1


def test_each_member_marks_an_alert_read_for_themselves(
    ato: Ato, agent: User, admin: User, outsider: User, login: Any
) -> None:
    person = taxpayer(ato, _BANKED)
    client = register_client(ato, person)
    ask_and_wait(login(agent), client, "bank")
    _change_at_the_ato(ato, person, "55667788")
    _watch(ato)
    [alert] = DriftAlert.objects.filter(client=client)
    read = reverse("demographics:alert_read", args=[alert.pk])
    assert login(outsider).post(read).status_code == 404  # another practice's alert
    assert not alert.reads.exists()  # type: ignore[attr-defined]
    http = login(admin)
    dashboard = reverse("portal:dashboard")
    assert 'data-testid="fraud-alert"' in http.get(dashboard).content.decode()
    assert http.post(read)["Location"] == dashboard
    assert http.post(read).status_code == 302  # a second click changes nothing
    page = http.get(dashboard).content.decode()
    assert 'data-testid="fraud-alert"' not in page and "…788" not in page
    # The agent was told too, and has not seen it: it stays on theirs.
    page = login(agent).get(dashboard).content.decode()
    assert 'data-testid="fraud-alert"' in page and "…788" in page
    events = AuditEvent.objects.filter(action="demographics.drift_alert_read")
    assert [(e.actor_id, e.object_id) for e in events] == [(admin.pk, str(alert.pk))]


def test_sync_ato_demographics_runs_the_watch_from_the_shell(ato: Ato) -> None:
    person = taxpayer(ato, _BANKED)
    client = register_client(ato, person)
    out = StringIO()
    call_command("sync_ato", "demographics", "--practice", str(ato.practice.pk), "--inline", stdout=out)
    assert BankAccountsSnapshot.objects.filter(client=client, answered_at__isnull=False).count() == 1
    _change_at_the_ato(ato, person, "99887766")
    out = StringIO()
    call_command("sync_ato", "demographics", "--practice", str(ato.practice.pk), "--inline", stdout=out)
    [alert] = DriftAlert.objects.filter(client=client)
    assert alert.urgent and any("…766" in line for line in alert.after)
    assert "1 clients asked about, 1 changes the practice did not make (1 urgent" in out.getvalue()
    assert not api.Question.objects.filter(state=api.QuestionState.WAITING).exists()
    with pytest.raises(CommandError, match="no practice"):
        call_command("sync_ato", "demographics", "--practice", "999999", stdout=out)
