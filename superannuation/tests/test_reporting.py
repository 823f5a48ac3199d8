"""Reporting member accounts the whole way: the member file imported, the foundation data load built into batches
by the real worker, pushed through the real gateway to the stand-in ATO, the results pulled and read by the
answer handler; the seed 003 responses and what follows them (a corrected TFN applied, a batch of 10 with 4
failures resubmitting the 4, 096604 held until remediated, a batch refused whole, an ATO outage mid-load)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ato_gateway.models import MessageAttempt, OutboxMessage
from ato_gateway.wire.documents import maas
from portal.models import AuditEvent
from superannuation import reporting, services
from superannuation.models import (
    Batch,
    BatchState,
    ItemState,
    Meaning,
    Member,
    Report,
    ReportKind,
    SuperFund,
    TfnChange,
    TfnValidation,
    Transaction,
    WorkItem,
)
from tests.ato_fixtures import DEMO_ABN, Ato, redeliver

from .support import fund_at_ato, import_members, member_file, people, pushed_only, row, settle, wrong_tfn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def today_at_ato(ato: Ato) -> Ato:
    """The stand-in's business date made today, so that the real-time events of today are not in its future."""
    ato.sandbox.control("POST", "today", json={"today": timezone.localdate().isoformat()})
    return ato


@pytest.fixture
def fund(today_at_ato: Ato) -> SuperFund:
    return fund_at_ato(today_at_ato)


def received(ato: Ato, batch: Batch) -> int:
    """How many transactions the stand-in ATO received in the batch's message (the results it queued for it)."""
    assert batch.question is not None
    message = OutboxMessage.objects.get(pk=batch.question.message_id)
    [queued] = ato.query("SELECT payloads FROM queued_responses WHERE ref_message_id = ?", message.message_id)
    return sum(text.count("<TransactionResult>") for _, text in json.loads(queued["payloads"]))


def foundation(ato: Ato, fund: SuperFund) -> Report:
    report = services.foundation_load_start(user=ato.user, fund=fund)
    settle(ato)
    report.refresh_from_db()
    return report


def test_a_foundation_load_reports_every_open_account_and_opens_items_only_where_the_table_says(
    ato: Ato, fund: SuperFund, settings: Any
) -> None:
    settings.MAAS_BATCH_SIZE = 3  # several batches, one message each
    matched = people(ato, 3)
    corrected, unmatched = people(ato, 2, offset=3)
    provided = people(ato, 1, offset=5)[0]
    not_quoted = people(ato, 1, quoted=False)[0]
    rows = [row(p, f"M-{n}") for n, p in enumerate(matched)]
    rows += [
        row(corrected, "C-1", tfn=wrong_tfn(corrected["tfn"])),
        row(unmatched, "U-1", family_name="Nobody-Matches"),
        row(provided, "P-1", tfn=""),
        row(not_quoted, "N-1", tfn=""),
        row(matched[0], "BAD-1", tfn="123456789"),  # fails the TFN check
        row(matched[1], "BAD-2", date_of_birth=""),
        row(matched[2], "M-0"),  # a duplicate of the first row's member number
        row(unmatched, "X-1", status="closed", closed_on="2024-01-01"),  # a closed account: not in the load
    ]
    job = import_members(ato.user, fund, member_file(rows))
    assert (job.added, job.updated, job.failure, job.content) == (8, 0, "", "")
    assert [(e["row"], e["member_number"]) for e in job.errors] == [(9, "BAD-1"), (10, "BAD-2"), (11, "M-0")]
    assert "TFN check" in job.errors[0]["messages"][0] and "123456789" not in json.dumps(job.errors)
    assert job.errors[1]["messages"] == ["Date of birth is missing."]
    assert "appears earlier in this file" in job.errors[2]["messages"][0]

    report = foundation(ato, fund)
    assert report.total == 7 and report.finished_at is not None
    batches = list(report.batches.order_by("pk"))
    assert [b.size for b in batches] == [3, 3, 1] and {b.state for b in batches} == {BatchState.ANSWERED}
    assert [received(ato, b) for b in batches] == [3, 3, 1]
    figures = services.fund_report(user=ato.user, fund=fund)["responses"]
    assert {k: v for k, v in figures.items() if v} == {
        Meaning.MATCHED: 3,
        Meaning.CORRECTED: 1,
        Meaning.UNMATCHED_FOUNDATION: 1,
        Meaning.PROVIDED: 1,
        Meaning.MATCHED_NO_NOTICE: 1,
    }
    # Only the two TFNs to record need action; the foundation load's unmatched response needs none.
    items = {i.member.member_number: i for i in WorkItem.objects.select_related("member", "transaction")}
    assert sorted(items) == ["C-1", "P-1"]
    for item in items.values():
        batch = item.transaction.batch
        assert batch is not None and batch.pulled_at is not None and batch.receipt_at is not None
        assert item.aware_at == batch.pulled_at and batch.receipt_at <= batch.pulled_at
        assert item.due_on == WorkItem.due_from(batch.pulled_at)
    members = {m.member_number: m for m in Member.objects.filter(fund=fund)}
    assert members["C-1"].tfn_validation == TfnValidation.CORRECTED
    assert members["U-1"].tfn_validation == TfnValidation.UNMATCHED
    assert members["X-1"].reported_at is None and all(
        m.reported_at is not None for n, m in members.items() if n != "X-1"
    )
    # The TFN the ATO supplied is sealed on the transaction, and masked in the items kept.
    corrected_tx = items["C-1"].transaction
    assert corrected_tx.corrected_tfn and corrected["tfn"] not in corrected_tx.corrected_tfn
    assert corrected["tfn"] not in json.dumps(corrected_tx.items)


def test_a_batch_delivered_twice_changes_nothing(ato: Ato, fund: SuperFund) -> None:
    corrected = people(ato, 1)[0]
    import_members(ato.user, fund, member_file([row(corrected, "C-1", tfn=wrong_tfn(corrected["tfn"]))]))
    report = foundation(ato, fund)
    batch = report.batches.get()
    item = WorkItem.objects.get()
    before = list(Transaction.objects.values_list("pk", "processed", "meaning", "answered_at"))
    assert batch.question is not None
    message = OutboxMessage.objects.get(pk=batch.question.message_id)
    redeliver(message)
    # And the handler itself, handed the same answer again (as a resend after a handler failure would).
    with transaction.atomic():
        reporting.on_batch_answer(batch.question, ato.stream(message, maas.SubmitResponse, "results"))
    batch_after = Batch.objects.get(pk=batch.pk)
    assert (batch_after.pulled_at, batch_after.state) == (batch.pulled_at, BatchState.ANSWERED)
    assert list(Transaction.objects.values_list("pk", "processed", "meaning", "answered_at")) == before
    assert list(WorkItem.objects.values_list("pk", "aware_at")) == [(item.pk, item.aware_at)]


def test_the_clock_starts_at_the_pull_not_at_the_receipt(ato: Ato, fund: SuperFund) -> None:
    """The push was received three days before the fund pulled its results: the 30 days run from the pull."""
    corrected = people(ato, 1)[0]
    import_members(ato.user, fund, member_file([row(corrected, "C-1", tfn=wrong_tfn(corrected["tfn"]))]))
    services.foundation_load_start(user=ato.user, fund=fund)
    pushed_only(ato)
    batch = Batch.objects.get()
    assert batch.question is not None and batch.pulled_at is None
    three_days_ago = timezone.now() - timedelta(days=3)
    MessageAttempt.objects.filter(message_id=batch.question.message_id).update(started_at=three_days_ago)
    settle(ato)
    batch.refresh_from_db()
    item = WorkItem.objects.get()
    assert batch.receipt_at is not None and batch.pulled_at is not None
    assert timezone.localdate(batch.receipt_at) == timezone.localdate(three_days_ago)
    assert item.aware_at == batch.pulled_at
    assert item.due_on == timezone.localdate() + timedelta(days=30)


def test_a_corrected_tfn_is_applied_once_kept_in_the_history_and_audited_without_the_tfn(
    ato: Ato, fund: SuperFund
) -> None:
    corrected = people(ato, 1)[0]
    given = wrong_tfn(corrected["tfn"])
    import_members(ato.user, fund, member_file([row(corrected, "C-1", tfn=given)]))
    foundation(ato, fund)
    item = WorkItem.objects.get()
    services.tfn_correction_apply(user=ato.user, item=item)
    member = Member.objects.get()
    assert member.reveal_tfn() == corrected["tfn"] and member.tfn_from_ato
    change = TfnChange.objects.get(member=member)
    assert change.source == TfnChange.Source.ATO_CORRECTED and change.old_last3 == given[-3:]
    assert change.new_last3 == corrected["tfn"][-3:] and change.old_ciphertext and given not in change.old_ciphertext
    item.refresh_from_db()
    assert item.state == ItemState.RESOLVED and item.resolved_by == ato.user
    assert Transaction.objects.get().corrected_tfn == ""
    event = AuditEvent.objects.get(action="superannuation.tfn_corrected")
    assert corrected["tfn"] not in json.dumps(event.details) and given not in json.dumps(event.details)
    assert corrected["tfn"] not in event.object_repr
    with pytest.raises(ValidationError, match="already resolved"):
        services.tfn_correction_apply(user=ato.user, item=item)
    assert TfnChange.objects.count() == 1


def test_a_batch_of_ten_with_four_failures_resubmits_only_the_four(ato: Ato, fund: SuperFund) -> None:
    group = people(ato, 10)
    import_members(ato.user, fund, member_file([row(p, f"B-{n}") for n, p in enumerate(group)]))
    # Four members whose data the ATO will refuse: a TFN failing its check, a date of birth in the future.
    future = timezone.localdate() + timedelta(days=400)
    broken = list(Member.objects.filter(fund=fund).order_by("member_number")[6:])
    for member in broken[:2]:
        Member.objects.filter(pk=member.pk).update(date_of_birth=future)
    for member in broken[2:]:
        bad = member.reveal_tfn()[:-1] + str((int(member.reveal_tfn()[-1]) + 1) % 10)
        member.set_tfn(bad)
        member.save(update_fields=["tfn_ciphertext", "tfn_hash", "tfn_last3"])
    report = foundation(ato, fund)
    first = report.batches.get()
    assert received(ato, first) == 10
    failed = list(Transaction.objects.filter(batch=first, processed=False).order_by("pk"))
    assert len(failed) == 4 and {t.meaning for t in failed} == {Meaning.VALIDATION_ERROR}
    assert WorkItem.objects.filter(meaning=Meaning.VALIDATION_ERROR).count() == 4
    processed = list(Transaction.objects.filter(batch=first, processed=True))
    with pytest.raises(ValidationError, match="processed this transaction"):
        services.transactions_resubmit(user=ato.user, fund=fund, transactions=[processed[0], failed[0]])
    # Corrected, then resubmitted: the resubmission carries the four alone, with the members' current data.
    by_number = {f"B-{n}": p for n, p in enumerate(group)}
    for member in broken:
        person = by_number[member.member_number]
        services.member_change(user=ato.user, member=member, date_of_birth=person["birth_date"], tfn=person["tfn"])
    again = services.transactions_resubmit(user=ato.user, fund=fund, transactions=failed)
    settle(ato)
    resent = again.batches.get()
    assert received(ato, resent) == 4
    assert list(resent.transactions.values_list("resubmission_of", flat=True).order_by("resubmission_of")) == [
        t.pk for t in failed
    ]
    assert set(resent.transactions.values_list("processed", flat=True)) == {True}
    assert WorkItem.objects.filter(meaning=Meaning.VALIDATION_ERROR, state=ItemState.OPEN).count() == 0
    with pytest.raises(ValidationError, match="already been resubmitted"):
        services.transactions_resubmit(user=ato.user, fund=fund, transactions=failed[:1])


def test_096604_is_held_until_remediated_then_closed_under_the_other_holder_and_resubmitted(
    ato: Ato, fund: SuperFund
) -> None:
    holder, newcomer = people(ato, 2)
    import_members(ato.user, fund, member_file([row(holder, "H-1")]))
    foundation(ato, fund)
    # The fund's register now puts another person on the same account number (its own error).
    member = Member.objects.get()
    services.member_change(
        user=ato.user,
        member=member,
        family_name=newcomer["family_name"],
        given_names=newcomer["given_name"],
        date_of_birth=newcomer["birth_date"],
        tfn=newcomer["tfn"],
    )
    services.realtime_report_start(user=ato.user, fund=fund)
    settle(ato)
    item = WorkItem.objects.get(meaning=Meaning.OTHER_HOLDER)
    with pytest.raises(ValidationError, match="different holder"):
        services.transactions_resubmit(user=ato.user, fund=fund, transactions=[item.transaction])
    with pytest.raises(ValidationError):
        services.remediation_record(user=ato.user, item=item, remediation="closed_under_holder", note="", holder={})
    services.remediation_record(
        user=ato.user,
        item=item,
        remediation=WorkItem.Remediation.CLOSED_UNDER_HOLDER,
        note="",
        holder={
            "family_name": holder["family_name"],
            "given_names": holder["given_name"],
            "date_of_birth": holder["birth_date"],
        },
    )
    settle(ato)
    closing = Transaction.objects.exclude(holder={}).get()
    assert closing.event == "closed" and closing.processed and closing.holder["family_name"] == holder["family_name"]
    [account] = ato.query("SELECT * FROM reg_member_reports WHERE member_number = 'H-1'")
    assert account["status"] == "CLOSED"
    resubmit = services.transactions_resubmit(user=ato.user, fund=fund, transactions=[item.transaction])
    settle(ato)
    assert resubmit.batches.get().transactions.get().processed
    item.refresh_from_db()
    assert item.state == ItemState.RESOLVED


def test_a_batch_refused_whole_says_why_loses_nothing_and_is_resent_whole(today_at_ato: Ato) -> None:
    """The practice's ABN is not a fund at the ATO (FUND01): nothing is processed; once it is, the same accounts
    are sent again, each once."""
    ato = today_at_ato
    fund = services.fund_create(user=ato.user, name="Not Yet Super", abn=DEMO_ABN, usi=f"{DEMO_ABN}001")
    group = people(ato, 3)
    import_members(ato.user, fund, member_file([row(p, f"R-{n}") for n, p in enumerate(group)]))
    report = foundation(ato, fund)
    batch = report.batches.get()
    assert batch.state == BatchState.REFUSED and batch.refusal and "CMN.ATO" not in " ".join(batch.refusal)
    assert report.finished_at is not None
    unanswered = list(Transaction.objects.filter(batch=batch))
    assert len(unanswered) == 3 and {t.processed for t in unanswered} == {None} and not WorkItem.objects.exists()
    ato.sandbox.control("POST", "fund", json={"abn": DEMO_ABN, "name": "Not Yet Super"})
    again = services.transactions_resubmit(user=ato.user, fund=fund, transactions=unanswered)
    settle(ato)
    resent = again.batches.get()
    assert resent.state == BatchState.ANSWERED and received(ato, resent) == 3
    assert set(resent.transactions.values_list("meaning", flat=True)) == {Meaning.MATCHED}


def test_an_ato_outage_during_a_foundation_load_reports_every_account_exactly_once(
    ato: Ato, fund: SuperFund, settings: Any
) -> None:
    settings.MAAS_BATCH_SIZE = 4
    settings.GATEWAY_MAX_ATTEMPTS = 40
    group = people(ato, 10)
    import_members(ato.user, fund, member_file([row(p, f"O-{n}") for n, p in enumerate(group)]))
    ato.sandbox.faults(outage_seconds=1.5)
    report = foundation(ato, fund)
    batches = list(report.batches.order_by("pk"))
    assert [b.state for b in batches] == [BatchState.ANSWERED] * 3
    stats = ato.sandbox.stats()["applied"]
    ids = [OutboxMessage.objects.get(pk=b.question.message_id).message_id for b in batches if b.question]
    assert [stats.get(i) for i in ids] == [1, 1, 1]
    assert sum(received(ato, b) for b in batches) == 10
    assert len(ato.query("SELECT id FROM reg_member_reports WHERE member_number LIKE 'O-%'")) == 10
    assert Transaction.objects.filter(processed=True).count() == 10
    attempts = MessageAttempt.objects.filter(message__in=[b.question.message_id for b in batches if b.question])
    assert attempts.exclude(outcome="ok").exists(), "the outage was not met: the test proves nothing"


def test_a_second_foundation_load_while_one_runs_is_refused(ato: Ato, fund: SuperFund) -> None:
    import_members(ato.user, fund, member_file([row(people(ato, 1)[0], "A-1")]))
    services.foundation_load_start(user=ato.user, fund=fund)
    with pytest.raises(ValidationError, match="already under way"):
        services.foundation_load_start(user=ato.user, fund=fund)
    settle(ato)
    assert Report.objects.filter(kind=ReportKind.FOUNDATION).count() == 1


def test_after_the_load_a_new_member_and_its_changes_are_real_time_events(ato: Ato, fund: SuperFund) -> None:
    first, second = people(ato, 2)
    import_members(ato.user, fund, member_file([row(first, "E-1")]))
    foundation(ato, fund)
    import_members(ato.user, fund, member_file([row(second, "E-2", family_name="Nobody-Matches")]))
    member = Member.objects.get(member_number="E-1")
    services.member_change(user=ato.user, member=member, insurance=True)
    services.member_close(user=ato.user, member=member, on=timezone.localdate())
    pending = Transaction.objects.pending()
    assert sorted(pending.values_list("member__member_number", "event")) == [
        ("E-1", "changed"),
        ("E-1", "closed"),
        ("E-2", "opened"),
    ]
    report = services.realtime_report_start(user=ato.user, fund=fund)
    settle(ato)
    assert report.batches.get().size == 3 and not Transaction.objects.pending().exists()
    # Unmatched in real time with a TFN given: a "please resolve" notice with the 30-day clock.
    item = WorkItem.objects.get()
    assert (item.member.member_number, item.meaning) == ("E-2", Meaning.PLEASE_RESOLVE)
    with pytest.raises(ValidationError, match="no events waiting"):
        services.realtime_report_start(user=ato.user, fund=fund)
