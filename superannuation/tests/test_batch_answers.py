"""A MAAS batch's answer without the stand-in ATO: the results built by hand, stored on the batch's message as a
worker stores them, and handed to ``on_batch_answer`` through the gateway's settling (a stream of results, as the
handler's registration asks). Each transaction's outcome, meaning and TFN validation, the member's last validation
and first report, the work items with their clock, a resubmission's original item resolved, the batch and report
finished; and what an answer must leave alone. These are the fast tests that ``make mutate`` runs against the
handler (its module "super-answers")."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.utils import timezone

from ato_gateway import api
from ato_gateway.answers import answer_settle, outcome_of, reply_of
from ato_gateway.api import Item, Question, QuestionState, Reply, Subject
from ato_gateway.models import AttemptOutcome, MessageAttempt, MessageStatus
from ato_gateway.wire.documents import maas
from clients.tfn import decrypt_tfn
from portal.models import User
from superannuation import reporting
from superannuation.models import (
    Batch,
    BatchState,
    ItemState,
    Meaning,
    Member,
    Report,
    ReportKind,
    SuperFund,
    Transaction,
    WorkItem,
)
from tests.questions import event, fabricate_question

pytestmark = pytest.mark.django_db
_ids = count(1)
RECEIPT = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.get_current_timezone())
FOUNDATION, REALTIME = ReportKind.FOUNDATION, ReportKind.REALTIME


@pytest.fixture
def fund(agent: User) -> SuperFund:
    return SuperFund.objects.create(
        practice=agent.tenant, name="Harbour Super", abn="53004085616", usi="53004085616001"
    )


def _member(fund: SuperFund, **fields: Any) -> Member:
    member = Member(
        fund=fund,
        member_number=f"M{next(_ids):06}",
        family_name="ADAMS",
        given_names="Jane",
        date_of_birth=date(1980, 4, 1),
        opened_on=date(2020, 7, 1),
        **fields,
    )
    member.set_tfn("123456782")
    member.save()
    return member


def _batch(fund: SuperFund, kind: str = FOUNDATION, **fields: Any) -> Batch:
    report = Report.objects.create(fund=fund, kind=kind, total=1, built_at=timezone.now())
    return Batch.objects.create(fund=fund, kind=kind, report=report, state=BatchState.AWAITING, **fields)


def _sent(batch: Batch, **fields: Any) -> Transaction:
    values: dict[str, Any] = {"event": "opened", "event_on": date(2020, 7, 1), "tfn_given": True}
    values.update(fields)
    values.setdefault("member", _member(batch.fund))
    return Transaction.objects.create(batch=batch, transaction_id=f"T-{next(_ids)}", **values)


def _result(
    t: Transaction, processed: bool = True, tfn: str | None = "MATCHED", **fields: Any
) -> maas.TransactionResult:
    return maas.TransactionResult(transaction_id=t.transaction_id, processed=processed, tfn_validation=tfn, **fields)


def _asked(
    batch: Batch, results: list[maas.TransactionResult], *, events: list[dict[str, Any]] | None = None, **fields: Any
) -> Question:
    """The batch's question, waiting, its message holding the ATO's answer as a worker records it."""
    question = fabricate_question(
        practice=batch.fund.practice,
        by=None,
        purpose=reporting.PURPOSE,
        request=maas.SubmitRequest(transactions=[]),
        response=maas.SubmitResponse(results=results),
        events=events or [],
        about=Subject(reporting.SUBJECT, str(batch.pk), batch.fund.name),
        **fields,
    )
    Question.objects.filter(pk=question.pk).update(state=QuestionState.WAITING)
    question.refresh_from_db()
    batch.question = question
    batch.save(update_fields=["question"])
    return question


def _deliver(question: Question) -> None:
    message = question.message
    message.refresh_from_db()
    answer_settle(message, outcome_of(message))


def _stream(question: Question) -> Any:
    return reply_of(maas.SubmitResponse.SERVICE_ACTION, outcome_of(question.message), stream="results")


def _rows(batch: Batch) -> list[tuple[Any, ...]]:
    return list(
        Transaction.objects.filter(batch=batch)
        .order_by("pk")
        .values_list("processed", "tfn_validation", "meaning", "answered_at")
    )


def test_each_result_is_recorded_on_its_transaction_and_member_with_the_clock_from_the_pull(fund: SuperFund) -> None:
    batch = _batch(fund, receipt_at=RECEIPT)
    matched = _sent(batch)
    corrected = _sent(batch)
    refused = _sent(batch)
    quiet = _sent(batch, tfn_given=False)
    question = _asked(
        batch,
        [
            _result(matched),
            _result(corrected, tfn="CORRECTED", corrected_tfn="876543210"),
            _result(
                refused,
                processed=False,
                tfn="MATCHED",  # a code beside an unprocessed transaction is no validation
                items=[
                    maas.ResultItem(
                        "CMN.ATO.SPRMBRINFO.000001",
                        "Error",
                        None,
                        [maas.Parameter("CORRECTEDTFN", "123 456 782"), maas.Parameter("FIELD", "BirthD")],
                    )
                ],
            ),
            _result(quiet),
        ],
    )
    before = timezone.now()

    _deliver(question)

    after = timezone.now()
    batch.refresh_from_db()
    assert batch.state == BatchState.ANSWERED and batch.receipt_at == RECEIPT
    assert batch.pulled_at is not None and before <= batch.pulled_at <= after
    pulled = batch.pulled_at
    assert _rows(batch) == [
        (True, "matched", Meaning.MATCHED, pulled),
        (True, "corrected", Meaning.CORRECTED, pulled),
        (False, "", Meaning.VALIDATION_ERROR, pulled),
        (True, "matched", Meaning.MATCHED_NO_NOTICE, pulled),
    ]
    corrected.refresh_from_db()
    assert decrypt_tfn(corrected.corrected_tfn) == "876543210"
    assert Transaction.objects.exclude(pk=corrected.pk).filter(corrected_tfn="").count() == 3
    refused.refresh_from_db()
    # The TFN a parameter quotes is kept masked to its last three digits; a description missing is kept empty.
    assert refused.items == [
        {
            "code": "CMN.ATO.SPRMBRINFO.000001",
            "severity": "Error",
            "text": "",
            "parameters": {"CORRECTEDTFN": "*** *** 782", "FIELD": "BirthD"},
        }
    ]
    members = {m.pk: m for m in Member.objects.all()}
    assert [members[t.member_id].tfn_validation for t in (matched, corrected, refused, quiet)] == [
        "matched",
        "corrected",
        "",
        "matched",
    ]
    assert {m.reported_at for m in members.values()} == {RECEIPT}
    # A work item for each meaning that needs action, its clock from the pull, not the receipt.
    items = sorted(
        WorkItem.objects.values_list("transaction_id", "member_id", "fund_id", "meaning", "aware_at", "due_on")
    )
    assert items == [
        (corrected.pk, corrected.member_id, fund.pk, Meaning.CORRECTED, pulled, WorkItem.due_from(pulled)),
        (refused.pk, refused.member_id, fund.pk, Meaning.VALIDATION_ERROR, pulled, WorkItem.due_from(pulled)),
    ]
    report = Report.objects.get(pk=batch.report_id)
    assert report.finished_at is not None and before <= report.finished_at <= after


def test_unmatched_means_what_the_reports_kind_and_the_tfn_given_say(fund: SuperFund) -> None:
    foundation, realtime = _batch(fund, FOUNDATION), _batch(fund, REALTIME)
    in_load = _sent(foundation)
    given, not_given = _sent(realtime), _sent(realtime, tfn_given=False)
    _deliver(_asked(foundation, [_result(in_load, tfn="UNMATCHED")]))
    _deliver(_asked(realtime, [_result(given, tfn="UNMATCHED"), _result(not_given, tfn="UNMATCHED")]))

    meanings = dict(Transaction.objects.values_list("pk", "meaning"))
    assert [meanings[t.pk] for t in (in_load, given, not_given)] == [
        Meaning.UNMATCHED_FOUNDATION,
        Meaning.PLEASE_RESOLVE,
        Meaning.UNMATCHED,
    ]
    assert Member.objects.get(pk=given.member_id).tfn_validation == "unmatched"
    assert sorted(WorkItem.objects.values_list("meaning", flat=True)) == sorted(
        [Meaning.PLEASE_RESOLVE, Meaning.UNMATCHED]
    )


def test_the_members_validation_and_first_report_are_kept_where_the_answer_does_not_replace_them(
    fund: SuperFund,
) -> None:
    """A transaction reported under another holder (096604 remediated) is no validation of the member's TFN; an
    unprocessed one neither; a member reported before keeps its first report; with no receipt the pull is it."""
    batch = _batch(fund)
    earlier = timezone.now() - timedelta(days=400)
    held = _sent(batch, holder={"family_name": "BAKER"}, member=_member(fund, tfn_validation="unmatched"))
    unprocessed = _sent(batch, member=_member(fund, tfn_validation="matched", reported_at=earlier))
    fresh = _sent(batch)
    question = _asked(batch, [_result(held), _result(unprocessed, processed=False), _result(fresh, tfn=None)])

    _deliver(question)

    batch.refresh_from_db()
    assert batch.receipt_at is None and batch.pulled_at is not None
    members = {m.pk: m for m in Member.objects.all()}
    assert (members[held.member_id].tfn_validation, members[held.member_id].reported_at) == (
        "unmatched",
        batch.pulled_at,
    )
    assert (members[unprocessed.member_id].tfn_validation, members[unprocessed.member_id].reported_at) == (
        "matched",
        earlier,
    )
    assert members[fresh.member_id].tfn_validation == ""
    assert Transaction.objects.get(pk=held.pk).tfn_validation == "matched"


def test_the_receipt_comes_from_the_send_attempt_when_the_batch_has_none(fund: SuperFund) -> None:
    batch = _batch(fund)
    t = _sent(batch)
    question = _asked(batch, [_result(t)])
    MessageAttempt.objects.create(
        message=question.message, number=1, started_at=RECEIPT, duration_ms=1500, outcome=AttemptOutcome.OK
    )

    _deliver(question)

    batch.refresh_from_db()
    assert batch.receipt_at == RECEIPT + timedelta(milliseconds=1500)
    assert Member.objects.get(pk=t.member_id).reported_at == batch.receipt_at


def test_a_resubmission_processed_resolves_the_originals_item_and_only_then(fund: SuperFund) -> None:
    first = _batch(fund)
    original, still_wrong_original = _sent(first), _sent(first)
    for t in (original, still_wrong_original):
        Transaction.objects.filter(pk=t.pk).update(processed=False, meaning=Meaning.VALIDATION_ERROR)
        WorkItem.objects.create(
            fund=fund,
            member=t.member,
            transaction=t,
            meaning=Meaning.VALIDATION_ERROR,
            aware_at=RECEIPT,
            due_on=date(2026, 12, 2),
        )
    again = _batch(fund, REALTIME)
    fixed = _sent(again, member=original.member, resubmission_of=original)
    still_wrong = _sent(again, member=still_wrong_original.member, resubmission_of=still_wrong_original)

    _deliver(_asked(again, [_result(fixed), _result(still_wrong, processed=False)]))

    item = WorkItem.objects.get(transaction=original)
    pulled = Batch.objects.get(pk=again.pk).pulled_at
    assert (item.state, item.resolved_at, item.resolution) == (
        ItemState.RESOLVED,
        pulled,
        "Corrected and resubmitted; the ATO processed the resubmission.",
    )
    assert WorkItem.objects.get(transaction=still_wrong_original).state == ItemState.OPEN


def test_an_originals_item_resolved_already_keeps_its_own_resolution(fund: SuperFund) -> None:
    first = _batch(fund)
    original = _sent(first)
    Transaction.objects.filter(pk=original.pk).update(processed=False, meaning=Meaning.VALIDATION_ERROR)
    WorkItem.objects.create(
        fund=fund,
        member=original.member,
        transaction=original,
        meaning=Meaning.VALIDATION_ERROR,
        aware_at=RECEIPT,
        due_on=date(2026, 12, 2),
        state=ItemState.RESOLVED,
        resolved_at=RECEIPT,
        resolution="The member's date of birth was corrected with the member.",
    )
    again = _batch(fund, REALTIME)
    fixed = _sent(again, member=original.member, resubmission_of=original)

    _deliver(_asked(again, [_result(fixed)]))

    item = WorkItem.objects.get(transaction=original)
    assert (item.resolved_at, item.resolution) == (RECEIPT, "The member's date of birth was corrected with the member.")


def test_a_result_naming_another_batchs_transaction_changes_nothing_of_it(fund: SuperFund) -> None:
    ours, theirs = _batch(fund), _batch(fund)
    mine, other = _sent(ours), _sent(theirs)

    _deliver(_asked(ours, [_result(mine), _result(other)]))

    assert Transaction.objects.get(pk=other.pk).processed is None
    assert Member.objects.get(pk=other.member_id).tfn_validation == ""
    assert Transaction.objects.get(pk=mine.pk).processed is True


def test_a_batch_refused_whole_keeps_the_atos_words_and_processes_nothing(fund: SuperFund) -> None:
    batch = _batch(fund)
    t = _sent(batch)
    question = _asked(
        batch, [], events=[event("CMN.ATO.SPRMBRINFO.000100", "Error", "The fund is not registered for MAAS.")]
    )
    _deliver(question)

    batch.refresh_from_db()
    assert (batch.state, batch.pulled_at) == (BatchState.REFUSED, None)
    assert batch.refusal and "The fund is not registered for MAAS." in batch.refusal[0]
    assert Transaction.objects.get(pk=t.pk).processed is None and not WorkItem.objects.exists()
    assert Report.objects.get(pk=batch.report_id).finished_at is not None


def test_the_refusals_words_are_those_of_the_answer_handed_over(fund: SuperFund) -> None:
    """The handler words the reply it is given (decoded once by the gateway), not the message read again."""
    batch = _batch(fund)
    question = _asked(batch, [])
    refusal = Item("CMN.ATO.SPRMBRINFO.000100", "Error", "The fund is not registered for MAAS.")

    reporting.on_batch_answer(question, Reply(None, [refusal]))

    batch.refresh_from_db()
    assert batch.state == BatchState.REFUSED
    assert batch.refusal == [api.item_in_plain_words(refusal)]


def test_a_batch_never_lodged_fails_with_the_reason_and_a_receipt_kept(fund: SuperFund) -> None:
    batch = _batch(fund, receipt_at=RECEIPT)
    t = _sent(batch)
    question = _asked(batch, [_result(t)])
    message = question.message
    message.status, message.error_code, message.error_text = MessageStatus.FAILED, "HTTP", "Connection refused"
    message.set_response({})
    message.save()

    _deliver(question)

    batch.refresh_from_db()
    assert (batch.state, batch.receipt_at, batch.pulled_at) == (BatchState.FAILED, RECEIPT, None)
    question.refresh_from_db()
    assert batch.refusal == api.refusal_in_plain_words(question) and batch.refusal
    assert Transaction.objects.get(pk=t.pk).processed is None


def test_an_answer_without_its_results_is_no_answer(fund: SuperFund) -> None:
    """A reply with neither failure nor errors but no stream (a document missing) fails the batch: it may be sent
    again whole."""
    batch = _batch(fund)
    t = _sent(batch)
    question = _asked(batch, [_result(t)])

    reporting.on_batch_answer(question, Reply(None, []))

    assert Batch.objects.get(pk=batch.pk).state == BatchState.FAILED
    assert Transaction.objects.get(pk=t.pk).processed is None


def test_the_report_is_finished_only_when_built_and_every_batch_is_settled(fund: SuperFund) -> None:
    batch = _batch(fund)
    t = _sent(batch)
    for state in (BatchState.SENDING, BatchState.AWAITING):
        Batch.objects.create(fund=fund, kind=FOUNDATION, report=batch.report, state=state)
    unbuilt = _batch(fund)
    Report.objects.filter(pk=unbuilt.report_id).update(built_at=None)
    u = _sent(unbuilt)
    done = _batch(fund)
    finished = timezone.now() - timedelta(hours=1)
    Report.objects.filter(pk=done.report_id).update(finished_at=finished)
    d = _sent(done)

    _deliver(_asked(batch, [_result(t)]))
    assert Report.objects.get(pk=batch.report_id).finished_at is None  # one batch sending, one awaiting
    Batch.objects.filter(report=batch.report, state=BatchState.SENDING).update(state=BatchState.ANSWERED)
    reporting._finish_if_done(Report.objects.get(pk=batch.report_id))
    assert Report.objects.get(pk=batch.report_id).finished_at is None  # one still awaiting
    _deliver(_asked(unbuilt, [_result(u)]))
    assert Report.objects.get(pk=unbuilt.report_id).finished_at is None
    _deliver(_asked(done, [_result(d)]))
    assert Report.objects.get(pk=done.report_id).finished_at == finished


def test_only_a_batch_question_of_this_batch_is_applied(fund: SuperFund) -> None:
    """A question about something else, and one whose subject names a batch that is not its own, change nothing."""
    batch = _batch(fund)
    t = _sent(batch)
    question = _asked(batch, [_result(t)])
    Question.objects.filter(pk=question.pk).update(subject_type="other")
    _deliver(question)
    stray = _batch(fund)
    s = _sent(stray)
    misnamed = _asked(stray, [_result(s)])
    Batch.objects.filter(pk=stray.pk).update(question=None)
    reporting.on_batch_answer(misnamed, _stream(misnamed))
    # And a batch's own question whose subject names another batch: the two must agree.
    crossed = _batch(fund)
    c = _sent(crossed)
    crossed_question = _asked(crossed, [_result(c)])
    Question.objects.filter(pk=crossed_question.pk).update(subject_id=str(batch.pk))
    crossed_question.refresh_from_db()
    reporting.on_batch_answer(crossed_question, _stream(crossed_question))

    assert Transaction.objects.filter(processed__isnull=False).count() == 0
    assert set(Batch.objects.values_list("state", flat=True)) == {BatchState.AWAITING}


def test_a_batchs_answer_delivered_twice_changes_nothing(fund: SuperFund) -> None:
    """Issue 18, item 8: through the gateway's settling, then to the handler itself (as a resend after a handler
    failure would): no result, member, work item or state moves the second time."""
    batch = _batch(fund)
    t = _sent(batch)
    question = _asked(batch, [_result(t, tfn="CORRECTED", corrected_tfn="876543210")])
    _deliver(question)
    batch.refresh_from_db()
    before = (_rows(batch), list(WorkItem.objects.values_list("pk", "aware_at")), batch.pulled_at)
    Member.objects.filter(pk=t.member_id).update(tfn_validation="matched")  # changed since: must stay

    _deliver(question)
    question.refresh_from_db()
    reporting.on_batch_answer(question, _stream(question))

    batch.refresh_from_db()
    assert (_rows(batch), list(WorkItem.objects.values_list("pk", "aware_at")), batch.pulled_at) == before
    assert batch.state == BatchState.ANSWERED
    assert Member.objects.get(pk=t.member_id).tfn_validation == "matched"


def test_a_refused_batch_delivered_again_stays_refused(fund: SuperFund) -> None:
    batch = _batch(fund)
    t = _sent(batch)
    question = _asked(batch, [_result(t)])
    Batch.objects.filter(pk=batch.pk).update(state=BatchState.REFUSED)

    reporting.on_batch_answer(question, _stream(question))

    assert Batch.objects.get(pk=batch.pk).state == BatchState.REFUSED
    assert Transaction.objects.get(pk=t.pk).processed is None


def test_a_transaction_the_answer_does_not_name_waits_for_its_result(fund: SuperFund) -> None:
    """The results come a chunk at a time: a transaction of the batch not in this chunk is left for its own."""
    batch = _batch(fund)
    named, unnamed = _sent(batch), _sent(batch)

    _deliver(_asked(batch, [_result(named)]))

    assert Transaction.objects.get(pk=named.pk).processed is True
    assert Transaction.objects.get(pk=unnamed.pk).processed is None


def test_a_tfn_quoted_with_spaces_around_it_is_kept_masked_to_its_last_three_digits(fund: SuperFund) -> None:
    batch = _batch(fund)
    t = _sent(batch)
    quoted = maas.ResultItem(
        "CMN.ATO.SPRMBRINFO.000002", "Warning", "TFN", [maas.Parameter("CORRECTEDTFN", "876543210 ")]
    )

    reporting.on_batch_answer(_asked(batch, []), Reply(None, [], stream=[_result(t, items=[quoted])]))  # type: ignore[arg-type]

    [item] = Transaction.objects.get(pk=t.pk).items
    assert item["parameters"] == {"CORRECTEDTFN": "*** *** 210"}


def test_the_handlers_queries_grow_with_its_chunks_not_its_transactions(
    fund: SuperFund, django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed few statements, and one read of transactions (with their members) a chunk: the batch with its
    report, the transactions, the batch's save, the report's check and finish (the bulk writes go by COPY)."""
    monkeypatch.setattr(reporting, "CHUNK", 2)
    for size, queries in ((1, 5), (4, 6)):
        batch = _batch(fund, receipt_at=RECEIPT)
        sent = [_sent(batch) for _ in range(size)]
        question = _asked(batch, [_result(t, tfn="CORRECTED", corrected_tfn="876543210") for t in sent])
        reply = _stream(question)
        with django_assert_num_queries(queries):
            reporting.on_batch_answer(question, reply)
        assert Transaction.objects.filter(batch=batch, processed=True).count() == size


def test_only_this_batchs_report_is_finished(fund: SuperFund) -> None:
    batch, other = _batch(fund), _batch(fund)  # the other report built, its batch awaiting
    t = _sent(batch)

    _deliver(_asked(batch, [_result(t)]))

    assert Report.objects.get(pk=batch.report_id).finished_at is not None
    assert Report.objects.get(pk=other.report_id).finished_at is None


def test_a_report_finished_meanwhile_keeps_its_finish(fund: SuperFund) -> None:
    """The report read before another transaction finished it: its finish is not moved."""
    batch = _batch(fund)
    stale = Report.objects.get(pk=batch.report_id)
    finished = timezone.now() - timedelta(minutes=5)
    Report.objects.filter(pk=stale.pk).update(finished_at=finished)
    Batch.objects.filter(pk=batch.pk).update(state=BatchState.ANSWERED)

    reporting._finish_if_done(stale)

    assert Report.objects.get(pk=stale.pk).finished_at == finished
