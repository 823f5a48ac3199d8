"""Reporting member accounts to the ATO (MAAS) and reading its answers.

A report is what a person starts: a foundation data load (every open account of the fund), the pending real-time
events, or a resubmission. ``report_build`` turns it into batches of ``settings.MAAS_BATCH_SIZE`` transactions, one
MAAS Submit message each, in one durable transaction per batch: the batch, its transactions, the report's cursor
and the question (``api.ask``) commit together. A worker killed between two batches leaves a report that resumes
from its cursor; one killed inside a batch leaves nothing of that batch, so nothing is sent twice. The gateway then
pushes each message (retrying an outage with the same MessageId, which the ATO applies once) and pulls its results.

``on_batch_answer`` reads the results as a stream, a chunk at a time, and applies them with bulk writes: each
transaction's outcome and meaning (seed 003's table, ``classify``), the member's last TFN validation, and a work
item with the 30-day clock for each meaning that needs action. The clock starts at ``pulled_at``, the moment the
responses were pulled (the handler runs in the transaction that settles the pull), not at the send nor at the
technical receipt."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import django_rq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from ato_gateway import api
from ato_gateway.api import Question, Reply, Subject
from ato_gateway.wire.documents import maas
from ato_gateway.wire.documents.common import Address, PersonName
from clients.tfn import encrypt_tfn, looks_like_tfn, mask_tfn
from portal.audit import audit_record
from portal.db.bulk import insert_many, update_many
from portal.iterables import batched
from portal.models import User
from superannuation.access import require_manage, visible_fund
from superannuation.events import new_transaction_id
from superannuation.models import (
    NEEDS_ACTION,
    AccountStatus,
    Batch,
    BatchState,
    EventKind,
    ItemState,
    Member,
    Outcome,
    Report,
    ReportKind,
    SuperFund,
    Transaction,
    WorkItem,
    classify,
)

log = logging.getLogger(__name__)

PURPOSE = "superannuation.batch"
SUBJECT = "maasbatch"
CHUNK = 500  # results applied together: bounds memory and each query's IN list
OPEN_STATES = (AccountStatus.OPEN, AccountStatus.REOPENED)


# --- starting ---


def foundation_load_start(*, user: User, fund: SuperFund) -> Report:
    """Report every open account of the fund in bulk. One load at a time: a second while one is unfinished is
    refused with words that say so."""
    require_manage(user)
    fund = visible_fund(user, fund)
    with transaction.atomic(durable=True):
        fund = SuperFund.objects.select_for_update().get(pk=fund.pk)
        running = fund.reports.filter(kind=ReportKind.FOUNDATION, finished_at__isnull=True).first()
        if running is not None:
            raise ValidationError(
                f"A foundation data load of this fund is already under way (started "
                f"{timezone.localtime(running.started_at):%d %b %Y %H:%M}); wait for it to finish."
            )
        total = Member.objects.filter(fund=fund, status__in=OPEN_STATES).count()
        report = Report.objects.create(fund=fund, kind=ReportKind.FOUNDATION, started_by=user, total=total)
        audit_record("superannuation.foundation_started", actor=user, target=report, details={"accounts": total})
        report_enqueue_on_commit(report)
    return report


def realtime_report_start(*, user: User, fund: SuperFund) -> Report:
    """Send the fund's pending real-time events (new accounts, changes, closures, reopenings). The events are
    claimed by this report at once, so an event recorded afterwards waits for the next one."""
    require_manage(user)
    fund = visible_fund(user, fund)
    with transaction.atomic(durable=True):
        SuperFund.objects.select_for_update().get(pk=fund.pk)
        report = Report.objects.create(fund=fund, kind=ReportKind.REALTIME, started_by=user)
        claimed = Transaction.objects.pending().filter(member__fund=fund).update(report=report)
        if claimed == 0:
            raise ValidationError("There are no events waiting to be reported for this fund.")
        report.total = claimed
        report.save(update_fields=["total"])
        audit_record("superannuation.realtime_started", actor=user, target=report, details={"events": claimed})
        report_enqueue_on_commit(report)
    return report


def report_enqueue(report_pk: int) -> None:
    # By dotted path: the job calls this module, which need not import the jobs back.
    django_rq.get_queue("default").enqueue("superannuation.jobs.report_build", report_pk)


def report_enqueue_on_commit(report: Report) -> None:
    pk = report.pk
    transaction.on_commit(lambda: report_enqueue(pk))


def reports_unbuilt() -> list[int]:
    """Reports whose batches are not all built (a worker died between two): the cron resumes them."""
    return list(Report.objects.filter(built_at__isnull=True).values_list("pk", flat=True))


# --- building the batches ---


def report_build(report_pk: int) -> int:
    """Build the report's batches until every transaction is in one (for a command; the worker builds one batch
    a job); returns the batches built by this run."""
    built = 0
    while report_build_step(report_pk):
        built += 1
    return built


def report_build_step(report_pk: int) -> bool:
    """One batch and its question, committed together; False when the report is built. A job builds one batch
    and queues the next, so a foundation load of 100,000 accounts is a hundred short jobs, never one long one."""
    size = settings.MAAS_BATCH_SIZE
    with transaction.atomic(durable=True):
        report = Report.objects.select_for_update().select_related("fund", "fund__practice").get(pk=report_pk)
        if report.built_at is not None:
            return False
        # The fund's lock orders this batch against an import adding members (events.foundation_built).
        fund = SuperFund.objects.select_for_update().get(pk=report.fund_id)
        members: list[Member] = []
        transactions: list[Transaction] = []
        if report.kind == ReportKind.FOUNDATION:
            members = list(
                Member.objects.filter(fund=fund, status__in=OPEN_STATES, pk__gt=report.cursor).order_by("pk")[:size]
            )
            cursor = members[-1].pk if members else report.cursor
        else:
            transactions = list(
                Transaction.objects.filter(report=report, batch__isnull=True, pk__gt=report.cursor)
                .select_related("member")
                .order_by("pk")[:size]
            )
            cursor = transactions[-1].pk if transactions else report.cursor
        count = len(members) or len(transactions)
        if not count:
            report.built_at = timezone.now()
            report.save(update_fields=["built_at"])
            _finish_if_done(report)
            return False
        batch = Batch.objects.create(fund=fund, kind=_batch_kind(report), report=report, size=count)
        if report.kind == ReportKind.FOUNDATION:
            documents = _foundation_transactions_write(batch, members, fund)
        else:
            documents = [_document(t, fund) for t in transactions]  # also sets tfn_given from the TFN sent
            for t in transactions:
                t.batch = batch
            update_many(transactions, ["batch", "tfn_given"])
        question = api.ask(
            maas.SubmitRequest(transactions=documents),
            practice=fund.practice,
            by=report.started_by,
            purpose=PURPOSE,
            about=Subject(SUBJECT, str(batch.pk), f"{fund.name}: {count} member accounts"),
        )
        batch.question = question
        batch.save(update_fields=["question"])
        report.cursor = cursor
        report.save(update_fields=["cursor"])
    return True


def _batch_kind(report: Report) -> str:
    """A resubmission is real-time reporting, even of a transaction of the foundation load: the load is over."""
    return report.kind


def _foundation_transactions_write(
    batch: Batch, members: list[Member], fund: SuperFund
) -> list[maas.MemberTransaction]:
    """The foundation batch's OPENED transactions written in one COPY, and their documents. Each row's values are
    put in place from the member, the rest prepared once for the batch: a Transaction object a member and Django's
    preparing of its sixteen fields cost 0.2 s a batch of 1,000, more than the COPY itself."""
    fields = [f for f in Transaction._meta.concrete_fields if not f.primary_key]
    fixed = {"batch": batch.pk, "report": batch.report_id, "event": EventKind.OPENED, "created_at": timezone.now()}
    raw = [fixed[f.name] if f.name in fixed else f.get_default() for f in fields]
    postgres = connection.vendor == "postgresql"
    # The batch's values prepared once for COPY; a row's own (a key, a string, a date, a boolean) need nothing.
    template = [f.get_db_prep_save(v, connection) for f, v in zip(fields, raw, strict=True)] if postgres else raw
    at = {f.name: n for n, f in enumerate(fields)}
    documents: list[maas.MemberTransaction] = []
    rows: list[list[Any]] = []
    for m in members:
        transaction_id = new_transaction_id()
        tfn = m.reveal_tfn() or None
        row = template.copy()
        row[at["member"]] = m.pk
        row[at["transaction_id"]] = transaction_id
        row[at["event_on"]] = m.opened_on
        row[at["tfn_given"]] = tfn is not None
        rows.append(row)
        documents.append(
            _account_document(
                m,
                fund,
                transaction_id=transaction_id,
                event=EventKind.OPENED,
                event_on=m.opened_on,
                tfn=tfn,
                name=PersonName(m.family_name, m.given_names or None),
                birth=m.date_of_birth,
                with_address=True,
            )
        )
    if not postgres:
        Transaction.objects.bulk_create(
            [Transaction(**{f.attname: value for f, value in zip(fields, row, strict=True)}) for row in rows]
        )
        return documents
    import psycopg

    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    table = connection.ops.quote_name(Transaction._meta.db_table)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    return documents


def _document(t: Transaction, fund: SuperFund) -> maas.MemberTransaction:
    m = t.member
    holder = t.holder
    if holder:  # 096604: the account closed under the holder the ATO knows
        name = PersonName(holder["family_name"], holder.get("given_names") or None)
        birth = datetime.strptime(holder["date_of_birth"], "%Y-%m-%d").date()
        tfn = None
    else:
        name = PersonName(m.family_name, m.given_names or None)
        birth = m.date_of_birth
        tfn = m.reveal_tfn() or None
    t.tfn_given = tfn is not None
    return _account_document(
        m,
        fund,
        transaction_id=t.transaction_id,
        event=t.event,
        event_on=t.event_on,
        tfn=tfn,
        name=name,
        birth=birth,
        with_address=not holder,
    )


def _account_document(
    m: Member,
    fund: SuperFund,
    *,
    transaction_id: str,
    event: str,
    event_on: date,
    tfn: str | None,
    name: PersonName,
    birth: date,
    with_address: bool,
) -> maas.MemberTransaction:
    address = None
    if m.address_line1 and with_address:
        address = Address(
            line1=m.address_line1,
            line2=m.address_line2 or None,
            locality=m.locality,
            state=m.state or None,
            postcode=m.postcode or None,
        )
    return maas.MemberTransaction(
        transaction_id=transaction_id,
        usi=fund.usi,
        member_id=m.member_number,
        tfn=tfn,
        name=name,
        birth_date=birth,
        address=address,
        status="CLOSED" if event == EventKind.CLOSED else "OPEN",
        event=maas.AccountEvent(event.upper(), event_on),
        attributes=maas.AccountAttributes(
            phase=m.phase.upper(),
            contributions_accepted=m.contributions_accepted,
            inward_rollovers_accepted=m.inward_rollovers_accepted,
            outward_rollovers_accepted=m.outward_rollovers_accepted,
            government_rollovers_accepted=m.government_rollovers_accepted,
            lost_status=m.lost_status.upper(),
            defined_benefit=m.defined_benefit,
            insurance=m.insurance,
            grandfathered=m.grandfathered,
            innovative_income_stream=m.innovative_income_stream,
        ),
    )


# --- the answer ---


def on_batch_answer(question: Question, reply: Reply[maas.SubmitResponse]) -> None:
    if question.subject_type != SUBJECT:
        return
    batch = (
        # Only the batch's row: the report's and the fund's are the builder's to lock, in its own order.
        Batch.objects.select_for_update(of=("self",))
        .select_related("report", "fund")
        .filter(pk=int(question.subject_id), question=question)
        .first()
    )
    if batch is None or batch.state in (BatchState.ANSWERED, BatchState.REFUSED):
        return  # delivered again: the ATO's answer has been applied once already
    now = timezone.now()
    batch.receipt_at = batch.receipt_at or question_receipt_at(question)
    results = reply.stream
    if reply.failure or reply.errors or results is None:
        # Refused whole, or never lodged: no transaction was processed, and each can be sent again whole.
        batch.state = BatchState.REFUSED if reply.errors else BatchState.FAILED
        batch.refusal = api.refusal_in_plain_words(question, reply)
        batch.save(update_fields=["state", "refusal", "receipt_at"])
        _finish_if_done(batch.report)
        return
    batch.pulled_at = now
    for chunk in batched(results, CHUNK):
        _apply(batch, chunk, now)
    batch.state = BatchState.ANSWERED
    batch.save(update_fields=["state", "receipt_at", "pulled_at"])
    _finish_if_done(batch.report)


def question_receipt_at(question: Question) -> datetime | None:
    return api.question_receipt_at(question)


def _items(result: maas.TransactionResult) -> list[dict[str, Any]]:
    """The result's items as kept: a parameter that carries a TFN (CORRECTEDTFN) is kept masked, never in clear."""
    return [
        {
            "code": i.code,
            "severity": i.severity,
            "text": i.text or "",
            "parameters": {
                p.name: (mask_tfn(p.value.replace(" ", "")[-3:]) if looks_like_tfn(p.value) else p.value)
                for p in i.parameters
            },
        }
        for i in result.items
    ]


def _apply(batch: Batch, chunk: list[maas.TransactionResult], pulled_at: datetime) -> None:
    by_id = {r.transaction_id: r for r in chunk}
    transactions = list(
        Transaction.objects.filter(batch=batch, transaction_id__in=by_id).select_related("member", "resubmission_of")
    )
    members: dict[int, Member] = {}
    items: list[WorkItem] = []
    resolved: list[int] = []
    for t in transactions:
        result = by_id[t.transaction_id]
        codes = tuple(i.code for i in result.items)
        t.processed = result.processed
        t.tfn_validation = (result.tfn_validation or "").lower() if result.processed else ""
        t.corrected_tfn = encrypt_tfn(result.corrected_tfn) if result.corrected_tfn else ""
        t.items = _items(result)
        t.meaning = classify(
            Outcome(result.processed, result.tfn_validation, codes), kind=batch.kind, tfn_given=t.tfn_given
        )
        t.answered_at = pulled_at
        member = t.member
        if result.processed and not t.holder:
            member.tfn_validation = t.tfn_validation
        member.reported_at = member.reported_at or batch.receipt_at or pulled_at
        members[member.pk] = member
        if t.meaning in NEEDS_ACTION:
            items.append(
                WorkItem(
                    fund_id=batch.fund_id,
                    member=member,
                    transaction=t,
                    meaning=t.meaning,
                    aware_at=pulled_at,
                    due_on=WorkItem.due_from(pulled_at),
                )
            )
        if t.resubmission_of_id is not None and result.processed:
            resolved.append(t.resubmission_of_id)
    # One UPDATE a row sent in one go, not bulk_update's CASE per field and row (seconds of Python at 1,000).
    update_many(transactions, ["processed", "tfn_validation", "corrected_tfn", "items", "meaning", "answered_at"])
    update_many(list(members.values()), ["tfn_validation", "reported_at"])
    insert_many(items)
    if resolved:
        _resolve_resubmitted(resolved, pulled_at)


def _resolve_resubmitted(original_ids: Iterable[int], when: datetime) -> None:
    """The item of a transaction resubmitted and now processed is done: the correct information is reported."""
    WorkItem.objects.filter(transaction_id__in=list(original_ids), state=ItemState.OPEN).update(
        state=ItemState.RESOLVED,
        resolved_at=when,
        resolution="Corrected and resubmitted; the ATO processed the resubmission.",
    )


def _finish_if_done(report: Report) -> None:
    if report.built_at is None or report.finished_at is not None:
        return
    if not report.batches.filter(state__in=[BatchState.SENDING, BatchState.AWAITING]).exists():
        Report.objects.filter(pk=report.pk, finished_at__isnull=True).update(finished_at=timezone.now())


# --- resubmitting ---


def transactions_resubmit(*, user: User, fund: SuperFund, transactions: Iterable[Transaction]) -> Report:
    """Resend only transactions the ATO did not process (validation errors, 099264, 096604 once remediated, and
    those of a batch refused or failed whole), each as a new transaction carrying the member's current data and
    pointing at the one it corrects. Anything else is refused with words that name it, and nothing is sent."""
    require_manage(user)
    fund = visible_fund(user, fund)
    ids = [t.pk for t in transactions]
    if not ids:
        raise ValidationError("Choose the transactions to resubmit.")
    with transaction.atomic(durable=True):
        SuperFund.objects.select_for_update().get(pk=fund.pk)
        chosen = list(
            Transaction.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, member__fund=fund)
            .select_related("member", "batch")
            .order_by("pk")
        )
        if len(chosen) != len(set(ids)):
            raise ValidationError("Some of the chosen transactions are not of this fund.")
        items = {i.transaction_id: i for i in WorkItem.objects.filter(transaction__in=chosen)}
        resent = set(
            Transaction.objects.filter(resubmission_of__in=chosen).values_list("resubmission_of_id", flat=True)
        )
        problems = []
        for t in chosen:
            label = f"{t.member.display_name} ({t.member.member_number})"
            item = items.get(t.pk)
            if t.pk in resent:
                problems.append(f"{label}: this transaction has already been resubmitted.")
            elif t.batch is None or t.batch.state in (BatchState.SENDING, BatchState.AWAITING):
                problems.append(f"{label}: the ATO has not answered this transaction yet.")
            elif t.processed:
                problems.append(f"{label}: the ATO processed this transaction; only unprocessed ones are resubmitted.")
            elif item is not None and not item.may_resubmit:
                problems.append(
                    f"{label}: the account belongs to a different holder (096604). Report it closed under the "
                    "other holder, or record the contact with the ATO that confirmed the identity, first."
                )
        if problems:
            raise ValidationError(problems)
        report = Report.objects.create(fund=fund, kind=ReportKind.REALTIME, started_by=user, total=len(chosen))
        Transaction.objects.bulk_create(
            [
                Transaction(
                    member=t.member,
                    report=report,
                    transaction_id=new_transaction_id(),
                    event=t.event,
                    event_on=t.event_on,
                    tfn_given=t.tfn_given,
                    holder=t.holder,
                    resubmission_of=t,
                )
                for t in chosen
            ]
        )
        audit_record("superannuation.resubmitted", actor=user, target=report, details={"transactions": len(chosen)})
        report_enqueue_on_commit(report)
    return report
