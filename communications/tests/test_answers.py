"""Communications' answer handlers without the stand-in ATO: a CC Get document, a COMMPREF Get and a preference
change's Validate and Submit, each answer built by hand, stored on its message as a worker stores it and handed to
its handler (through the gateway's settling where delivery matters). What each answer records, what a failure says,
what it leaves alone (another practice's letter, another subject, a letter stored already), and that an answer
delivered twice changes nothing (issue 18, item 8). These are the fast tests that ``make mutate`` runs against the
handlers (its module "communications-answers")."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from ato_gateway import api
from ato_gateway.answers import answer_settle, outcome_of
from ato_gateway.api import Item, Question, QuestionState, Reply, Subject
from ato_gateway.wire.documents import cc, commpref
from ato_gateway.wire.documents.common import ClientIdentifier
from clients.models import Client, ClientKind
from communications import preferences, services
from communications.models import (
    DocumentState,
    DueSource,
    Letter,
    LetterDocument,
    Preference,
    PreferenceBulk,
    PreferenceChange,
    PreferenceChangeStatus,
    SyncPage,
    SyncRun,
    SyncStatus,
)
from communications.tests.support import letter, pdf
from portal.models import AuditEvent, Practice, User
from portal.sealing import unseal_bytes
from tests.questions import event, fabricate_question

pytestmark = pytest.mark.django_db
TFN = "123456782"
REFUSAL = [event("CMN.ATO.CC.000010", "Error", "The communication is not available.")]


@pytest.fixture
def client(practice: Practice) -> Client:
    client = Client(practice=practice, kind=ClientKind.INDIVIDUAL, family_name="Nguyen", given_names="Olivia")
    client.set_tfn(TFN)
    client.set_names()
    client.save()
    return client


def _waiting(question: Question) -> Question:
    """The question as the gateway finds it when the answer arrives: waiting, its message holding the answer."""
    Question.objects.filter(pk=question.pk).update(state=QuestionState.WAITING)
    question.refresh_from_db()
    return question


def _deliver(question: Question) -> None:
    message = question.message
    message.refresh_from_db()
    answer_settle(message, outcome_of(message))


def _audits(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


# --- CC Get: a letter's document ---


def _get(
    held: Letter, content: bytes = b"", *, name: str = "notice.pdf", media: str = "application/pdf", **kw: Any
) -> Question:
    response = None
    if "events" not in kw and kw.get("state", QuestionState.ANSWERED) == QuestionState.ANSWERED:
        response = cc.GetResponse(
            communication=cc.Communication(
                id=held.ato_id,
                client=ClientIdentifier.of(tfn=TFN),
                kind=held.kind,
                title=held.title,
                issued=held.issued,
            ),
            attachment=cc.Attachment(file_name=name, media_type=media, content=content),
        )
    return fabricate_question(
        practice=held.practice,
        by=None,
        purpose=services.DOCUMENT_PURPOSE,
        request=cc.GetRequest(id=held.ato_id),
        response=response,
        about=Subject(kw.pop("subject", services.LETTER_SUBJECT), str(held.pk), "letter"),
        **kw,
    )


def test_a_document_is_stored_sealed_with_the_due_date_it_states_and_found_by_its_words(practice: Practice) -> None:
    held = letter(
        practice, kind="DEBT", title="Director penalty notice", due=date(2026, 11, 22), due_source=DueSource.RULE
    )
    content = pdf("Unpaid charge.", "Pay by 21/12/2026 to avoid garnishee action.")  # the title is not in the text
    question = _waiting(_get(held, content))

    _deliver(question)

    stored = Letter.objects.get(pk=held.pk)
    assert (stored.document_state, stored.document_error) == (DocumentState.STORED, "")
    assert (stored.due, stored.due_source) == (date(2026, 12, 21), DueSource.LETTER)
    assert Letter.objects.filter(pk=held.pk, search="garnishee").exists()  # by its text
    assert Letter.objects.filter(pk=held.pk, search="director").exists()  # and by its title still
    [document] = LetterDocument.objects.filter(letter=held)
    assert unseal_bytes(document.content) == content and document.size == len(content)
    assert (document.file_name, document.media_type) == ("notice.pdf", "application/pdf")
    before = (LetterDocument.objects.count(), AuditEvent.objects.count())

    Letter.objects.filter(pk=held.pk).update(due=date(2026, 11, 22))  # would be read from the text again
    _deliver(question)  # delivered twice
    services.on_document(question, api.reply(question))  # and straight to the handler: the letter is stored

    assert (LetterDocument.objects.count(), AuditEvent.objects.count()) == before
    assert Letter.objects.get(pk=held.pk).due == date(2026, 11, 22)


def test_a_file_name_or_media_type_longer_than_its_column_is_cut_to_fit(practice: Practice) -> None:
    """The schema bounds both; a reply handed over without it (a schema loosened) still stores the document."""
    held = letter(practice)
    question = _get(held, pdf("Notice"))
    answer = api.reply(question).document
    assert answer is not None
    long = replace(answer, attachment=replace(answer.attachment, file_name="N" * 230, media_type="m" * 120))

    services.on_document(question, Reply(long, []))

    [document] = LetterDocument.objects.filter(letter=held)
    assert (document.file_name, document.media_type) == ("N" * 200, "m" * 100)


def test_a_document_that_states_no_date_keeps_the_rules_date(practice: Practice) -> None:
    held = letter(practice, due=date(2026, 11, 22), due_source=DueSource.RULE)

    services.on_document(*_answered(_get(held, pdf("Notice of assessment 2026", "Your refund is on its way."))))

    stored = Letter.objects.get(pk=held.pk)
    assert (stored.document_state, stored.due, stored.due_source) == (
        DocumentState.STORED,
        date(2026, 11, 22),
        DueSource.RULE,
    )


def _answered(question: Question) -> tuple[Question, Reply[Any]]:
    return question, api.reply(question)


def test_a_refused_get_says_why_in_plain_words_and_is_audited(practice: Practice) -> None:
    held = letter(practice)
    question = _waiting(_get(held, events=REFUSAL, state=QuestionState.REFUSED))

    _deliver(question)

    stored = Letter.objects.get(pk=held.pk)
    question.refresh_from_db()
    words = " ".join(api.refusal_in_plain_words(question, api.reply(question)))
    assert (stored.document_state, stored.document_error) == (DocumentState.FAILED, words)
    [audit] = _audits("communications.document_failed")
    assert (audit.object_id, audit.practice_id, audit.details) == (str(held.pk), practice.pk, {"reason": words})
    assert not LetterDocument.objects.exists()

    _deliver(question)  # delivered twice: one failure recorded
    assert len(_audits("communications.document_failed")) == 1


def test_a_refusal_is_worded_from_every_error_of_the_answer_handed_over_even_beside_a_document(
    practice: Practice,
) -> None:
    held = letter(practice)
    question = _get(held, pdf("Notice"))
    document = api.reply(question).document
    errors = [
        Item("CMN.ATO.CC.000010", "Error", "The communication is not available."),
        Item("CMN.ATO.CC.000011", "Error", "The client is not yours."),
    ]

    services.on_document(question, Reply(document, errors))

    stored = Letter.objects.get(pk=held.pk)
    assert stored.document_state == DocumentState.FAILED and not LetterDocument.objects.exists()
    assert stored.document_error == " ".join(api.item_in_plain_words(i) for i in errors)
    assert "The client is not yours." in stored.document_error


@pytest.mark.parametrize(
    ("code", "text", "gave_up", "words"),
    [
        (
            "HTTP",
            "503",
            False,
            "The ATO could not be reached to fetch this letter's document; Fetch again asks once more.",
        ),
        (
            "GATEWAY",
            "timeout",
            False,
            "The ATO could not be reached to fetch this letter's document; Fetch again asks once more.",
        ),
        ("", "", True, "The ATO could not be reached to fetch this letter's document; Fetch again asks once more."),
        ("EBMS:0004", "Other error", False, "The document could not be fetched (EBMS:0004: Other error)."),
    ],
)
def test_a_get_that_failed_says_whether_the_ato_could_be_reached(
    practice: Practice, code: str, text: str, gave_up: bool, words: str
) -> None:
    held = letter(practice)
    failure = f"{code}: {text}" if code else "failed"
    reply: Reply[Any] = Reply(None, [], failure, code or "dead", gave_up=gave_up)

    services.on_document(_get(held, state=QuestionState.FAILED, failure_code=code or "dead", failure=failure), reply)

    stored = Letter.objects.get(pk=held.pk)
    assert (stored.document_state, stored.document_error) == (DocumentState.FAILED, words)


def test_a_failure_quoting_a_tfn_is_kept_without_it(practice: Practice) -> None:
    held = letter(practice)
    before, after = "X" * 480, "Y" * 100  # a long failure: the TFN falls inside what is kept of it
    failure = f"{before} TFN {TFN} {after}"
    reply: Reply[Any] = Reply(None, [], failure, "SOAP")

    services.on_document(_get(held, state=QuestionState.FAILED, failure_code="SOAP", failure=failure), reply)

    stored = Letter.objects.get(pk=held.pk)
    assert TFN not in stored.document_error and len(stored.document_error) == 500
    assert stored.document_error.startswith(f"The document could not be fetched ({before[:100]}")
    [audit] = _audits("communications.document_failed")
    assert audit.details == {"reason": f"The document could not be fetched ({failure})."[:200]}


def test_a_failure_quoting_a_tfn_is_audited_without_it(practice: Practice) -> None:
    """The audit trail is append-only: a TFN the failure quotes must never reach it in clear (nor spaced out)."""
    held = letter(practice)
    failure = f"SOAP: the TFN {TFN} was refused, and 123 456 782 again"
    reply: Reply[Any] = Reply(None, [], failure, "SOAP")

    services.on_document(_get(held, state=QuestionState.FAILED, failure_code="SOAP", failure=failure), reply)

    [audit] = _audits("communications.document_failed")
    assert audit.details["reason"].startswith("The document could not be fetched (SOAP: the TFN ")
    assert TFN not in audit.details["reason"] and "123 456 782" not in audit.details["reason"]


def test_a_document_that_is_not_a_pdf_fails_the_letter_with_words(practice: Practice) -> None:
    held = letter(practice)

    services.on_document(*_answered(_get(held, b"not a pdf at all")))

    stored = Letter.objects.get(pk=held.pk)
    assert stored.document_state == DocumentState.FAILED
    assert stored.document_error.startswith("The ATO sent a document for this letter that is not a readable PDF (")
    assert not LetterDocument.objects.exists()


def test_only_a_letter_question_of_the_letters_practice_is_applied(
    practice: Practice, other_practice: Practice
) -> None:
    ours, theirs = letter(practice), letter(other_practice)
    content = pdf("Notice")
    services.on_document(*_answered(_get(ours, content, subject="other")))
    misdirected = _get(ours, content)
    Question.objects.filter(pk=misdirected.pk).update(practice=other_practice)
    misdirected.refresh_from_db()
    services.on_document(misdirected, api.reply(misdirected))
    services.on_document(*_answered(_get(theirs, content, subject="other")))

    assert set(Letter.objects.values_list("document_state", flat=True)) == {DocumentState.WAITING}
    assert not LetterDocument.objects.exists() and not AuditEvent.objects.exists()


# --- COMMPREF Get ---


def _preference(**fields: Any) -> commpref.Preference:
    values: dict[str, Any] = {"channel": "POST", "email": None, "practice_default": False, "updated": date(2026, 3, 4)}
    values.update(fields)
    return commpref.Preference(**values)


def _get_answer(**fields: Any) -> commpref.GetResponse:
    return commpref.GetResponse(preference=_preference(**fields))


def _pref_get(practice: Practice, subject_id: str, answer: commpref.Preference | None, **kw: Any) -> Question:
    return fabricate_question(
        practice=practice,
        by=None,
        purpose=services.PREFERENCE_PURPOSE,
        request=commpref.GetRequest(client=ClientIdentifier.of(tfn=TFN) if subject_id != "default" else None),
        response=commpref.GetResponse(preference=answer) if answer is not None else None,
        about=Subject(kw.pop("subject", services.PREFERENCE_SUBJECT), subject_id, "preference"),
        **kw,
    )


def _held(practice: Practice, client: Client | None) -> dict[str, Any]:
    p = Preference.objects.get(practice=practice, client=client)
    return {"channel": p.channel, "email": p.email, "own": p.own, "updated": p.updated, "categories": p.categories}


def test_a_clients_preference_is_kept_as_the_ato_answered_and_checked_now(practice: Practice, client: Client) -> None:
    answer = _preference(
        channel="EMAIL",
        email="olivia@example.com",
        categories=[
            commpref.CategoryPreference(category="ITX", channel="ELEC", practice_default=False),
            commpref.CategoryPreference(
                category="AS", channel="EMAIL", email="books@example.com", practice_default=True
            ),
        ],
    )
    before = timezone.now()

    services.on_preference(*_answered(_pref_get(practice, str(client.pk), answer)))

    assert _held(practice, client) == {
        "channel": "EMAIL",
        "email": "olivia@example.com",
        "own": True,
        "updated": date(2026, 3, 4),
        "categories": {
            "ITX": {"channel": "ELEC", "email": "", "default": False},
            "AS": {"channel": "EMAIL", "email": "books@example.com", "default": True},
        },
    }
    checked = Preference.objects.get(client=client).checked_at
    assert before <= checked <= timezone.now()


def test_a_client_on_the_practice_default_is_kept_as_not_its_own_and_asked_again_replaces(
    practice: Practice, client: Client
) -> None:
    services.on_preference(*_answered(_pref_get(practice, str(client.pk), _preference(practice_default=True))))
    assert _held(practice, client)["own"] is False
    services.on_preference(*_answered(_pref_get(practice, str(client.pk), _preference(channel="ELEC"))))
    assert Preference.objects.filter(client=client).count() == 1
    assert _held(practice, client)["own"] is True and _held(practice, client)["channel"] == "ELEC"


def test_the_practice_default_is_kept_as_its_own(practice: Practice, client: Client) -> None:
    services.on_preference(
        *_answered(_pref_get(practice, "default", _preference(channel="ELEC", practice_default=True)))
    )

    assert _held(practice, None) == {
        "channel": "ELEC",
        "email": "",
        "own": True,
        "updated": date(2026, 3, 4),
        "categories": {},
    }
    assert not Preference.objects.filter(client=client).exists()


def test_the_practice_default_is_kept_beside_the_clients_own(practice: Practice, client: Client) -> None:
    services.on_preference(
        *_answered(_pref_get(practice, str(client.pk), _preference(channel="EMAIL", email="o@x.au")))
    )
    services.on_preference(
        *_answered(_pref_get(practice, "default", _preference(channel="ELEC", practice_default=True)))
    )
    services.on_preference(
        *_answered(_pref_get(practice, "default", _preference(channel="POST", practice_default=True)))
    )

    assert _held(practice, client)["channel"] == "EMAIL"
    assert _held(practice, None)["channel"] == "POST"
    assert Preference.objects.count() == 2


def test_a_preference_get_refused_or_about_something_else_keeps_what_was_held(
    practice: Practice, other_practice: Practice, client: Client
) -> None:
    services.on_preference(*_answered(_pref_get(practice, str(client.pk), _preference())))
    held = _held(practice, client)
    services.on_preference(
        *_answered(_pref_get(practice, str(client.pk), None, events=REFUSAL, state=QuestionState.REFUSED))
    )
    services.on_preference(
        *_answered(_pref_get(practice, str(client.pk), _preference(channel="ELEC"), subject="other"))
    )
    services.on_preference(_pref_get(practice, str(client.pk), None), Reply(None, []))
    # An answer that refuses and still carries a document is a refusal.
    refusal = Item("CMN.ATO.COMMPREF.000001", "Error", "Refused.")
    services.on_preference(_pref_get(practice, str(client.pk), None), Reply(_get_answer(channel="ELEC"), [refusal]))
    # Another practice's question naming our client's id keeps nothing for either practice.
    services.on_preference(*_answered(_pref_get(other_practice, str(client.pk), _preference(channel="ELEC"))))

    assert _held(practice, client) == held
    assert Preference.objects.count() == 1


def test_a_preference_for_a_client_removed_since_is_not_kept(practice: Practice, client: Client) -> None:
    removed = Client(practice=practice, kind=ClientKind.INDIVIDUAL, family_name="Gone")
    removed.save()
    question = _pref_get(practice, str(removed.pk), _preference())
    removed.delete()

    services.on_preference(question, api.reply(question))

    assert not Preference.objects.exists()


def test_a_preference_get_delivered_twice_changes_nothing(practice: Practice, client: Client) -> None:
    question = _waiting(_pref_get(practice, str(client.pk), _preference()))
    _deliver(question)
    Preference.objects.filter(client=client).update(channel="ELEC")  # would be put back by a second run

    _deliver(question)

    assert _held(practice, client)["channel"] == "ELEC"


# --- a preference change's Validate and Submit ---


def _change(practice: Practice, user: User, client: Client, *, submit_when_validated: bool = False) -> PreferenceChange:
    bulk = PreferenceBulk.objects.create(
        practice=practice, created_by=user, channel="ELEC", submit_when_validated=submit_when_validated
    )
    return PreferenceChange.objects.create(practice=practice, bulk=bulk, client=client)


def _change_question(
    change: PreferenceChange, *, submit: bool, answer: commpref.Preference | None, **kw: Any
) -> Question:
    request_cls = commpref.SubmitRequest if submit else commpref.ValidateRequest
    response_cls = commpref.SubmitResponse if submit else commpref.ValidateResponse
    question = fabricate_question(
        practice=change.practice,
        by=None,
        purpose=preferences.PURPOSE,
        request=request_cls(client=ClientIdentifier.of(tfn=TFN), channel="ELEC"),
        response=response_cls(preference=answer) if answer is not None else None,
        about=Subject(preferences.SUBJECT, str(change.pk), "change"),
        **kw,
    )
    field = "submit_question" if submit else "validate_question"
    PreferenceChange.objects.filter(pk=change.pk).update(**{field: question})
    return question


def _status(change: PreferenceChange) -> str:
    return PreferenceChange.objects.get(pk=change.pk).status


def test_a_validation_answered_validates_and_changes_no_preference(
    practice: Practice, agent: User, client: Client
) -> None:
    change = _change(practice, agent, client)

    preferences.on_preference_change(
        *_answered(_change_question(change, submit=False, answer=_preference(channel="ELEC")))
    )

    assert _status(change) == PreferenceChangeStatus.VALIDATED
    assert not Preference.objects.exists()


def test_a_submit_answered_is_accepted_and_keeps_the_preference_the_ato_answered(
    practice: Practice, agent: User, client: Client
) -> None:
    change = _change(practice, agent, client)
    question = _waiting(_change_question(change, submit=True, answer=_preference(channel="ELEC")))

    _deliver(question)

    assert _status(change) == PreferenceChangeStatus.ACCEPTED
    assert _held(practice, client)["channel"] == "ELEC"
    PreferenceChange.objects.filter(pk=change.pk).update(status=PreferenceChangeStatus.SUBMITTING)
    Preference.objects.filter(client=client).update(channel="POST")

    _deliver(question)  # delivered twice: neither the change nor the preference moves

    assert _status(change) == PreferenceChangeStatus.SUBMITTING
    assert _held(practice, client)["channel"] == "POST"


@pytest.mark.parametrize("submit", [False, True])
def test_a_refusal_refuses_and_a_failure_fails_the_change(
    practice: Practice, agent: User, client: Client, submit: bool
) -> None:
    refused, failed = _change(practice, agent, client), _change(practice, agent, client)

    preferences.on_preference_change(
        *_answered(_change_question(refused, submit=submit, answer=None, events=REFUSAL, state=QuestionState.REFUSED))
    )
    question = _change_question(
        failed, submit=submit, answer=None, state=QuestionState.FAILED, failure_code="HTTP", failure="HTTP: 503"
    )
    preferences.on_preference_change(question, Reply(None, [], "HTTP: 503", "HTTP"))

    assert (_status(refused), _status(failed)) == (PreferenceChangeStatus.REFUSED, PreferenceChangeStatus.FAILED)
    assert not Preference.objects.exists()


def test_a_validated_row_of_a_bulk_that_submits_when_validated_is_queued_for_submitting(
    practice: Practice,
    agent: User,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(preferences, "preference_bulk_submit_enqueue", queued.append)
    waits, goes = _change(practice, agent, client), _change(practice, agent, client, submit_when_validated=True)

    for change, submit, expected in ((waits, False, []), (goes, False, [goes.bulk_id]), (goes, True, [])):
        queued.clear()
        with django_capture_on_commit_callbacks(execute=True):
            preferences.on_preference_change(*_answered(_change_question(change, submit=submit, answer=_preference())))
        assert queued == expected, (change, submit)


def test_a_queue_that_cannot_be_reached_after_the_commit_loses_no_answer(
    practice: Practice,
    agent: User,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The job that submits a bulk's validated rows is queued after the commit, robustly: Redis down then leaves the
    row validated (the sweeper and the page submit it later), and the answer's transaction is not failed by it."""

    def down(bulk_id: int) -> None:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(preferences, "preference_bulk_submit_enqueue", down)
    change = _change(practice, agent, client, submit_when_validated=True)

    with django_capture_on_commit_callbacks(execute=True):
        preferences.on_preference_change(*_answered(_change_question(change, submit=False, answer=_preference())))

    assert _status(change) == PreferenceChangeStatus.VALIDATED


def test_a_validations_answer_reads_the_change_with_its_bulk_in_one_query(
    practice: Practice, agent: User, client: Client, django_assert_num_queries: Any
) -> None:
    change = _change(practice, agent, client)
    question = _change_question(change, submit=False, answer=_preference())
    reply = api.reply(question)

    with django_assert_num_queries(2):  # the change with its bulk, and its status saved
        preferences.on_preference_change(question, reply)


def test_an_answer_about_no_change_of_ours_changes_nothing(practice: Practice, agent: User, client: Client) -> None:
    change = _change(practice, agent, client)
    question = _change_question(change, submit=True, answer=_preference())
    PreferenceChange.objects.filter(pk=change.pk).update(submit_question=None)
    PreferenceChange.objects.filter(pk=change.pk).delete()

    preferences.on_preference_change(question, api.reply(question))

    assert not Preference.objects.exists()


# --- CC List: a page of the sync ---

DAY = date(2026, 11, 30)


def _letters(count: int, first: int = 1) -> list[cc.Communication]:
    return [
        cc.Communication(
            id=f"L{n:05}",
            client=ClientIdentifier.of(tfn=TFN),
            kind="NOA",
            title=f"Notice of assessment {n}",
            issued=DAY,
        )
        for n in range(first, first + count)
    ]


def _run(practice: Practice, user: User | None = None, **fields: Any) -> SyncRun:
    return SyncRun.objects.create(practice=practice, started_by=user, issued_from=DAY, issued_to=DAY, **fields)


def _page(run: SyncRun, letters: list[cc.Communication], continuation: str | None = None, **kw: Any) -> Question:
    """The run's page in flight, waiting, its message holding the ATO's answer."""
    answered = kw.get("state", QuestionState.ANSWERED) == QuestionState.ANSWERED and "events" not in kw
    question = fabricate_question(
        practice=run.practice,
        by=run.started_by,
        purpose=services.LIST_PURPOSE,
        request=cc.ListRequest(issued_from=DAY, issued_to=DAY),
        response=cc.ListResponse(communications=letters, continuation=continuation) if answered else None,
        about=Subject(kw.pop("subject", services.SUBJECT), str(run.pk), "page"),
        **kw,
    )
    SyncRun.objects.filter(pk=run.pk).update(current_question=question)
    return _waiting(question)


def _list_reply(question: Question) -> Reply[Any]:
    from ato_gateway.answers import reply_of

    return reply_of(question.service_action, outcome_of(question.message), stream="communications")


def _counts(run: SyncRun) -> tuple[Any, ...]:
    run.refresh_from_db()
    return (
        run.status,
        run.pages,
        run.pages_stored,
        run.letters_seen,
        run.letters_new,
        run.current_question_id,
        run.continuation,
    )


def _unstored(run: SyncRun) -> list[int]:
    return list(SyncPage.objects.filter(run=run, stored_at=None).order_by("number").values_list("pk", flat=True))


def _store(run: SyncRun) -> None:
    """What the storing jobs the page handler queued do, here and now, page by page."""
    for page_id in _unstored(run):
        assert services.sync_page_store(page_id=page_id)


def test_a_page_with_more_to_come_adds_its_letters_and_asks_for_the_next(practice: Practice, admin: User) -> None:
    run = _run(practice, admin)
    question = _page(run, _letters(3), continuation="page-2")

    _deliver(question)

    run.refresh_from_db()  # read, and the next page asked for; its letters wait for their storing job
    assert (run.status, run.pages, run.pages_stored, run.letters_seen, run.letters_new) == (
        SyncStatus.RUNNING,
        1,
        0,
        3,
        0,
    )
    assert not Letter.objects.exists() and len(_unstored(run)) == 1 and not run.paged
    _store(run)
    run.refresh_from_db()
    assert (run.status, run.pages, run.pages_stored, run.letters_seen, run.letters_new) == (
        SyncStatus.RUNNING,
        1,
        1,
        3,
        3,
    )
    assert run.finished_at is None and run.continuation == "page-2"
    following = run.current_question
    assert following is not None and following.pk != question.pk and following.purpose == services.LIST_PURPOSE
    assert (following.subject_type, following.subject_id) == (services.SUBJECT, str(run.pk))
    assert api.question_request(following).continuation == "page-2"  # type: ignore[attr-defined]
    assert sorted(Letter.objects.values_list("ato_id", flat=True)) == ["L00001", "L00002", "L00003"]


def test_the_last_page_finishes_the_run_and_audits_its_counts(practice: Practice, admin: User) -> None:
    letter(practice, ato_id="L00001")  # held from an earlier sync: seen, not new
    run = _run(practice, admin, pages=1, pages_stored=1, letters_seen=2, letters_new=2)
    before = timezone.now()

    _deliver(_page(run, _letters(3)))

    run.refresh_from_db()  # read to its end, but not finished before its last page is stored
    assert (run.status, run.paged, run.pages, run.pages_stored) == (SyncStatus.RUNNING, True, 2, 1)
    assert not _audits("communications.synced")
    _store(run)
    run.refresh_from_db()
    assert (run.status, run.pages, run.letters_seen, run.letters_new) == (SyncStatus.DONE, 2, 5, 4)
    assert run.finished_at is not None and before <= run.finished_at <= timezone.now()
    [audit] = _audits("communications.synced")
    assert (audit.object_id, audit.practice_id, audit.details) == (
        str(run.pk),
        practice.pk,
        {"pages": 2, "letters": 5, "new": 4},
    )
    assert Letter.objects.count() == 3


def test_a_page_delivered_twice_or_after_the_run_moved_on_changes_nothing(practice: Practice, admin: User) -> None:
    run = _run(practice, admin)
    question = _page(run, _letters(2), continuation="page-2")
    _deliver(question)
    _store(run)
    before = (
        _counts(run),
        Letter.objects.count(),
        Question.objects.count(),
        AuditEvent.objects.count(),
        SyncPage.objects.count(),
    )

    _deliver(question)  # through the gateway's settling
    services.on_list_page(question, _list_reply(question))  # straight to the handler: not the page in flight

    assert (
        _counts(run),
        Letter.objects.count(),
        Question.objects.count(),
        AuditEvent.objects.count(),
        SyncPage.objects.count(),
    ) == before


def test_a_page_is_applied_only_to_its_own_running_run(
    practice: Practice, other_practice: Practice, admin: User
) -> None:
    stopped = _run(practice, admin, status=SyncStatus.FAILED)
    stopped_page = _page(stopped, _letters(1))
    other = _run(practice, admin, status=SyncStatus.DONE)
    misnamed = _page(other, _letters(1, 10), subject="other")
    SyncRun.objects.filter(pk=other.pk).update(status=SyncStatus.RUNNING)
    theirs = _run(other_practice)
    foreign = _page(theirs, _letters(1, 20))
    Question.objects.filter(pk=foreign.pk).update(practice=practice)
    foreign.refresh_from_db()

    for question in (stopped_page, misnamed, foreign):
        services.on_list_page(question, _list_reply(question))

    assert not Letter.objects.exists() and not AuditEvent.objects.exists() and not SyncPage.objects.exists()
    assert [_counts(r)[1] for r in (stopped, other, theirs)] == [0, 0, 0]


def test_a_refused_page_stops_the_run_with_the_atos_words_and_what_was_kept(practice: Practice, admin: User) -> None:
    run = _run(practice, admin, pages=2, letters_seen=7)
    second = event("CMN.ATO.GEN.000002", "Error", "The request period is too long.")
    question = _page(run, [], events=[*REFUSAL, second], state=QuestionState.REFUSED)
    before = timezone.now()

    _deliver(question)

    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED and run.finished_at is not None and before <= run.finished_at
    refused = " ".join(api.item_in_plain_words(i) for i in api.reply(question).errors)
    assert "The request period is too long." in refused
    assert run.error == (
        f"The ATO refused page 3 of its list of letters: {refused} "
        "The 7 letters read before it are kept; Resume carries on from page 3."
    )
    [audit] = _audits("communications.sync_failed")
    assert (audit.object_id, audit.practice_id, audit.details) == (str(run.pk), practice.pk, {"page": 3})
    assert not Letter.objects.exists()


@pytest.mark.parametrize(
    ("failure", "gave_up", "words"),
    [
        (
            "HTTP: 503",
            False,
            "The ATO could not be reached: page 1 of its list of letters was retried and then given up.",
        ),
        (
            "GATEWAY: no token",
            False,
            "The ATO could not be reached: page 1 of its list of letters was retried and then given up.",
        ),
        ("failed", True, "The ATO could not be reached: page 1 of its list of letters was retried and then given up."),
        ("SOAP: bad", False, "Page 1 of the letters could not be fetched from the ATO (SOAP: bad)."),
    ],
)
def test_a_failed_page_says_whether_the_ato_could_be_reached(
    practice: Practice, admin: User, failure: str, gave_up: bool, words: str
) -> None:
    run = _run(practice, admin)
    question = _page(run, [], state=QuestionState.FAILED, failure_code="X", failure=failure)

    services.on_list_page(question, Reply(None, [], failure, "X", gave_up=gave_up))

    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    assert run.error == f"{words} The 0 letters read before it are kept; Resume carries on from page 1."


def test_a_page_with_no_list_or_quoting_a_tfn_stops_the_run_without_it(practice: Practice, admin: User) -> None:
    run = _run(practice, admin)
    services.on_list_page(_page(run, []), Reply(None, []))
    run.refresh_from_db()
    assert run.error.startswith("The ATO refused page 1 of its list of letters: The ATO sent no list.")
    again = _run(practice, admin)
    failure = f"SOAP: TFN {TFN} " + "Z" * 2100
    services.on_list_page(_page(again, []), Reply(None, [], failure, "SOAP"))
    again.refresh_from_db()
    assert TFN not in again.error and len(again.error) == 2000


class _BrokenPage:
    """A page whose stream breaks after its first letters, as a truncated or garbled answer does."""

    document = None

    def __init__(self, letters: list[cc.Communication]) -> None:
        self.letters = letters

    def __iter__(self) -> Any:
        yield from self.letters
        raise api.DocumentError("the list ended in the middle of a letter")


def test_a_page_that_breaks_half_way_keeps_nothing_of_it_and_says_so(practice: Practice, admin: User) -> None:
    run = _run(practice, admin, pages=1, letters_seen=4)
    question = _page(run, [])

    services.on_list_page(question, Reply(None, [], stream=_BrokenPage(_letters(600))))  # type: ignore[arg-type]

    run.refresh_from_db()
    assert (run.status, run.pages, run.letters_seen) == (SyncStatus.FAILED, 1, 4)
    assert run.error == (
        "Page 2 of the ATO's list could not be read (the list ended in the middle of a letter). "
        "Resume asks for it again."
    )
    assert not Letter.objects.exists() and not SyncPage.objects.exists()


def test_the_letters_not_passed_on_yet_follow_the_preference_kept(practice: Practice, client: Client) -> None:
    """A client's answer moves that client's letters; the practice default's moves the unmatched ones. A letter
    passed on already keeps its record."""
    waiting = letter(practice, client=client, to_practice=True)
    told = letter(practice, client=client, to_practice=True, told_on=date(2026, 11, 2))
    unmatched = letter(practice, to_practice=True)

    services.on_preference(*_answered(_pref_get(practice, str(client.pk), _preference(channel="POST"))))

    assert [Letter.objects.get(pk=x.pk).to_practice for x in (waiting, told, unmatched)] == [False, True, True]

    services.on_preference(
        *_answered(_pref_get(practice, "default", _preference(channel="POST", practice_default=True)))
    )

    assert Letter.objects.get(pk=unmatched.pk).to_practice is False


def test_the_last_page_matches_the_practices_letters_and_then_asks_for_their_documents(
    practice: Practice,
    other_practice: Practice,
    admin: User,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Letters unmatched until the register held their TFN are matched when a sync finishes: the practice's only.
    Their documents are asked for once the run's transaction commits."""
    from clients.tfn import tfn_lookup_hash

    ours = letter(practice, tfn_hash=tfn_lookup_hash(TFN))
    theirs = letter(other_practice, tfn_hash=tfn_lookup_hash(TFN))
    [elsewhere] = Client.objects.filter(pk=client.pk)
    elsewhere.pk, elsewhere.practice = None, other_practice
    elsewhere.save()
    asked: list[int] = []
    monkeypatch.setattr(services, "documents_ask_enqueue", asked.append)
    run = _run(practice, admin)

    monkeypatch.setattr(services, "_store_enqueue", lambda page_id, sealed="": None)
    with django_capture_on_commit_callbacks(execute=True):
        _deliver(_page(run, []))
        assert Letter.objects.get(pk=ours.pk).client_id is None  # not before the last page is stored
        _store(run)

    assert Letter.objects.get(pk=ours.pk).client_id == client.pk
    assert Letter.objects.get(pk=theirs.pk).client_id is None
    assert asked == [practice.pk]


def test_a_page_is_applied_to_its_own_run_among_the_practices_others_a_chunk_at_a_time(
    practice: Practice, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The practice's earlier and later runs (finished) are not this page's; the page's letters go in chunks, a
    statement each."""
    _run(practice, admin, status=SyncStatus.DONE, started_at=timezone.now() - timedelta(days=1))
    run = _run(practice, admin)
    _run(practice, admin, status=SyncStatus.DONE, started_at=timezone.now() + timedelta(minutes=1))
    chunks: list[int] = []
    apply = services._apply

    def spy(practice: Practice, chunk: list[services.Listed]) -> int:
        chunks.append(len(chunk))
        return apply(practice, chunk)

    monkeypatch.setattr(services, "_apply", spy)
    monkeypatch.setattr(services, "CHUNK", 2)

    _deliver(_page(run, _letters(5)))
    _store(run)

    run.refresh_from_db()
    assert (run.status, run.pages, run.letters_new) == (SyncStatus.DONE, 1, 5)
    assert chunks == [2, 2, 1]


def test_a_page_refused_beside_its_list_is_a_refusal(practice: Practice, admin: User) -> None:
    run = _run(practice, admin)
    question = _page(run, _letters(2))
    listed = _list_reply(question)
    refusal = Item("CMN.ATO.CC.000020", "Error", "The period is too long.")

    services.on_list_page(question, Reply(None, [refusal], stream=listed.stream))

    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED and not Letter.objects.exists()


def test_the_runs_practice_comes_with_the_run(practice: Practice, admin: User) -> None:
    """No query of its own for the practice, whatever the page's outcome (a refusal here)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run = _run(practice, admin)
    question = _page(run, [], events=REFUSAL, state=QuestionState.REFUSED)
    reply = api.reply(question)
    with CaptureQueriesContext(connection) as captured:
        services.on_list_page(question, reply)
    assert SyncRun.objects.get(pk=run.pk).status == SyncStatus.FAILED
    assert not [q["sql"] for q in captured if q["sql"].startswith("SELECT") and 'FROM "portal_practice"' in q["sql"]]


class _Letters(list[cc.Communication]):
    """A page's letters with no document read around them (a stream that kept none): no continuation."""

    document = None


def test_a_page_without_its_document_is_the_last(practice: Practice, admin: User) -> None:
    run = _run(practice, admin)
    question = _page(run, _letters(2))

    services.on_list_page(question, Reply(None, [], stream=_Letters(_letters(2))))  # type: ignore[arg-type]
    _store(run)

    run.refresh_from_db()
    assert (run.status, run.pages, Letter.objects.count()) == (SyncStatus.DONE, 1, 2)


def test_a_pages_storing_run_twice_adds_nothing_and_counts_once(practice: Practice, admin: User) -> None:
    """A storing job queued again (Resume, or a job RQ ran twice) finds its page stored and leaves it."""
    run = _run(practice, admin)
    _deliver(_page(run, _letters(3), continuation="page-2"))
    [page_id] = _unstored(run)
    assert services.sync_page_store(page_id=page_id)
    before = (_counts(run), Letter.objects.count(), AuditEvent.objects.count())

    assert not services.sync_page_store(page_id=page_id)

    assert (_counts(run), Letter.objects.count(), AuditEvent.objects.count()) == before
    assert (run.pages_stored, run.letters_new, Letter.objects.count()) == (1, 3, 3)


def test_the_run_finishes_only_once_its_last_page_to_store_is_stored(practice: Practice, admin: User) -> None:
    """Pages are stored by jobs on two workers, so the last page read can be stored before an earlier one: the run
    finishes (and its documents are asked for) only when no page is left to store."""
    run = _run(practice, admin)
    _deliver(_page(run, _letters(2), continuation="page-2"))
    _deliver(_page(run, _letters(2, first=10)))  # the next page's answer, in place of the one asked for
    first, last = _unstored(run)

    assert services.sync_page_store(page_id=last)
    run.refresh_from_db()
    assert (run.status, run.paged, run.pages, run.pages_stored) == (SyncStatus.RUNNING, True, 2, 1)
    assert not _audits("communications.synced")

    assert services.sync_page_store(page_id=first)
    run.refresh_from_db()
    assert (run.status, run.pages_stored, run.letters_seen, run.letters_new) == (SyncStatus.DONE, 2, 4, 4)
    assert len(_audits("communications.synced")) == 1


def test_a_page_that_cannot_be_stored_stops_the_run_and_resume_stores_it(
    practice: Practice, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(services, "_store_enqueue", lambda page_id, sealed="": queued.append(page_id))
    run = _run(practice, admin)
    _deliver(_page(run, _letters(3)))
    [page_id] = queued

    def broken(practice: Practice, chunk: list[services.Listed]) -> int:
        raise api.DocumentError("the stored answer could not be read")

    with monkeypatch.context() as patched:
        patched.setattr(services, "_apply", broken)
        assert not services.sync_page_store(page_id=page_id)

    run.refresh_from_db()
    words = (
        "Page 1 of the ATO's list could not be stored (the stored answer could not be read). Resume stores it again."
    )
    assert (run.status, run.error, run.pages, run.pages_stored) == (SyncStatus.FAILED, words, 1, 0)
    assert SyncPage.objects.get(pk=page_id).error == words and not Letter.objects.exists()
    [audit] = _audits("communications.sync_failed")
    assert audit.details == {"page": 1}
    questions = Question.objects.count()

    resumed = services.sync_resume(run=run, actor=admin)

    assert resumed.status == SyncStatus.RUNNING and queued == [page_id, page_id]
    assert Question.objects.count() == questions  # read to its end already: nothing asked again
    assert services.sync_page_store(page_id=page_id)
    run.refresh_from_db()
    assert (run.status, run.error, run.pages_stored, run.letters_new) == (SyncStatus.DONE, "", 1, 3)
    assert Letter.objects.count() == 3


def test_a_page_whose_storing_job_was_lost_makes_the_run_stuck_and_resume_queues_it_again(
    practice: Practice, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed while storing, or Redis down when the job was queued: the page waits for ever, so after
    STORE_PATIENCE the run shows Resume, which queues the page again and leaves the page in flight alone."""
    from communications.models import STORE_PATIENCE

    queued: list[int] = []
    monkeypatch.setattr(services, "_store_enqueue", lambda page_id, sealed="": queued.append(page_id))
    run = _run(practice, admin)
    _deliver(_page(run, _letters(3), continuation="page-2"))
    run = SyncRun.objects.select_related("current_question").get(pk=run.pk)
    in_flight = run.current_question_id
    assert not run.is_stuck
    SyncPage.objects.filter(pk__in=queued).update(read_at=timezone.now() - STORE_PATIENCE - timedelta(seconds=1))
    run = SyncRun.objects.select_related("current_question").get(pk=run.pk)
    assert run.is_stuck

    services.sync_resume(run=run, actor=admin)

    run.refresh_from_db()
    assert len(queued) == 2 and queued[0] == queued[1] and run.current_question_id == in_flight
    assert services.sync_page_store(page_id=queued[1]) and not SyncRun.objects.get(pk=run.pk).is_stuck


def test_the_handler_hands_its_storing_job_the_pages_letters_sealed(
    practice: Practice, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that the job need not decode the ATO's answer again; sealed, since they carry TFNs and wait in Redis."""
    queued: list[tuple[int, str]] = []
    monkeypatch.setattr(services, "_store_enqueue", lambda page_id, sealed="": queued.append((page_id, sealed)))
    run = _run(practice, admin)
    _deliver(_page(run, _letters(3), continuation="page-2"))
    [(page_id, sealed)] = queued
    assert TFN not in sealed and "Notice of assessment" not in sealed
    assert services._unseal_rows(sealed) == [services.listed(item) for item in _letters(3)]

    def unread(question: Question) -> Reply[Any]:
        raise AssertionError("the answer was decoded again")

    monkeypatch.setattr(services.api, "reply", unread)
    assert services.sync_page_store(page_id=page_id, sealed=sealed)

    run.refresh_from_db()
    assert (run.pages_stored, run.letters_new) == (1, 3)
    assert sorted(Letter.objects.values_list("ato_id", "title")) == [
        (f"L{n:05}", f"Notice of assessment {n}") for n in (1, 2, 3)
    ]


def test_the_progress_bar_shows_the_share_of_the_range_read_and_never_goes_back(practice: Practice) -> None:
    run = SyncRun(practice=practice, issued_from=date(2026, 1, 1), issued_to=date(2026, 4, 11))  # 100 days
    run.continuation, run.pages, run.pages_stored = "2026-02-20.L1", 10, 10  # half read, all stored
    assert run.percent == 50
    run.continuation, run.pages = "2026-02-22.L2", 11  # the next page read, its storing queued
    assert run.percent == 52
    run.paged, run.pages_stored = True, 10  # read to its end, a page still to store
    assert run.percent == 99  # until the run is finished
    run.status = SyncStatus.DONE
    assert run.percent == 100


def test_a_run_a_worker_of_the_version_before_paged_on_finishes(practice: Practice, admin: User) -> None:
    """Upgraded with a run in flight: the migration counts the pages stored so far, and until its container is
    recreated a worker of the version before stores one more page itself, counting it read but not as stored by a
    job. The run still finishes once its last page is stored (not when the counts agree, which they never would)."""
    run = _run(practice, admin, pages=2, pages_stored=1, letters_seen=4, letters_new=4, continuation="page-3")

    _deliver(_page(run, _letters(2, first=10)))  # the last page, read by this version
    _store(run)

    run.refresh_from_db()
    assert (run.status, run.pages, run.pages_stored, run.letters_new) == (SyncStatus.DONE, 3, 3, 6)


def test_a_run_read_to_its_end_with_nothing_left_to_store_is_stuck_until_resume_finishes_it(
    practice: Practice, admin: User
) -> None:
    run = _run(practice, admin, pages=2, pages_stored=1, paged=True)
    assert SyncRun.objects.get(pk=run.pk).is_stuck
    assert services.sync_resume(run=run, actor=admin).status == SyncStatus.DONE


def test_a_storing_job_waiting_its_turn_is_not_taken_for_lost(
    practice: Practice, admin: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """A busy queue (every practice's nightly sync at once) keeps a page's storing job waiting past STORE_PATIENCE:
    while the job is queued in Redis the run is not stuck; once it is gone from Redis, it is."""
    import django_rq

    from communications.models import STORE_PATIENCE, store_job_id

    queued: list[int] = []
    monkeypatch.setattr(services, "_store_enqueue", lambda page_id, sealed="": queued.append(page_id))
    run = _run(practice, admin)
    _deliver(_page(run, _letters(3)))  # the last page: only its storing is left
    [page_id] = queued
    SyncPage.objects.filter(pk=page_id).update(read_at=timezone.now() - STORE_PATIENCE - timedelta(seconds=1))
    queue = django_rq.get_queue("high")
    with django_capture_on_commit_callbacks(execute=True):  # the queue pushes a job once its transaction commits
        queue.enqueue("communications.jobs.sync_page_store", page_id, "", job_id=store_job_id(page_id))
    job = queue.fetch_job(store_job_id(page_id))
    assert job is not None

    assert not SyncRun.objects.get(pk=run.pk).is_stuck
    job.delete()
    assert SyncRun.objects.get(pk=run.pk).is_stuck


def test_a_submits_answer_reads_the_changes_practice_with_it(practice: Practice, agent: User, client: Client) -> None:
    """The change comes with its practice (the preference kept is the practice's): no query of the practice's own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    change = _change(practice, agent, client)
    question = _change_question(change, submit=True, answer=_preference(channel="ELEC"))
    reply = api.reply(question)
    with CaptureQueriesContext(connection) as captured:
        preferences.on_preference_change(question, reply)
    assert _held(practice, client)["channel"] == "ELEC"
    assert not [q["sql"] for q in captured if q["sql"].startswith("SELECT") and 'FROM "portal_practice"' in q["sql"]]


def test_try_again_keeps_the_outcome_of_an_answer_whose_recording_had_failed(
    practice: Practice, agent: User, client: Client
) -> None:
    """The ATO's answer to a Submit arrived, but recording it failed (the gateway's HANDLER failure): Try again
    hands the stored answer to the handler at once, and the change then stands as the ATO answered, not as waiting
    for an answer that will never come again."""
    from ato_gateway.models import MessageStatus, OutboxMessage

    change = _change(practice, agent, client)
    question = _change_question(change, submit=True, answer=_preference(channel="ELEC"))
    OutboxMessage.objects.filter(pk=question.message_id).update(
        status=MessageStatus.FAILED, error_code="HANDLER", error_text="recording failed"
    )
    Question.objects.filter(pk=question.pk).update(state=QuestionState.FAILED, failure_code="HANDLER")
    PreferenceChange.objects.filter(pk=change.pk).update(status=PreferenceChangeStatus.FAILED)

    assert preferences.preference_bulk_resume(user=agent, bulk=change.bulk) == 1

    assert _status(change) == PreferenceChangeStatus.ACCEPTED
    assert _held(practice, client)["channel"] == "ELEC"


def test_try_again_asks_the_others_when_one_stored_answer_still_cannot_be_recorded(
    practice: Practice, agent: User, client: Client
) -> None:
    """One client's stored answer whose handler fails again (here its subject no longer names a change) stays
    failed on its own; Try again still carries on for the other clients, rather than failing the page for all."""
    from ato_gateway.models import MessageStatus, OutboxMessage

    change = _change(practice, agent, client)
    other = PreferenceChange.objects.create(practice=practice, bulk=change.bulk, client=client)
    good = _change_question(change, submit=True, answer=_preference(channel="ELEC"))
    broken = _change_question(other, submit=True, answer=_preference(channel="ELEC"))
    Question.objects.filter(pk=broken.pk).update(subject_id="not a change")
    for question in (good, broken):
        OutboxMessage.objects.filter(pk=question.message_id).update(
            status=MessageStatus.FAILED, error_code="HANDLER", error_text="recording failed"
        )
        Question.objects.filter(pk=question.pk).update(state=QuestionState.FAILED, failure_code="HANDLER")
    PreferenceChange.objects.filter(pk__in=[change.pk, other.pk]).update(status=PreferenceChangeStatus.FAILED)

    assert preferences.preference_bulk_resume(user=agent, bulk=change.bulk) == 1

    assert (_status(change), _status(other)) == (PreferenceChangeStatus.ACCEPTED, PreferenceChangeStatus.FAILED)
    assert Question.objects.get(pk=broken.pk).state == QuestionState.FAILED
    assert OutboxMessage.objects.get(pk=broken.message_id).status == MessageStatus.FAILED
