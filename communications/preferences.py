"""Changing where the ATO sends the letters (COMMPREF), Validate first, then Submit: one client's preference or the
practice default from the client's page, or one preference for any number of clients at once (no cap:
``api.ask_many`` sends them in the gateway's batches). Each client's change is one message, applied whole or not at
all by the ATO, so a refusal leaves that client as it was and the others changed; a bulk change validates each
client and submits those the ATO would accept.

A preference that sends a client's letters to the practice means the client hears nothing from the ATO itself, so
the client's written authorisation is recorded before it is submitted."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import django_rq
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ato_gateway import api
from ato_gateway.api import Question, Reply, Subject
from ato_gateway.wire.documents import commpref
from ato_gateway.wire.documents.common import ClientIdentifier
from clients.models import Client
from clients.tfn import looks_like_tfn, tfn_lookup_hash
from communications.models import (
    TO_PRACTICE_CHANNEL,
    Preference,
    PreferenceAuthority,
    PreferenceBulk,
    PreferenceChange,
    PreferenceChangeStatus,
)
from communications.services import preference_keep
from portal.audit import audit_record
from portal.sealing import seal_bytes

if TYPE_CHECKING:
    from portal.models import User

PURPOSE = "communications.preference_change"
SUBJECT = "communications.preferencechange"
MAX_AUTHORITY_BYTES = 10 * 1024 * 1024


class CannotChange(Exception):
    """The change cannot be asked for as given (nothing was recorded); the text says why in plain words."""


class NotReady(Exception):
    """The change cannot be submitted yet; the text says why."""


@dataclass(frozen=True)
class Wanted:
    """The preference asked for: a channel (with the address for email), or blank to go back to the practice
    default; for the categories named, or for every category."""

    channel: str = ""
    email: str = ""
    categories: tuple[str, ...] = ()


def _identifier(client: Client) -> ClientIdentifier:
    if not client.tfn_hash:
        raise CannotChange(f"{client.display_name} has no TFN in the register: the ATO names clients by TFN.")
    return ClientIdentifier.of(tfn=client.reveal_tfn())


def _document(bulk: PreferenceBulk, change: PreferenceChange, cls: type[Any]) -> Any:
    client = _identifier(change.client) if change.client is not None else None
    if not bulk.channel:
        return cls(client=client, categories=list(bulk.categories), use_practice_default=True)
    return cls(client=client, categories=list(bulk.categories), channel=bulk.channel, email=bulk.email or None)


def _subject(change: PreferenceChange) -> Subject:
    name = change.client.display_name if change.client is not None else "the practice default"
    return Subject(SUBJECT, str(change.pk), f"Where the ATO sends the letters of {name}")


def _sends_to_practice(bulk: PreferenceBulk) -> bool:
    """Whether the change sends clients' letters to the practice: the online inbox, or back to a practice default
    that does (the ATO's own default, the inbox, when it was never asked)."""
    if bulk.channel:
        return bulk.channel == TO_PRACTICE_CHANNEL
    default = Preference.objects.filter(practice=bulk.practice, client__isnull=True).first()
    return default is None or default.to_practice


def authority_held(client: Client) -> PreferenceAuthority | None:
    return PreferenceAuthority.objects.filter(practice_id=client.practice_id, client=client).first()


def authority_record(
    *,
    user: User,
    client: Client,
    signed_on: date,
    held_by: User | None = None,
    file_name: str = "",
    content: bytes = b"",
) -> PreferenceAuthority:
    """Record the client's written authorisation: the document itself (sealed), or who holds it."""
    if signed_on > timezone.localdate():
        raise CannotChange("The authorisation cannot be signed after today: check the date.")
    if not content and held_by is None:
        raise CannotChange("Upload the signed authorisation, or choose the member of staff who holds it.")
    if held_by is not None and (held_by.practice_id != client.practice_id or not held_by.is_active):
        raise CannotChange("Choose a member of staff of the practice as the holder of the authorisation.")
    if len(content) > MAX_AUTHORITY_BYTES:
        raise CannotChange("The document is larger than 10 MB: upload a smaller scan.")
    with transaction.atomic():
        authority = PreferenceAuthority.objects.create(
            practice_id=client.practice_id,
            client=client,
            signed_on=signed_on,
            held_by=held_by,
            file_name=file_name[:200],
            document=seal_bytes(content) if content else "",
            recorded_by=user,
        )
        audit_record(
            "communications.authority_recorded",
            actor=user,
            target=authority,
            details={"client": client.pk, "document": bool(content), "signed_on": signed_on.isoformat()},
        )
    return authority


def _bulk(user: User, wanted: Wanted, *, submit_when_validated: bool) -> PreferenceBulk:
    if wanted.channel and wanted.channel not in commpref.CHANNELS:
        raise CannotChange("Choose where the ATO sends the letters.")
    unknown = [c for c in wanted.categories if c not in commpref.CATEGORIES]
    if unknown:
        raise CannotChange(f"Unknown categories of letters: {', '.join(unknown)}.")
    return PreferenceBulk.objects.create(
        practice=user.tenant,
        created_by=user,
        channel=wanted.channel,
        email=wanted.email.strip() if wanted.channel == "EMAIL" else "",
        categories=list(dict.fromkeys(wanted.categories)),
        submit_when_validated=submit_when_validated,
    )


def _validate(user: User, bulk: PreferenceBulk, rows: list[PreferenceChange]) -> None:
    rows = PreferenceChange.objects.bulk_create(rows)
    questions = api.ask_many(
        [(_document(bulk, r, commpref.ValidateRequest), _subject(r)) for r in rows],
        practice=bulk.practice,
        by=user,
        purpose=PURPOSE,
    )
    for row, question in zip(rows, questions, strict=True):
        row.validate_question = question
    PreferenceChange.objects.bulk_update(rows, ["validate_question"], batch_size=500)


def preference_change_validate(*, user: User, client: Client | None, wanted: Wanted) -> PreferenceChange:
    """One client's change (None: the practice default), checked by the ATO; Submit is the agent's own step."""
    if client is not None:
        _identifier(client)  # raises CannotChange before anything is recorded
        if client.practice_id != user.tenant.pk:
            raise CannotChange("The client is not one of the practice's.")
    elif not wanted.channel:
        raise CannotChange("The practice default itself cannot go back to the practice default.")
    with transaction.atomic():
        bulk = _bulk(user, wanted, submit_when_validated=False)
        change = PreferenceChange(practice=bulk.practice, bulk=bulk, client=client)
        _validate(user, bulk, [change])
        audit_record(
            "communications.preference_validate",
            actor=user,
            target=bulk,
            details={"client": client.pk if client else None, "channel": bulk.channel, "categories": bulk.categories},
        )
    return PreferenceChange.objects.get(bulk=bulk)


def preference_change_submit(*, user: User, change: PreferenceChange) -> PreferenceChange:
    with transaction.atomic():
        locked = (
            PreferenceChange.objects.select_for_update(of=("self",))
            .select_related("client", "bulk__practice")
            .get(pk=change.pk)
        )
        if locked.status != PreferenceChangeStatus.VALIDATED:  # a second click finds it submitted already
            raise NotReady("Only a preference the ATO has checked and would accept can be submitted.")
        if locked.client is not None and _sends_to_practice(locked.bulk) and authority_held(locked.client) is None:
            raise NotReady(
                "This sends the client's letters to the practice, so the client will hear nothing from the ATO: "
                "record the client's written authorisation first."
            )
        _submit(user, locked.bulk, [locked])
        audit_record(
            "communications.preference_submit",
            actor=user,
            target=locked.bulk,
            details={"client": locked.client_id, "channel": locked.bulk.channel},
        )
    return locked


def _submit(user: User | None, bulk: PreferenceBulk, rows: list[PreferenceChange]) -> None:
    questions = api.ask_many(
        [(_document(bulk, r, commpref.SubmitRequest), _subject(r)) for r in rows],
        practice=bulk.practice,
        by=user,
        purpose=PURPOSE,
    )
    for row, question in zip(rows, questions, strict=True):
        row.submit_question, row.status = question, PreferenceChangeStatus.SUBMITTING
    PreferenceChange.objects.bulk_update(rows, ["submit_question", "status"], batch_size=500)


def preference_bulk_start(
    *,
    user: User,
    clients: Iterable[Client],
    wanted: Wanted,
    signed_on: date | None = None,
    held_by: User | None = None,
) -> PreferenceBulk:
    """Validate the one preference for every client given that has a TFN (the others are not asked about), and
    submit each the ATO would accept. When it sends the letters to the practice, ``signed_on`` and ``held_by``
    record the clients' written authorisation, for each client without one, before anything is asked."""
    with transaction.atomic():
        bulk = _bulk(user, wanted, submit_when_validated=True)
        chosen = [c for c in clients if c.tfn_hash and c.practice_id == bulk.practice_id]
        if _sends_to_practice(bulk):
            if signed_on is None or held_by is None:
                raise CannotChange(
                    "This sends the clients' letters to the practice: give the date the clients signed their "
                    "authorisation and the member of staff who holds it."
                )
            if signed_on > timezone.localdate() or held_by.practice_id != bulk.practice_id:
                raise CannotChange("Check the authorisation's date and holder.")
            held = set(
                PreferenceAuthority.objects.filter(practice=bulk.practice, client__in=chosen).values_list(
                    "client_id", flat=True
                )
            )
            PreferenceAuthority.objects.bulk_create(
                PreferenceAuthority(
                    practice=bulk.practice, client=c, signed_on=signed_on, held_by=held_by, recorded_by=user
                )
                for c in chosen
                if c.pk not in held
            )
        _validate(user, bulk, [PreferenceChange(practice=bulk.practice, bulk=bulk, client=c) for c in chosen])
        audit_record(
            "communications.preference_bulk",
            actor=user,
            target=bulk,
            details={"clients": len(chosen), "channel": bulk.channel, "categories": bulk.categories},
        )
    return bulk


_SPLIT = re.compile(r"[\s,;]+")


def clients_from_csv(*, user: User, text: str) -> tuple[list[Client], list[str]]:
    """The clients a CSV names, by the register's id or by TFN, each once; and the values that name none of the
    clients the user sees (never echoing a TFN: those are masked)."""
    values = [v for row in csv.reader(io.StringIO(text)) for cell in row for v in _SPLIT.split(cell) if v]
    visible = Client.objects.visible_to(user)
    tfns = {tfn_lookup_hash(v): v for v in values if looks_like_tfn(v)}
    ids = {int(v) for v in values if v.isdigit() and not looks_like_tfn(v) and len(v) < 10}
    found = list(visible.filter(pk__in=ids)) + list(visible.filter(tfn_hash__in=tfns).exclude(pk__in=ids))
    known_ids = {str(c.pk) for c in found}
    known_hashes = {c.tfn_hash for c in found}
    unknown = [
        ("TFN ending " + v[-3:]) if looks_like_tfn(v) else v
        for v in dict.fromkeys(values)
        if not (v in known_ids or (looks_like_tfn(v) and tfn_lookup_hash(v) in known_hashes))
    ]
    unique = list({c.pk: c for c in found}.values())
    return unique, unknown


def on_preference_change(question: Question, reply: Reply[Any]) -> None:
    """The ATO's answer to a Validate or a Submit, applied once in the transaction that settles the question; a
    bulk's validated row is submitted by a job, many at once, without anyone waiting on it."""
    found = (
        PreferenceChange.objects.select_related("bulk", "practice", "client")
        .filter(pk=int(question.subject_id))
        .first()
    )
    if found is None:
        return
    submitted = question.pk == found.submit_question_id
    if reply.failure and not reply.errors:
        status = PreferenceChangeStatus.FAILED
    elif reply.answered:
        status = PreferenceChangeStatus.ACCEPTED if submitted else PreferenceChangeStatus.VALIDATED
    else:
        status = PreferenceChangeStatus.REFUSED
    found.status = status
    found.save(update_fields=["status"])
    if status == PreferenceChangeStatus.ACCEPTED and reply.document is not None:
        preference_keep(found.practice, found.client_id, reply.document.preference)
    if status == PreferenceChangeStatus.VALIDATED and found.bulk.submit_when_validated:
        bulk_id = found.bulk_id
        transaction.on_commit(lambda: preference_bulk_submit_enqueue(bulk_id), robust=True)


def preference_bulk_submit_enqueue(bulk_id: int) -> None:
    queue = django_rq.get_queue("default")
    job_id = f"communications-preference-submit-{bulk_id}"
    waiting = queue.fetch_job(job_id)
    if waiting is None or waiting.get_status(refresh=False) != "queued":  # one waiting job takes every row
        queue.enqueue("communications.jobs.preference_bulk_submit", bulk_id, job_id=job_id)


def preference_bulk_submit(*, bulk_id: int) -> int:
    """Submit, in one ask, every change of the bulk the ATO has validated and no one has submitted; rows another
    run holds are left to it. Returns how many were submitted."""
    with transaction.atomic():
        rows = list(
            PreferenceChange.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("client", "bulk__practice", "bulk__created_by")
            .filter(bulk_id=bulk_id, status=PreferenceChangeStatus.VALIDATED, submit_question__isnull=True)
        )
        if not rows:
            return 0
        bulk = rows[0].bulk
        _submit(bulk.created_by, bulk, rows)
    return len(rows)


def preference_bulk_resume(*, user: User, bulk: PreferenceBulk) -> int:
    """Carry on a change after the ATO could not be reached: each client's step that could not be completed
    (its Validate, or its Submit) is asked again under the same MessageId, so a Submit the ATO had applied is not
    applied again; the clients the ATO answered keep their outcome. Clients validated whose Submit was never
    asked are submitted. Only the clients the user sees. Returns how many clients are being asked again."""
    with transaction.atomic(durable=True):
        rows = list(
            PreferenceChange.objects.select_for_update(of=("self",))
            .filter(bulk=bulk, status=PreferenceChangeStatus.FAILED)
            .filter(Q(client__isnull=True) | Q(client__in=Client.objects.visible_to(user)))
            .order_by("pk")
        )
        steps = {r.pk: r.submit_question_id or r.validate_question_id for r in rows}
        asked = {q.pk for q in api.questions_resend([Question(pk=pk) for pk in steps.values() if pk], by=user)}
        again = [r for r in rows if steps[r.pk] in asked]
        # Only the rows still failed: an answer whose recording had failed is handed to the handler by the resend
        # itself, which has settled its row already (a row set waiting now would wait for ever).
        for waiting, submitted in (
            (PreferenceChangeStatus.SUBMITTING, True),
            (PreferenceChangeStatus.VALIDATING, False),
        ):
            PreferenceChange.objects.filter(
                pk__in=[r.pk for r in again if bool(r.submit_question_id) == submitted],
                status=PreferenceChangeStatus.FAILED,
            ).update(status=waiting)
        unsent = bulk.changes.filter(  # type: ignore[attr-defined]
            status=PreferenceChangeStatus.VALIDATED, submit_question__isnull=True
        ).exists()
        if bulk.submit_when_validated and unsent:
            bulk_id = bulk.pk
            transaction.on_commit(lambda: preference_bulk_submit_enqueue(bulk_id), robust=True)
        audit_record("communications.preference_bulk_resumed", actor=user, target=bulk, details={"clients": len(again)})
    return len(again)
