"""The drift watch: ask the ATO, for every client of a practice, for its details, addresses, bank accounts and
contacts, and compare each answer with the snapshot before (``on_snapshot`` calls ``drift_check`` as each answer is
recorded). A change no accepted change of the portal's explains is an alert to the client's staff; a bank account
changed that way is an urgent possible-fraud alert, with the old and new accounts side by side.

The run pages through the clients by primary key, a chunk at a time, each chunk asked with ``api.ask_many`` in
one transaction that also moves the run's cursor, so memory is bounded by the chunk and a run that stops resumes
where it was without asking a client twice."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import django_rq
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ato_gateway import api
from ato_gateway.wire.documents import cudtl
from clients.models import Client
from demographics import services
from demographics.models import (
    SNAPSHOT_MODELS,
    AddressChange,
    AddressChangeStatus,
    BankChange,
    BankChangeStatus,
    DriftAlert,
    DriftAlertRead,
    DriftRun,
    ProfileChange,
    Service,
    Snapshot,
)
from portal.audit import audit_record
from portal.capabilities import Role
from portal.db.bulk import update_many
from portal.models import Practice, User

WATCHED = (Service.DETAILS, Service.ADDRESSES, Service.BANK, Service.CONTACTS)
CHUNK = 200


# The portal's own changes of the client's details and of its authorised contact (demographics/profile.py).
_PROFILE_KINDS: dict[str, str] = {
    Service.DETAILS: ProfileChange.Kind.DETAILS,
    Service.CONTACTS: ProfileChange.Kind.CONTACT,
}


def _explained(snapshot: Snapshot, service: str, since: datetime | None, added: list[str]) -> bool:
    """Whether an accepted change of the portal's, since the snapshot before, accounts for what is new at the
    snapshot's level: an address or a contact changed at that very level (a client's contact change explains
    nothing of an account's); the portal changes bank accounts at client level only, so an account's that changed
    is always the ATO's news."""
    level = snapshot.same_level()
    at_client = not level.get("account_kind")
    if service == Service.BANK:
        if not at_client:
            return False
        accepted = BankChange.objects.filter(client=snapshot.client_id, status=BankChangeStatus.ACCEPTED)
        if since is not None:
            accepted = accepted.filter(approved_at__gte=since)
        ours = {(c.bsb, c.number) for c in accepted}
        new = {(f["bsb"], f["number"]) for f in snapshot.facts or [] if f["summary"] in added and f["current"]}
        return bool(new) and new <= ours
    if service == Service.ADDRESSES:
        changed = AddressChange.objects.filter(client=snapshot.client_id, status=AddressChangeStatus.ACCEPTED)
        if at_client:
            changed = changed.filter(accounts=[])
        else:
            changed = changed.filter(accounts__contains=[[level["account_kind"], level["account_branch"]]])
        return changed.filter(created_at__gte=since).exists() if since is not None else changed.exists()
    if service in _PROFILE_KINDS:
        profile = ProfileChange.objects.filter(
            client=snapshot.client_id, kind=_PROFILE_KINDS[service], status=AddressChangeStatus.ACCEPTED
        )
        if at_client:
            profile = profile.exclude(values__has_key="account")
        else:  # as ContactForm.values keeps it
            profile = profile.filter(values__account=f"{level['account_kind']}:{level['account_branch']}")
        return profile.filter(created_at__gte=since).exists() if since is not None else profile.exists()
    return False


def drift_check(snapshot: Snapshot, service: str) -> DriftAlert | None:
    """Compare a snapshot just answered with the one before; alert on a change the portal did not make."""
    alerts = drift_check_many([snapshot], service)
    return alerts[0] if alerts else None


def drift_check_many(snapshots: Sequence[Snapshot], service: str) -> list[DriftAlert]:
    """``drift_check`` for snapshots of one service just answered, set-wise: the snapshot before each (the newest
    answered one of its client and level asked before it) is found for them all in one query, and only a snapshot
    whose facts changed is looked at further, with the queries of whether the portal's own change explains it."""
    if not snapshots:
        return []
    model = SNAPSHOT_MODELS[service]
    before = model.objects.filter(
        client=OuterRef("client"),
        answered_at__isnull=False,
        pk__lt=OuterRef("pk"),
        **{name: OuterRef(name) for name in snapshots[0].same_level()},
    ).newest_first()
    previous_of = dict(
        model.objects.filter(pk__in=[s.pk for s in snapshots])
        .annotate(previous=Subquery(before.values("pk")[:1]))
        .values_list("pk", "previous")
    )
    previous = model.objects.only("pk", "answered_at", "facts").in_bulk(
        [pk for pk in previous_of.values() if pk is not None]
    )
    alerts = []
    for snapshot in snapshots:
        before_it = previous.get(previous_of.get(snapshot.pk))
        changes = services.snapshot_changes(snapshot, before_it)
        if changes is None or not changes.any or before_it is None:
            continue
        if _explained(snapshot, service, before_it.answered_at, changes.added):
            continue
        alert = DriftAlert.objects.create(
            practice_id=snapshot.client.practice_id,
            client_id=snapshot.client_id,
            service=service,
            urgent=service == Service.BANK,
            before=changes.removed,
            after=changes.added,
        )
        transaction.on_commit(functools.partial(_tell_staff, alert))
        alerts.append(alert)
    return alerts


def snapshots_answered(answers: list[tuple[api.Question, api.Reply[Any]]]) -> None:
    """``services.on_snapshot`` for a batch's answers at once (the purpose's ``many``: a watch's answers come in
    crowds). For each service the snapshots are read in one query, filled in one statement and compared with the
    ones before by ``drift_check_many``; an answer that is not a snapshot's whole list (a page of a longer one, a
    refusal) goes to ``on_snapshot`` on its own."""
    by_service: dict[str, list[tuple[api.Question, api.Reply[Any]]]] = {}
    for question, reply in answers:
        by_service.setdefault(services.service_of(question), []).append((question, reply))
    now = timezone.now()
    for service, pairs in by_service.items():
        model = SNAPSHOT_MODELS[service]
        found = model.objects.select_related("client").filter(question__in=[q.pk for q, _ in pairs])
        snapshots = {s.question_id: s for s in found}
        filled = []
        for question, reply in pairs:
            snapshot = snapshots.get(question.pk)
            if snapshot is None:
                continue  # as on_snapshot: no snapshot follows this question (a page already superseded)
            document = reply.document if reply.answered else None
            if document is None and question.service_action != cudtl.GetRequest.SERVICE_ACTION:
                continue  # a refusal leaves its snapshot unanswered: only a refused 2017 Get is asked again
            if document is None or snapshot.answered_at is not None or getattr(document, "continuation", None):
                services.on_snapshot(question, reply)
                continue
            snapshot.answered_at, snapshot.facts = now, services.snapshot_facts(service, snapshot, document)
            filled.append(snapshot)
        update_many(filled, ["answered_at", "facts"])
        drift_check_many(filled, service)


def _tell_staff(alert: DriftAlert) -> None:
    """The client's staff (of its groups) are told by email; for an urgent alert the admins too, and the admins
    whenever the client is in no group."""
    staff = User.objects.filter(is_active=True, practice_id=alert.practice_id).exclude(email="")
    theirs = staff.filter(client_groups__clients=alert.client_id)
    admins = staff.filter(role=Role.PRACTICE_ADMIN)
    told = theirs | admins if alert.urgent or not theirs.exists() else theirs
    recipients = sorted(set(told.values_list("email", flat=True)))
    if not recipients:
        return
    kind = "URGENT possible fraud: bank account" if alert.urgent else alert.get_service_display()
    before = "\n".join(alert.before) or "nothing"
    after = "\n".join(alert.after) or "nothing"
    send_mail(
        subject=f"{kind} changed at the ATO for {alert.client}",
        message=(
            f"The ATO's record of {alert.client} changed with no change of the practice's behind it.\n\n"
            f"Before:\n{before}\n\nNow:\n{after}\n\nCall the client on a number you already hold."
        ),
        from_email=None,
        recipient_list=recipients,
    )


def drift_alert_mark_read(*, user: User, alert: DriftAlert) -> None:
    """The member has seen the alert: it leaves their dashboard, and stays on the others' until each has seen it.
    Marking it twice changes nothing (a second click, or a second tab)."""
    with transaction.atomic():
        _, created = DriftAlertRead.objects.get_or_create(alert=alert, user=user)
        if created:
            audit_record("demographics.drift_alert_read", actor=user, target=alert, details={"urgent": alert.urgent})


def drift_watch_start(*, practice: Practice) -> DriftRun:
    return DriftRun.objects.create(practice=practice)


def drift_watch_step(run_id: int) -> bool:
    """Ask about the next chunk of clients; False once every client has been asked (the run is finished)."""
    with transaction.atomic():
        # The run's row only: locking the practice's too (select_related joins it) held every transaction that
        # records an answer of the practice's at its commit (its foreign-key check) behind the whole step, and
        # deadlocked one that had taken the audit chain's head first.
        run = DriftRun.objects.select_for_update(of=("self",)).select_related("practice").get(pk=run_id)
        if run.finished_at is not None:
            return False
        chunk = list(Client.objects.filter(practice=run.practice, pk__gt=run.last_client_id).order_by("pk")[:CHUNK])
        if not chunk:
            run.finished_at = timezone.now()
            run.save(update_fields=["finished_at"])
            return False
        askable = [c for c in chunk if c.tfn_last3 or c.abn or c.wpn]
        levels = services.levels_of(c.pk for c in askable)  # every client's accounts in one query
        for service in WATCHED:
            asked = [
                (c, level)
                for c in askable
                for level in (levels[c.pk] if service in services.LEVELLED else [services.CLIENT_LEVEL])
            ]
            documents = [
                (services.request_for(service, c, level), services.subject_for(service, c)) for c, level in asked
            ]
            questions = api.ask_many(documents, practice=run.practice, by=None, purpose=services.PURPOSE)
            SNAPSHOT_MODELS[service].objects.bulk_create(
                [services.snapshot_at(service, c, q, level) for (c, level), q in zip(asked, questions, strict=True)]
            )
        run.last_client_id = chunk[-1].pk
        run.clients_asked += len(askable)
        run.save(update_fields=["last_client_id", "clients_asked"])
    return True


def drift_watch_enqueue(run_id: int) -> None:
    # By dotted path: the job calls this module, which need not import the jobs back.
    django_rq.get_queue("low").enqueue("demographics.jobs.drift_watch", run_id)
