"""Reconciliation against the real stand-in ATO: the ATO's list of the practice's links, paged and streamed through
the real gateway and worker, compared with a register that mirrors the ATO's except for one client of each kind of
difference."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse

from ato_gateway.answers import outcome_of, reply_of
from ato_gateway.api import Question, Reply
from ato_gateway.services import outbox_send_one
from clients.models import Client, ClientGroup, ClientKind
from portal.apps import CRON_JOBS
from portal.models import AuditEvent, User
from relationships.models import ChangeKind, Link, LinkChange
from relationships.reconcile import services as reconcile
from relationships.reconcile.models import Drift, DriftKind, ReconcileRun, RelationshipAlert, RunStatus
from tests.ato_fixtures import AGENT_TAN, Ato
from tests.conftest import make_practice
from tests.gateway_fixtures import pump

pytestmark = pytest.mark.django_db(transaction=True)
TODAY = date(2026, 11, 30)  # the fixture's business date at the stand-in ATO
ENTITY_KINDS = {"IND": ClientKind.INDIVIDUAL, "COY": ClientKind.COMPANY, "TRT": ClientKind.TRUST}


# --- a register that mirrors the ATO's --------------------------------------------------------------------------


def ato_links(ato: Ato) -> list[dict[str, Any]]:
    return ato.query(
        "SELECT t.id AS taxpayer_id, t.tfn, t.abn, t.wpn, t.entity, t.family_name, t.given_name, "
        "t.organisation_name, l.level, l.role, a.kind AS account, a.branch FROM reg_links l "
        "JOIN reg_agents g ON g.id = l.agent_id JOIN reg_taxpayers t ON t.id = l.taxpayer_id "
        "LEFT JOIN reg_accounts a ON a.id = l.account_id WHERE g.tan = ? AND l.end_date IS NULL "
        "ORDER BY t.id, l.id",
        AGENT_TAN,
    )


def local_client(ato: Ato, row: dict[str, Any]) -> Client:
    client = Client(
        practice=ato.practice,
        kind=ENTITY_KINDS.get(row["entity"], ClientKind.OTHER),
        family_name=row["family_name"] or "",
        given_names=row["given_name"] or "",
        organisation_name=row["organisation_name"] or "",
        abn=row["abn"] or "",
        wpn=row["wpn"] or "",
    )
    client.set_tfn(row["tfn"])
    client.save()
    return client


def local_link(client: Client, level: str, account: str = "", branch: str = "", role: str = "") -> Link:
    return Link.objects.create(
        practice=client.practice,
        client=client,
        level=level,
        account_kind=account,
        branch=branch,
        role=role,
        started_on=date(2020, 1, 1),
    )


@dataclass
class World:
    """The register mirrored, then one client of each difference."""

    clients: dict[int, Client]  # by the ATO's taxpayer id
    lost: Client  # the ATO ends its link behind the portal's back
    found: Client  # the portal forgot its link
    level: Client  # the portal holds its income tax account; the ATO holds the whole client
    unlisted: Client  # the portal believes in a link the ATO never had
    missing_tfn: str  # a client of the ATO's the register does not hold


def mirrored(ato: Ato, agent: User) -> World:
    rows = ato_links(ato)
    clients: dict[int, Client] = {}
    for row in rows:
        client = clients.get(row["taxpayer_id"]) or local_client(ato, row)
        clients[row["taxpayer_id"]] = client
        local_link(client, row["level"], row["account"] or "", row["branch"] or "", row["role"] or "")
    levels: dict[int, list[str]] = {}
    for client_id, at in Link.objects.values_list("client_id", "level"):
        levels.setdefault(client_id, []).append(at)
    individuals = [t for t, c in clients.items() if c.kind == ClientKind.INDIVIDUAL and levels.get(c.pk) == ["CLIENT"]]
    lost, found, level, missing = individuals[0], individuals[1], individuals[2], individuals[3]

    # Lost: the client ends the practice's link elsewhere (myGov, a phone call): the ATO's register changes, the
    # portal's does not. The client is in a group whose staff (a restricted agent) are alerted with the admins.
    tfn = next(r["tfn"] for r in rows if r["taxpayer_id"] == lost)
    ended = ato.sandbox.control("POST", "end-link", json={"tan": AGENT_TAN, "tfn": tfn, "level": "CLIENT"})
    assert ended == {"ended": 1, "end_date": TODAY.isoformat()}
    group = ClientGroup.objects.create(practice=ato.practice, name="Payroll")
    group.clients.add(clients[lost])
    group.staff.add(agent)
    User.objects.filter(pk=agent.pk).update(restricted_to_groups=True)

    Link.objects.filter(client=clients[found]).delete()
    Link.objects.filter(client=clients[level]).update(level="ACCOUNT", account_kind="ITX")
    missing_tfn = next(r["tfn"] for r in rows if r["taxpayer_id"] == missing)
    Link.objects.filter(client=clients[missing]).delete()
    clients.pop(missing).delete()

    stranger = ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND NOT EXISTS (SELECT 1 FROM reg_links l "
        "JOIN reg_agents g ON g.id = l.agent_id WHERE l.taxpayer_id = t.id AND g.tan = ?) ORDER BY t.id LIMIT 1",
        AGENT_TAN,
    )[0]
    unlisted = local_client(ato, {**stranger, "taxpayer_id": stranger["id"]})
    local_link(unlisted, "CLIENT")
    return World(clients, clients[lost], clients[found], clients[level], unlisted, missing_tfn)


def listed_clients(ato: Ato) -> int:
    """How many clients the ATO's list gives on a first run (every link, ended ones too)."""
    return int(
        ato.query(
            "SELECT count(DISTINCT l.taxpayer_id) AS n FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id "
            "WHERE g.tan = ?",
            AGENT_TAN,
        )[0]["n"]
    )


def finished(run: ReconcileRun) -> ReconcileRun:
    pump(lambda: ReconcileRun.objects.get(pk=run.pk).status != RunStatus.RUNNING, timeout=120)
    run.refresh_from_db()
    return run


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 7 clients, so that 60-odd clients take several pages and continuations."""
    monkeypatch.setattr(reconcile, "PAGE_SIZE", 7)


# --- the drift kinds ----------------------------------------------------------------------------------------------


def test_each_kind_of_drift_is_found_and_the_register_brought_into_line(
    ato: Ato, admin: User, agent: User, reader: User, small_pages: None
) -> None:
    world = mirrored(ato, agent)
    run = finished(reconcile.reconcile_start(practice=ato.practice, actor=admin))

    assert run.status == RunStatus.DONE, run.error
    assert run.pages > 5 and run.clients_seen == listed_clients(ato)
    drift = {d.client_id: d for d in Drift.objects.filter(run=run)}
    assert run.drift_count == len(drift) == 5 and run.lost_access_count == 2

    lost = drift[world.lost.pk]
    assert lost.kind == DriftKind.LOST_ACCESS and lost.identifier == f"TFN {world.lost.masked_tfn}"
    assert "Ended at the ATO: the whole client (ended by the client on 30/11/2026)." in lost.details
    assert "no longer has any access" in lost.details
    link = Link.objects.get(client=world.lost)
    assert (link.ended_on, link.end_reason) == (TODAY, "CLIENT")
    assert LinkChange.objects.filter(client=world.lost, kind=ChangeKind.ENDED_AT_ATO).count() == 1

    found = drift[world.found.pk]
    assert found.kind == DriftKind.NOT_IN_PORTAL and "the whole client" in found.details
    link = Link.objects.current().get(client=world.found)
    assert link.level == "CLIENT" and link.started_on is not None and link.confirmed_at is not None
    assert LinkChange.objects.filter(client=world.found, kind=ChangeKind.FOUND_AT_ATO).count() == 1

    level = drift[world.level.pk]
    assert level.kind == DriftKind.LEVEL_CHANGED
    assert "the income tax account (no longer listed by the ATO)" in level.details
    assert "The ATO now holds the whole client." in level.details
    assert [link.key for link in Link.objects.current().filter(client=world.level)] == [("CLIENT", "", "", "")]

    unlisted = drift[world.unlisted.pk]
    assert unlisted.kind == DriftKind.LOST_ACCESS and "no longer listed by the ATO" in unlisted.details
    assert not Link.objects.current().filter(client=world.unlisted).exists()

    missing = drift[None]
    assert missing.kind == DriftKind.NOT_IN_REGISTER and missing.identifier == f"TFN *** *** {world.missing_tfn[-3:]}"
    assert "the register has no such client" in missing.details

    # Every other link was confirmed by this run; none was touched otherwise.
    others = Link.objects.current().exclude(client__in=[world.found, world.level])
    assert others.count() == others.filter(confirmed_at__gte=run.started_at).count() > 50
    assert AuditEvent.objects.filter(action="relationships.reconciled", object_id=str(run.pk)).count() == 1
    assert AuditEvent.objects.filter(action="relationships.ended_at_ato").count() == 2


def test_lost_access_alerts_the_clients_staff_and_the_admins_and_nobody_else(
    ato: Ato, admin: User, agent: User, reader: User, login: Any
) -> None:
    world = mirrored(ato, agent)
    finished(reconcile.reconcile_start(practice=ato.practice, actor=admin))

    urgent = RelationshipAlert.objects.filter(urgent=True)
    assert set(urgent.filter(client=world.lost).values_list("user__username", flat=True)) == {"alice", "bob"}
    # The unlisted client is in no group: only the admins hear of it.
    assert set(urgent.filter(client=world.unlisted).values_list("user__username", flat=True)) == {"alice"}
    assert not RelationshipAlert.objects.filter(user=reader).exists()
    # A level change is worth knowing, not urgent.
    level = RelationshipAlert.objects.get(client=world.level)
    assert not level.urgent and level.user == admin

    page = login(agent).get(reverse("portal:dashboard")).content.decode()
    assert "1 urgent alert" in page and f"Access lost: {world.lost.display_name}" in page
    assert world.unlisted.display_name not in page  # not one of bob's clients
    assert "urgent alert" not in login(reader).get(reverse("portal:dashboard")).content.decode()

    alert = RelationshipAlert.objects.get(user=agent)
    http = login(agent)
    assert http.post(reverse("relationships:reconcile_alert_read", args=[alert.pk])).status_code == 302
    alert.refresh_from_db()
    assert alert.read_at is not None
    assert "urgent alert" not in http.get(reverse("portal:dashboard")).content.decode()
    # Another user's alert is not found, whoever asks.
    admins = RelationshipAlert.objects.filter(user=admin).first()
    assert admins is not None
    assert http.post(reverse("relationships:reconcile_alert_read", args=[admins.pk])).status_code == 404


def test_a_second_run_finds_nothing_new_and_asks_only_for_recent_endings(ato: Ato, admin: User, agent: User) -> None:
    mirrored(ato, agent)
    first = finished(reconcile.reconcile_start(practice=ato.practice, actor=admin))
    alerts = RelationshipAlert.objects.count()
    second = finished(reconcile.reconcile_start(practice=ato.practice))

    assert second.status == RunStatus.DONE and second.started_by is None
    assert second.ended_from is not None and second.ended_from < first.started_at.date()
    # Only the client the register still lacks is reported again: that stays a difference until someone acts.
    assert list(Drift.objects.filter(run=second).values_list("kind", flat=True)) == [DriftKind.NOT_IN_REGISTER]
    assert RelationshipAlert.objects.count() == alerts


# --- paging, idempotency, failure ---------------------------------------------------------------------------------


def _page_reply(question: Question) -> Reply[Any]:
    """A page's answer as the handler gets it: read as a stream of its clients."""
    return reply_of(question.service_action, outcome_of(question.message), stream="clients")


def test_a_page_delivered_twice_is_applied_once(ato: Ato, admin: User, agent: User, small_pages: None) -> None:
    world = mirrored(ato, agent)
    run = reconcile.reconcile_start(practice=ato.practice, actor=admin)
    assert run.current_question is not None
    first_page = run.current_question
    # Send page 1 here (its next page's job waits in Redis), then hand its answer to the handler again, as the
    # gateway does after a crash between the ATO's answer and the commit.
    outbox_send_one(first_page.message_id, worker="test")
    run.refresh_from_db()
    assert run.pages == 1 and run.clients_seen == 7 and run.current_question_id != first_page.pk
    counted = (run.clients_seen, Drift.objects.count(), LinkChange.objects.count(), Link.objects.count())
    first_page.refresh_from_db()
    with transaction.atomic():
        reconcile.on_list_page(first_page, _page_reply(first_page))
    run.refresh_from_db()
    assert (run.clients_seen, Drift.objects.count(), LinkChange.objects.count(), Link.objects.count()) == counted

    run = finished(run)
    assert run.status == RunStatus.DONE and run.clients_seen == listed_clients(ato)
    # And once more after the end: still nothing.
    every = list(Question.objects.filter(subject_type=reconcile.SUBJECT).order_by("pk"))
    assert len(every) == run.pages
    before = (Drift.objects.count(), LinkChange.objects.count(), RelationshipAlert.objects.count())
    with transaction.atomic():
        for question in every:
            reconcile.on_list_page(question, _page_reply(question))
    run.refresh_from_db()
    assert run.clients_seen == listed_clients(ato) and run.drift_count == 5
    assert (Drift.objects.count(), LinkChange.objects.count(), RelationshipAlert.objects.count()) == before
    assert Drift.objects.filter(client=world.lost).count() == 1


def test_the_ato_down_stops_the_run_plainly_and_resume_carries_on_without_losing_a_page(
    ato: Ato, admin: User, agent: User, login: Any, small_pages: None, settings: Any
) -> None:
    settings.GATEWAY_MAX_ATTEMPTS = 3  # the gateway's retries are its own tests' business; three show them here
    mirrored(ato, agent)
    run = reconcile.reconcile_start(practice=ato.practice, actor=admin)
    assert run.current_question is not None
    outbox_send_one(run.current_question.message_id, worker="test")  # page 1 arrives
    ato.sandbox.faults(outage_seconds=300)
    try:
        run = finished(run)
    finally:
        ato.sandbox.clear_faults()
    assert run.status == RunStatus.FAILED and run.pages == 1 and run.clients_seen == 7
    assert run.error.startswith("The ATO could not be reached: page 2 of its list was retried and then given up")
    page = login(admin).get(reverse("relationships:reconcile_run", args=[run.pk])).content.decode()
    assert "The ATO could not be reached" in page and "Resume" in page

    response = login(admin).post(reverse("relationships:reconcile_resume", args=[run.pk]))
    assert response.status_code == 302
    run = finished(run)
    assert run.status == RunStatus.DONE and run.error == ""
    assert run.clients_seen == listed_clients(ato) and run.drift_count == 5
    assert AuditEvent.objects.filter(action="relationships.reconcile_resumed").count() == 1


def test_one_run_at_a_time(ato: Ato, admin: User) -> None:
    first = reconcile.reconcile_start(practice=ato.practice, actor=admin)
    assert reconcile.reconcile_start(practice=ato.practice).pk == first.pk
    assert finished(first).status == RunStatus.DONE
    assert reconcile.reconcile_start(practice=ato.practice).pk != first.pk


# --- the pages, who may act, the command and the schedule ---------------------------------------------------------


def test_staff_start_a_run_and_watch_it_read_only_staff_only_watch(
    ato: Ato, admin: User, agent: User, reader: User, login: Any
) -> None:
    viewer = login(reader)
    page = viewer.get(reverse("relationships:reconcile")).content.decode()
    assert "Check against the ATO now" not in page and "No reconciliation has run yet" in page
    assert viewer.post(reverse("relationships:reconcile_start")).status_code == 403
    assert not ReconcileRun.objects.exists()

    response = login(agent).post(reverse("relationships:reconcile_start"))
    run = ReconcileRun.objects.get()
    assert response["Location"] == reverse("relationships:reconcile_run", args=[run.pk])
    assert run.started_by == agent
    assert AuditEvent.objects.filter(action="relationships.reconcile_started", actor=agent).count() == 1
    progress = viewer.get(reverse("relationships:reconcile_progress", args=[run.pk])).content.decode()
    assert "Checking with the ATO" in progress and "hx-get" in progress
    run = finished(run)

    page = viewer.get(reverse("relationships:reconcile_run", args=[run.pk])).content.decode()
    assert "Finished" in page and "Resume" not in page
    # The register was empty: every client the ATO lists is one the register lacks.
    assert run.drift_count == Drift.objects.filter(kind=DriftKind.NOT_IN_REGISTER).count() > 0
    assert viewer.post(reverse("relationships:reconcile_resume", args=[run.pk])).status_code == 403
    csv = b"".join(viewer.get(reverse("relationships:reconcile_report_csv", args=[run.pk])).streaming_content)
    assert csv.decode().count("\n") == run.drift_count + 1
    for row in ato_links(ato):  # a report names clients by ABN or masked TFN only
        assert row["tfn"] not in page and row["tfn"] not in csv.decode()


def test_restricted_staff_see_only_their_clients_drift(ato: Ato, admin: User, agent: User, login: Any) -> None:
    world = mirrored(ato, agent)
    run = finished(reconcile.reconcile_start(practice=ato.practice, actor=admin))
    page = login(agent).get(reverse("relationships:reconcile_run", args=[run.pk])).content.decode()
    assert world.lost.display_name in page
    assert world.found.display_name not in page and "the register has no such client" not in page
    full = login(admin).get(reverse("relationships:reconcile_run", args=[run.pk])).content.decode()
    assert world.found.display_name in full


def test_the_command_runs_the_same_reconciliation(ato: Ato, agent: User) -> None:
    world = mirrored(ato, agent)
    out = io.StringIO()
    call_command("sync_ato", "relationships", "--practice", str(ato.practice.pk), "--inline", stdout=out)
    run = ReconcileRun.objects.get()
    assert run.status == RunStatus.DONE and run.started_by is None
    assert "Done: " in out.getvalue() and f"{run.drift_count} differences" in out.getvalue()
    assert Drift.objects.get(client=world.lost).kind == DriftKind.LOST_ACCESS

    with pytest.raises(CommandError, match="no practice with id"):
        call_command("sync_ato", "relationships", "--practice", "999999", stdout=out)


def test_the_nightly_job_runs_for_every_practice_that_can_reach_the_ato(ato: Ato) -> None:
    assert {"func": "relationships.reconcile.jobs.reconcile_nightly", "queue_name": "low", "cron": "30 1 * * *"} in (
        CRON_JOBS
    )
    make_practice("No Credential Yet", "51824753556")
    from relationships.reconcile.jobs import reconcile_nightly

    started = reconcile_nightly()
    assert [ReconcileRun.objects.get(pk=pk).practice for pk in started] == [ato.practice]
    run = finished(ReconcileRun.objects.get(pk=started[0]))
    assert run.status == RunStatus.DONE and run.started_by is None


def test_the_drift_report_cannot_carry_a_spreadsheet_formula(admin: User, login: Any) -> None:
    """A name comes from the ATO or from the register; opened in Excel, "=..." would run as a formula."""
    run = ReconcileRun.objects.create(practice=admin.tenant, status=RunStatus.DONE)
    Drift.objects.create(
        run=run, kind=DriftKind.NOT_IN_REGISTER, name='=HYPERLINK("http://evil.example","x")', details="@SUM(1)"
    )
    response = login(admin).get(reverse("relationships:reconcile_report_csv", args=[run.pk]))
    text = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in text and "'@SUM(1)" in text
    assert "\n=" not in text and ",=" not in text and ',"=' not in text
