"""Reconciliation: walk the ATO's list of the practice's links (CUREL List) page by page and bring the register into
line with it, writing a drift report and alerting the staff who look after a client the practice has lost.

How a run moves: ``reconcile_start`` records the run and the request for its first page (one transaction). Each
page's answer reaches ``on_list_page`` in the transaction that settles its message; it reads the page as a stream
(a few hundred clients at a time, never the whole list), applies it, and records the request for the next page
with the continuation the ATO gave. The run row says which message is the page in flight, so an answer delivered
twice, or a page of a superseded attempt, finds it is not the current one and changes nothing. After the last page,
every current link the ATO did not list is ended (the ATO no longer holds it).

What a page changes, per client, comparing the ATO's current links with the register's current ``Link`` rows:
- held by both: confirmed (``Link.confirmed_at``);
- held only by the portal: ended as the ATO says (its end date and reason when the list carries the ended link,
  otherwise today, "no longer listed"), with an ENDED_AT_ATO entry in the client's history;
- held only by the ATO: added, with a FOUND_AT_ATO entry.
A client with only the first kind of difference has lost access (urgent alert); with both, the link's level has
changed; with only the last, the ATO had links the portal did not know. A client the register does not hold at all
is reported, not created: adding a client is a decision for the practice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ato_gateway import api
from ato_gateway.api import DocumentError, Question, Reply, Subject
from ato_gateway.wire.documents import curel
from clients.models import Client, ClientGroup
from clients.tfn import mask_tfn, tfn_lookup_hash
from portal.audit import audit_record, audit_record_system_many
from portal.capabilities import Role
from portal.iterables import batched
from portal.logging import redact_tfns
from portal.models import Practice, User
from relationships.models import ChangeKind, Link, LinkChange, describe_level
from relationships.reconcile.models import Drift, DriftKind, ReconcileRun, RelationshipAlert, RunStatus
from relationships.services import LinkKey, key_of

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

SUBJECT = "reconcilerun"
PURPOSE = "relationships.reconcile_page"  # a page of the ATO's list, read as a stream of its clients
PAGE_SIZE = 500  # the most the ATO gives in one page
CHUNK = 250  # clients applied together: bounds memory and keeps each query's IN list short
# Ended links are asked for since the last finished run, less a margin for the ATO's and our clocks and for links
# ended with a back-dated end date.
ENDED_MARGIN = timedelta(days=7)
END_REASONS = {
    "REMOVED": "removed",
    "SUPERSEDED": "taken over by another agent",
    "CLIENT": "ended by the client",
    "NOT_LISTED": "no longer listed by the ATO",
}
AUDIT_ACTIONS: dict[str, str] = {
    DriftKind.LOST_ACCESS: "relationships.ended_at_ato",
    DriftKind.LEVEL_CHANGED: "relationships.level_changed_at_ato",
}


# --- starting and resuming ---


def reconcile_start(*, practice: Practice, actor: User | None = None) -> ReconcileRun:
    """Start a run (``actor`` None: the nightly one), or return the one already running. A running run whose page
    in flight ended without being applied is resumed instead."""
    with transaction.atomic(durable=True):
        running = ReconcileRun.objects.filter(practice=practice, status=RunStatus.RUNNING).first()
        if running is not None:
            return _resume(running, actor) if running.is_stuck else running
        last = ReconcileRun.objects.filter(practice=practice, status=RunStatus.DONE).order_by("-started_at").first()
        run = ReconcileRun(
            practice=practice,
            started_by=actor,
            ended_from=timezone.localdate(last.started_at) - ENDED_MARGIN if last else None,
            expected_clients=max(
                Link.objects.for_practice(practice).current().values("client_id").distinct().count(),
                last.clients_seen if last else 0,
            ),
        )
        try:
            with transaction.atomic():
                run.save()
        except IntegrityError:  # another start won the race: one run at a time
            return ReconcileRun.objects.get(practice=practice, status=RunStatus.RUNNING)
        _ask(run, "")
        audit_record(
            "relationships.reconcile_started",
            actor=actor,
            practice=practice,
            target=run,
            details={"nightly": actor is None, "ended_from": str(run.ended_from or "")},
        )
    return run


def reconcile_resume(*, run: ReconcileRun, actor: User | None) -> ReconcileRun:
    """Carry on a stopped (or stuck) run from the page it was at: the pages before it were applied with their
    messages, so nothing is counted twice."""
    with transaction.atomic(durable=True):
        locked = ReconcileRun.objects.select_for_update(of=("self",)).select_related("current_question").get(pk=run.pk)
        if locked.status == RunStatus.DONE or (locked.is_running and not locked.is_stuck):
            return locked
        return _resume(locked, actor)


def _resume(run: ReconcileRun, actor: User | None) -> ReconcileRun:
    run.status, run.error, run.finished_at = RunStatus.RUNNING, "", None
    try:
        with transaction.atomic():
            run.save(update_fields=["status", "error", "finished_at"])
    except IntegrityError:  # another run started meanwhile: that one does the work
        return ReconcileRun.objects.get(practice=run.practice, status=RunStatus.RUNNING)
    _ask(run, run.continuation)
    audit_record(
        "relationships.reconcile_resumed",
        actor=actor,
        practice=run.practice,
        target=run,
        details={"page": run.pages + 1},
    )
    return run


def _ask(run: ReconcileRun, continuation: str) -> None:
    """Record the request for the run's next page in the caller's transaction (sent once it commits)."""
    document = curel.ListRequest(
        include_ended=True,
        ended_period=curel.Period(run.ended_from, None) if run.ended_from else None,
        continuation=continuation or None,
        page_size=PAGE_SIZE,
    )
    question = api.ask(
        document,
        practice=run.practice,
        by=run.started_by,
        purpose=PURPOSE,
        about=Subject(SUBJECT, str(run.pk), f"Reconciliation page {run.pages + 1}"),
    )
    run.current_question, run.continuation = question, continuation
    run.save(update_fields=["current_question", "continuation"])


# --- a page's answer ---


def on_list_page(question: Question, reply: Reply[curel.ListResponse]) -> None:
    """The handler of the list's pages: apply the page if it is the run's page in flight, then ask for the next
    one or finish the run."""
    if question.subject_type != SUBJECT:
        return
    run = (
        ReconcileRun.objects.select_for_update()
        .select_related("practice")
        .filter(pk=int(question.subject_id), practice_id=question.practice_id)
        .first()
    )
    if run is None or run.status != RunStatus.RUNNING or run.current_question_id != question.pk:
        return  # an attempt the run has moved past, or a late answer to a page the run stopped at
    items = reply.stream
    if reply.failure or reply.errors or items is None:
        _stop(run, _failure_words(run, reply))
        return
    page = _Page(run, question)
    try:
        with transaction.atomic():  # a page is applied whole or not at all, so a resumed run cannot count it twice
            for chunk in batched(items, CHUNK):
                page.apply(chunk)
            page.save()
    except DocumentError as exc:
        _stop(run, f"Page {run.pages + 1} of the ATO's list could not be read ({exc}). Resume asks for it again.")
        return
    continuation = items.document.continuation if items.document is not None else None
    run.pages += 1
    run.save(update_fields=["pages", "clients_seen", "drift_count", "lost_access_count"])
    if continuation:
        _ask(run, continuation)
    else:
        _finish(run, question)


def _failure_words(run: ReconcileRun, reply: Reply[Any]) -> str:
    page = run.pages + 1
    kept = f"The {run.clients_seen} clients checked before it are kept; Resume carries on from page {page}."
    if reply.failure:
        if reply.gave_up or reply.failure.startswith(("HTTP:", "GATEWAY:")):
            return (
                f"The ATO could not be reached: page {page} of its list was retried and then given up "
                f"({reply.failure}). {kept}"
            )
        return f"Page {page} could not be fetched from the ATO ({reply.failure}). {kept}"
    refused = " ".join(i.text for i in reply.errors) or "The ATO sent no list."
    return f"The ATO refused page {page} of its list: {refused} {kept}"


def _stop(run: ReconcileRun, words: str) -> None:
    run.status, run.error, run.finished_at = RunStatus.FAILED, redact_tfns(words)[:2000], timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    audit_record("relationships.reconcile_failed", practice=run.practice, target=run, details={"page": run.pages + 1})


def _finish(run: ReconcileRun, question: Question) -> None:
    """After the last page: the current links the ATO did not list at all have ended there."""
    page = _Page(run, question)
    stale = (
        Link.objects.for_practice(run.practice)
        .current()
        .filter(created_at__lt=run.started_at)  # a link added during the run was not in the pages already read
        .filter(Q(confirmed_at__isnull=True) | Q(confirmed_at__lt=run.started_at))
    )
    while client_ids := list(stale.order_by("client_id").values_list("client_id", flat=True).distinct()[:CHUNK]):
        page.unlisted(client_ids)
    page.save()
    run.status, run.finished_at = RunStatus.DONE, timezone.now()
    run.save(update_fields=["status", "finished_at", "drift_count", "lost_access_count"])
    audit_record(
        "relationships.reconciled",
        practice=run.practice,
        target=run,
        details={
            "pages": run.pages,
            "clients": run.clients_seen,
            "drift": run.drift_count,
            "lost_access": run.lost_access_count,
        },
    )


# --- applying a page ---


def _identifier(tfn_last3: str, abn: str | None, wpn: str | None) -> str:
    """How a report names a client: the ABN (public) when there is one, else the masked TFN, else the WPN."""
    if abn:
        return f"ABN {abn}"
    if tfn_last3:
        return f"TFN {mask_tfn(tfn_last3)}"
    return f"WPN {wpn}" if wpn else ""


def _listed_name(listed: curel.ListedClient) -> str:
    if listed.person_name is not None:
        given = " ".join(filter(None, [listed.person_name.given_name, listed.person_name.other_given_name]))
        return f"{listed.person_name.family_name.upper()}, {given}".strip(", ")
    return listed.organisation_name or ""


def _how_it_ended(end: date, reason: str) -> str:
    """ "ended by the client on 30/11/2026"; a link the ATO no longer lists has no date of its own to give."""
    words = END_REASONS.get(reason, reason.lower())
    return words if reason == "NOT_LISTED" else f"{words} on {end:%d/%m/%Y}"


def _levels(keys: Iterable[LinkKey]) -> str:
    return "; ".join(describe_level(*k) for k in sorted(keys))


@dataclass
class _Page:
    """What one page (or the final sweep) changes, gathered per chunk and written with a few statements."""

    run: ReconcileRun
    question: Question
    now: datetime = field(default_factory=timezone.now)
    today: date = field(default_factory=timezone.localdate)
    audits: list[tuple[str, Any, str, dict[str, Any]]] = field(default_factory=list)

    def apply(self, listed: list[curel.ListedClient]) -> None:
        self.run.clients_seen += len(listed)
        matched = self._match(listed)
        local = self._current_links([c.pk for c in matched.values()])
        drift: list[Drift] = []
        confirmed: list[int] = []
        for item in listed:
            current = {key_of(r): r for r in item.relationships if r.end_date is None}
            client = matched.get(id(item))
            if client is None:
                if current:
                    drift.append(self._drift(None, DriftKind.NOT_IN_REGISTER, item, current=current))
                continue
            mine = local.get(client.pk, {})
            confirmed += [link.pk for key, link in mine.items() if key in current]
            gone = {key: link for key, link in mine.items() if key not in current}
            new = {key: r for key, r in current.items() if key not in mine}
            if not gone and not new:
                continue
            ended = self._ended(item, gone)
            self._add(client, new)
            if gone and new:
                kind = DriftKind.LEVEL_CHANGED
            else:
                kind = DriftKind.LOST_ACCESS if gone else DriftKind.NOT_IN_PORTAL
            drift.append(self._drift(client, kind, item, current=current, gone=ended, new=new))
        Link.objects.filter(pk__in=confirmed).update(confirmed_at=self.now)
        self._record(drift)

    def unlisted(self, client_ids: list[int]) -> None:
        """Clients the ATO listed no current link to at all: every link the portal believes in has ended."""
        local = self._current_links(client_ids)
        clients = Client.objects.in_bulk(client_ids)
        drift = []
        for client_id, links in local.items():
            client = clients[client_id]
            ended = self._ended(None, links)
            drift.append(self._drift(client, DriftKind.LOST_ACCESS, None, current={}, gone=ended, new={}))
        self._record(drift)

    def save(self) -> None:
        audit_record_system_many(self.run.practice, self.audits)
        self.audits = []

    # -- the register's side --

    def _match(self, listed: list[curel.ListedClient]) -> dict[int, Client]:
        """The register's client for each listed one (keyed by the listed object's id): by TFN (its keyed hash),
        else ABN, else WPN."""
        clients = Client.objects.filter(practice=self.run.practice).only(
            "pk", "display_name", "tfn_hash", "tfn_last3", "abn", "wpn", "kind"
        )
        hashes = {tfn_lookup_hash(item.tfn): item for item in listed}
        found = {id(hashes[c.tfn_hash]): c for c in clients.filter(tfn_hash__in=list(hashes))}
        rest = [item for item in listed if id(item) not in found]
        for attribute in ("abn", "wpn"):
            wanted = {getattr(item, attribute): item for item in rest if getattr(item, attribute)}
            if not wanted:
                continue
            for client in clients.filter(**{f"{attribute}__in": list(wanted)}).order_by("pk"):
                item = wanted[getattr(client, attribute)]
                found.setdefault(id(item), client)
            rest = [item for item in rest if id(item) not in found]
        return found

    def _current_links(self, client_ids: list[int]) -> dict[int, dict[LinkKey, Link]]:
        links: dict[int, dict[LinkKey, Link]] = {}
        for link in Link.objects.for_practice(self.run.practice).current().filter(client_id__in=client_ids):
            links.setdefault(link.client_id, {})[link.key] = link
        return links

    # -- changes --

    def _ended(self, item: curel.ListedClient | None, gone: dict[LinkKey, Link]) -> dict[LinkKey, tuple[date, str]]:
        """End the portal's links the ATO no longer holds, as the ATO's list says they ended."""
        said: dict[LinkKey, tuple[date, str]] = {}
        for r in item.relationships if item is not None else []:
            # A key can have ended more than once (linked again and ended again): its latest end is the one that
            # ended the portal's link.
            if r.end_date is not None and (key_of(r) not in said or said[key_of(r)][0] < r.end_date):
                said[key_of(r)] = (r.end_date, r.end_reason or "NOT_LISTED")
        ended: dict[LinkKey, tuple[date, str]] = {}
        changes = []
        for key, link in gone.items():
            end, reason = said.get(key, (self.today, "NOT_LISTED"))
            Link.objects.filter(pk=link.pk).update(ended_on=end, end_reason=reason[:12], confirmed_at=self.now)
            ended[key] = (end, reason)
            changes.append(self._change(link.client_id, ChangeKind.ENDED_AT_ATO, key, _how_it_ended(end, reason)))
        LinkChange.objects.bulk_create(changes)
        return ended

    def _add(self, client: Client, new: dict[LinkKey, curel.ListedRelationship]) -> None:
        if not new:
            return
        practice = self.run.practice
        Link.objects.bulk_create(
            [
                Link(
                    practice=practice,
                    client=client,
                    level=level,
                    account_kind=kind,
                    branch=branch,
                    role=role,
                    started_on=r.start_date,
                    confirmed_at=self.now,
                )
                for (level, kind, branch, role), r in new.items()
            ]
        )
        LinkChange.objects.bulk_create(
            [
                self._change(
                    client.pk, ChangeKind.FOUND_AT_ATO, key, f"linked at the ATO since {r.start_date:%d/%m/%Y}"
                )
                for key, r in new.items()
            ]
        )

    def _change(self, client_id: int, kind: str, key: LinkKey, note: str) -> LinkChange:
        level, account_kind, branch, role = key
        return LinkChange(
            practice=self.run.practice,
            client_id=client_id,
            kind=kind,
            level=level,
            account_kind=account_kind,
            branch=branch,
            role=role,
            note=f"Reconciliation: {note}."[:300],
            actor=None,
            message_id=self.question.ebms_message_id,
        )

    # -- the report and the alerts --

    def _drift(
        self,
        client: Client | None,
        kind: str,
        item: curel.ListedClient | None,
        *,
        current: dict[LinkKey, Any],
        gone: dict[LinkKey, tuple[date, str]] | None = None,
        new: dict[LinkKey, Any] | None = None,
    ) -> Drift:
        gone, new = gone or {}, new or {}
        if kind == DriftKind.NOT_IN_REGISTER:
            details = (
                f"Linked at the ATO for {_levels(current)}; the register has no such client. "
                "Add them from the ATO to manage them here."
            )
        elif kind == DriftKind.NOT_IN_PORTAL:
            details = f"Linked at the ATO for {_levels(new)}; now in the portal's links."
        else:
            words = [
                f"{describe_level(*key)} ({_how_it_ended(end, reason)})" for key, (end, reason) in sorted(gone.items())
            ]
            details = f"Ended at the ATO: {'; '.join(words)}."
            if new:
                details += f" The ATO now holds {_levels(new)}."
            elif current:
                details += f" Access remains for {_levels(current)}."
            else:
                details += " The practice no longer has any access to this client."
        if client is not None:
            name, identifier = client.display_name, _identifier(client.tfn_last3, client.abn, client.wpn)
        else:
            assert item is not None
            name, identifier = _listed_name(item), _identifier(item.tfn[-3:], item.abn, item.wpn)
        if client is not None:
            action = AUDIT_ACTIONS.get(kind, "relationships.found_at_ato")
            links = {"ended": [list(k) for k in gone], "found": [list(k) for k in new], "run": self.run.pk}
            self.audits.append(
                (action, client, client.display_name, {**links, "message_id": self.question.ebms_message_id})
            )
        return Drift(
            run=self.run, client=client, kind=kind, name=name[:250], identifier=identifier, details=details[:500]
        )

    def _record(self, drift: list[Drift]) -> None:
        if not drift:
            return
        Drift.objects.bulk_create(drift)
        self.run.drift_count += len(drift)
        self.run.lost_access_count += sum(d.kind == DriftKind.LOST_ACCESS for d in drift)
        alerted = [d for d in drift if d.kind in (DriftKind.LOST_ACCESS, DriftKind.LEVEL_CHANGED)]
        if alerted:
            self._alert(alerted)

    def _alert(self, drift: list[Drift]) -> None:
        """Each alert goes to the staff of the client's groups and to the practice admins."""
        practice = self.run.practice
        admins = set(
            User.objects.filter(practice=practice, role=Role.PRACTICE_ADMIN, is_active=True).values_list(
                "pk", flat=True
            )
        )
        client_ids = [d.client_id for d in drift if d.client_id is not None]
        groups: dict[int, set[int]] = {}
        for group_id, client_id in ClientGroup.clients.through.objects.filter(client_id__in=client_ids).values_list(
            "clientgroup_id", "client_id"
        ):
            groups.setdefault(client_id, set()).add(group_id)
        staff: dict[int, set[int]] = {}
        for group_id, user_id in ClientGroup.staff.through.objects.filter(
            clientgroup_id__in={g for gs in groups.values() for g in gs},
            user__is_active=True,
            user__practice=practice,
        ).values_list("clientgroup_id", "user_id"):
            staff.setdefault(group_id, set()).add(user_id)
        alerts = []
        for d in drift:
            assigned = {u for g in groups.get(d.client_id or 0, set()) for u in staff.get(g, set())}
            urgent = d.kind == DriftKind.LOST_ACCESS
            lead = "Access lost" if urgent else "Link changed at the ATO"
            text = f"{lead}: {d.name}. {d.details}"[:500]
            alerts += [
                RelationshipAlert(
                    practice=practice, user_id=u, drift=d, client_id=d.client_id, urgent=urgent, text=text
                )
                for u in sorted(admins | assigned)
            ]
        RelationshipAlert.objects.bulk_create(alerts, ignore_conflicts=True)


# --- the nightly run ---


def reconcile_nightly() -> list[int]:
    """Start a run for every practice that can speak to the ATO (an agent number and a selected machine
    credential). Returns the runs' ids."""
    started = []
    for practice in api.practices_able_to_ask():
        try:
            started.append(reconcile_start(practice=practice).pk)
        except Exception:  # one practice's trouble must not stop the others' runs
            log.exception("reconciliation of practice %s could not start", practice.pk)
    return started


# --- the dashboard ---


def alerts_mark_read(*, user: User, alerts: Iterable[RelationshipAlert]) -> int:
    ids = [a.pk for a in alerts if a.read_at is None]
    if not ids:
        return 0
    with transaction.atomic(durable=True):
        count = RelationshipAlert.objects.for_user(user).filter(pk__in=ids).update(read_at=timezone.now())
        audit_record("relationships.alerts_read", actor=user, details={"alerts": ids[:100], "count": count})
    return count
