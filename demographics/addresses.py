"""Address changes (CUADDR) with Validate first, then Submit: one client's from the Addresses section, or one new
address for many clients at once (no cap: ``api.ask_many`` sends them in the gateway's batches). Each client's
change is one message at client level, applied whole or not at all by the ATO, so a refusal or an outage leaves no
client half-changed; a bulk change validates each client and submits those the ATO would accept."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import django_rq
from django.db import transaction

from ato_gateway import api
from ato_gateway.api import Question, Reply, Subject
from ato_gateway.wire.documents import cuaddr
from ato_gateway.wire.documents.common import Account, Address
from clients.models import AccountKind, Client, ClientAccount
from demographics.models import AddressBulk, AddressChange, AddressChangeStatus
from demographics.services import CannotAsk, client_identifier
from portal.audit import audit_record

if TYPE_CHECKING:
    from portal.models import User

PURPOSE = "demographics.address_change"
ADDRESS_FIELDS = ("usage", "line1", "line2", "locality", "state", "postcode")
ATO_ACCOUNTS = {AccountKind.INCOME_TAX: "ITX", AccountKind.ACTIVITY_STATEMENT: "AS", AccountKind.FBT: "FBT"}


def _document(change: AddressChange, cls: type[Any]) -> Any:
    address = Address(
        line1=change.line1,
        line2=change.line2 or None,
        locality=change.locality,
        state=change.state,
        postcode=change.postcode,
    )
    accounts = [Account(kind=kind, branch=branch or None) for kind, branch in change.accounts]  # none: client level
    update = cuaddr.AddressUpdate(usage=change.usage, address=address)
    return cls(client=client_identifier(change.client), accounts=accounts, addresses=[update])


def _subject(change: AddressChange) -> Subject:
    return Subject("demographics.addresschange", str(change.pk), f"Address change for {change.client.display_name}")


def address_change_validate(*, user: User, client: Client, address: dict[str, str]) -> AddressChange:
    client_identifier(client)  # raises CannotAsk before anything is recorded
    with transaction.atomic():
        change = AddressChange.objects.create(practice=client.practice, client=client, created_by=user, **address)
        change.validate_question = api.ask(
            _document(change, cuaddr.ValidateRequest),
            practice=client.practice,
            by=user,
            purpose=PURPOSE,
            about=_subject(change),
        )
        change.save(update_fields=["validate_question"])
        audit_record("demographics.address_validate", actor=user, target=change, details={"usage": change.usage})
    return change


class NotReady(Exception):
    """The change has not been checked by the ATO without errors, so it cannot be submitted."""


def address_change_submit(*, user: User, change: AddressChange) -> AddressChange:
    with transaction.atomic():
        locked = AddressChange.objects.select_for_update(of=("self",)).select_related("client").get(pk=change.pk)
        if locked.status != AddressChangeStatus.VALIDATED:  # a second click finds it submitted already
            raise NotReady("Only an address the ATO has checked and would accept can be submitted.")
        _submit(locked, by=user)
        audit_record("demographics.address_submit", actor=user, target=locked, details={"usage": locked.usage})
    return locked


def _submit(change: AddressChange, *, by: User | None) -> None:
    change.submit_question = api.ask(
        _document(change, cuaddr.SubmitRequest),
        practice=change.practice,
        by=by,
        purpose=PURPOSE,
        about=_subject(change),
    )
    change.status = AddressChangeStatus.SUBMITTING
    change.save(update_fields=["submit_question", "status"])


def address_bulk_start(*, user: User, clients: Iterable[Client], address: dict[str, str]) -> AddressBulk:
    """Validate the one new address for every client that has an identifier (the others are not asked about)."""
    with transaction.atomic():
        bulk = AddressBulk.objects.create(practice=user.tenant, created_by=user, **address)
        rows = []
        for client in clients:
            try:
                client_identifier(client)
            except CannotAsk:
                continue
            rows.append(AddressChange(practice=user.tenant, client=client, bulk=bulk, created_by=user, **address))
        rows = AddressChange.objects.bulk_create(rows)
        questions = api.ask_many(
            [(_document(r, cuaddr.ValidateRequest), _subject(r)) for r in rows],
            practice=user.tenant,
            by=user,
            purpose=PURPOSE,
        )
        for row, question in zip(rows, questions, strict=True):
            row.validate_question = question
        AddressChange.objects.bulk_update(rows, ["validate_question"], batch_size=500)
        audit_record("demographics.address_bulk", actor=user, target=bulk, details={"clients": len(rows)})
    return bulk


def address_bulk_accounts(*, user: User, client: Client, address: dict[str, str]) -> AddressBulk:
    """The one new address for the client and every ATO account of it the register holds: the client level is one
    change, and the accounts are changes of as many as the ATO takes in one message, each validated, then
    submitted, on its own (so one refused group of accounts leaves the others changed)."""
    client_identifier(client)  # raises CannotAsk before anything is recorded
    held = [[ATO_ACCOUNTS[AccountKind(a.kind)], a.branch] for a in ClientAccount.objects.filter(client=client)]
    size = cuaddr.MAX_ACCOUNTS
    groups: list[list[list[str]]] = [[], *(held[i : i + size] for i in range(0, len(held), size))]
    with transaction.atomic():
        bulk = AddressBulk.objects.create(practice=client.practice, created_by=user, **address)
        rows = AddressChange.objects.bulk_create(
            [
                AddressChange(
                    practice=client.practice, client=client, bulk=bulk, created_by=user, accounts=group, **address
                )
                for group in groups
            ]
        )
        questions = api.ask_many(
            [(_document(r, cuaddr.ValidateRequest), _subject(r)) for r in rows],
            practice=client.practice,
            by=user,
            purpose=PURPOSE,
        )
        for row, question in zip(rows, questions, strict=True):
            row.validate_question = question
        AddressChange.objects.bulk_update(rows, ["validate_question"])
        audit_record("demographics.address_bulk", actor=user, target=bulk, details={"accounts": len(held)})
    return bulk


def on_address_answer(question: Question, reply: Reply[Any]) -> None:
    """The ATO's answer to a Validate or a Submit, applied once in the transaction that settles the question; a
    bulk change's validated row is submitted here, without anyone waiting on it."""
    change = AddressChange.objects.select_related("client", "practice", "bulk").filter(pk=int(question.subject_id))
    found = change.first()
    if found is None:
        return
    submitted = question.pk == found.submit_question_id
    if reply.failure and not reply.errors:
        status = AddressChangeStatus.FAILED
    elif reply.answered:
        status = AddressChangeStatus.ACCEPTED if submitted else AddressChangeStatus.VALIDATED
    else:
        status = AddressChangeStatus.REFUSED
    found.status = status
    found.save(update_fields=["status"])
    if status == AddressChangeStatus.VALIDATED and found.bulk is not None:
        # Submitted by a job, many at once: asked here one by one, each Submit was its own message, audit entry
        # and RQ job, and a bulk change of 1,000 clients ran at a quarter of the gateway's rate.
        bulk_id = found.bulk.pk
        transaction.on_commit(lambda: address_bulk_submit_enqueue(bulk_id), robust=True)


def address_bulk_submit_enqueue(bulk_id: int) -> None:
    queue = django_rq.get_queue("default")
    job_id = f"demographics-bulk-submit-{bulk_id}"
    waiting = queue.fetch_job(job_id)
    if waiting is None or waiting.get_status(refresh=False) != "queued":  # one waiting job takes every row
        # By dotted path, as the drift watch's job is queued.
        queue.enqueue("demographics.jobs.address_bulk_submit", bulk_id, job_id=job_id)


def address_bulk_submit(*, bulk_id: int) -> int:
    """Submit, in one ask, every change of the bulk the ATO has validated and no one has submitted; rows another
    run holds are left to it. Returns how many were submitted."""
    with transaction.atomic():
        rows = list(
            AddressChange.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("client", "practice", "bulk__created_by")
            .filter(bulk_id=bulk_id, status=AddressChangeStatus.VALIDATED, submit_question__isnull=True)
        )
        if not rows:
            return 0
        bulk = rows[0].bulk
        assert bulk is not None
        questions = api.ask_many(
            [(_document(r, cuaddr.SubmitRequest), _subject(r)) for r in rows],
            practice=rows[0].practice,
            by=bulk.created_by,
            purpose=PURPOSE,
        )
        for row, question in zip(rows, questions, strict=True):
            row.submit_question, row.status = question, AddressChangeStatus.SUBMITTING
        AddressChange.objects.bulk_update(rows, ["submit_question", "status"])
    return len(rows)
