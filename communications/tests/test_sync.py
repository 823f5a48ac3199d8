"""The letters sync against the real stand-in ATO: CC List over every client of the practice, paged and streamed
through the real gateway and worker, each new letter's document fetched with CC Get and stored sealed; and the ways
it fails (the ATO down mid-sync, a document that will not download, a PDF that cannot be read)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from ato_gateway import api
from ato_gateway.api import Question
from ato_gateway.services import outbox_send_one
from ato_gateway.wire.documents import cc
from ato_gateway.wire.documents.common import ClientIdentifier
from clients.models import Client, ClientGroup
from communications import services
from communications.models import DocumentState, DueSource, Letter, LetterDocument, SyncPage, SyncRun, SyncStatus
from communications.tests.support import client_from_ato, letter, pdf
from portal.apps import CRON_JOBS
from portal.models import AuditEvent, User
from portal.sealing import unseal_bytes
from tests.ato_fixtures import AGENT_TAN, Ato, redeliver
from tests.conftest import run_worker_burst
from tests.gateway_fixtures import pump
from tests.questions import fabricate_question

pytestmark = pytest.mark.django_db(transaction=True)
TODAY = date(2026, 11, 30)  # the stand-in ATO's business date in the fixture


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "PAGE_SIZE", 25)
    monkeypatch.setattr(services, "CHUNK", 10)


@pytest.fixture
def few_letters(ato: Ato) -> Ato:
    """Two or three letters a client, so that a sync and its documents run in seconds."""
    ato.regenerate(
        seed=7,
        taxpayers=200,
        agents=[
            {
                "tan": AGENT_TAN,
                "abn": "53004085616",
                "name": ato.practice.name,
                "kind": "TAX",
                "clients": 30,
                "letters_per_client": 2,
            },
        ],
    )
    return ato


def covered(ato: Ato, issued_from: date = date(2021, 11, 30)) -> list[dict[str, Any]]:
    """The letters the practice's current links cover, worked out here from the ATO's register."""
    return ato.query(
        "SELECT c.id, c.kind, c.title, c.issued_date, t.tfn, t.id AS taxpayer_id FROM reg_communications c "
        "JOIN reg_taxpayers t ON t.id = c.taxpayer_id WHERE c.issued_date BETWEEN ? AND ? AND EXISTS (SELECT 1 "
        "FROM reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? AND l.taxpayer_id = c.taxpayer_id "
        "AND l.end_date IS NULL AND (l.level = 'CLIENT' OR (l.level = 'ACCOUNT' AND l.account_id = c.account_id)))",
        issued_from.isoformat(),
        TODAY.isoformat(),
        AGENT_TAN,
    )


def taxpayer(ato: Ato, taxpayer_id: int) -> dict[str, Any]:
    return ato.query("SELECT * FROM reg_taxpayers WHERE id = ?", taxpayer_id)[0]


def finished(run: SyncRun) -> SyncRun:
    pump(lambda: SyncRun.objects.get(pk=run.pk).status != SyncStatus.RUNNING, timeout=120)
    run.refresh_from_db()
    return run


def documents_settled() -> None:
    pump(lambda: not Letter.objects.filter(document_state=DocumentState.WAITING).exists(), timeout=120)


def test_a_sync_lists_every_letter_matches_owns_and_stores_each_document_sealed(
    few_letters: Ato, admin: User, agent: User, small_pages: None
) -> None:
    ato = few_letters
    expected = covered(ato)
    assert len(expected) > 2 * services.PAGE_SIZE  # more than two pages
    taxpayers = sorted({row["taxpayer_id"] for row in expected})
    in_register = {t: client_from_ato(ato.practice, taxpayer(ato, t)) for t in taxpayers[: len(taxpayers) // 2]}
    looked_after = next(iter(in_register.values()))
    group = ClientGroup.objects.create(practice=ato.practice, name="Payroll")
    group.clients.add(looked_after)
    group.staff.add(agent)

    run = finished(services.sync_start(practice=ato.practice, actor=admin, today=TODAY))
    assert run.status == SyncStatus.DONE and run.error == ""
    assert run.pages == -(-len(expected) // services.PAGE_SIZE) and run.letters_seen == len(expected)
    assert run.letters_new == len(expected) and run.issued_from == date(2021, 11, 30)
    letters = {letter.ato_id: letter for letter in Letter.objects.all()}
    assert set(letters) == {str(row["id"]) for row in expected}
    for row in expected:
        got = letters[str(row["id"])]
        assert (got.kind, got.title, got.issued.isoformat()) == (row["kind"], row["title"], row["issued_date"])
        client = in_register.get(row["taxpayer_id"])
        assert got.client_id == (client.pk if client else None)
        assert got.tfn_last3 == row["tfn"][-3:] and got.name
        assert got.due == got.issued + timedelta(days=services.DUE_DAYS[row["kind"]])
        assert got.due_source == DueSource.RULE
        assert got.owner_id == (agent.pk if client == looked_after else None)

    documents_settled()
    assert Letter.objects.filter(document_state=DocumentState.STORED).count() == len(expected)
    one = LetterDocument.objects.select_related("letter").first()
    assert one is not None
    content = unseal_bytes(one.content)
    assert content.startswith(b"%PDF-") and one.letter.title in services.pdf_text(content)
    assert one.size == len(content)
    with connection.cursor() as cursor:  # every column holds a Fernet token (base64, no "."), never the PDF
        cursor.execute(
            "SELECT count(*) FROM communications_letterdocument WHERE content LIKE %s OR content NOT LIKE %s",
            ["%PDF-1.%", "gAAAAA%"],
        )
        assert cursor.fetchone() == (0,)
    assert AuditEvent.objects.filter(action="communications.synced").count() == 1


def test_the_next_sync_starts_where_the_last_ended_and_adds_nothing_twice(
    few_letters: Ato, admin: User, small_pages: None
) -> None:
    first = finished(services.sync_start(practice=few_letters.practice, actor=admin, today=TODAY - timedelta(days=3)))
    before = Letter.objects.count()
    second = finished(services.sync_start(practice=few_letters.practice, today=TODAY))
    assert second.issued_from == first.issued_to - services.OVERLAP and second.started_by is None
    assert Letter.objects.count() == len(covered(few_letters)) >= before
    assert Letter.objects.values("ato_id").distinct().count() == Letter.objects.count()


def _page_reply(question: Question) -> Any:
    from ato_gateway.answers import outcome_of, reply_of

    return reply_of(question.service_action, outcome_of(question.message), stream="communications")


def test_a_page_delivered_twice_changes_nothing(few_letters: Ato, admin: User, small_pages: None) -> None:
    run = finished(services.sync_start(practice=few_letters.practice, actor=admin, today=TODAY))
    pages = list(Question.objects.filter(purpose=services.LIST_PURPOSE).order_by("pk"))
    assert len(pages) == run.pages >= 3
    before = (Letter.objects.count(), Question.objects.count(), run.letters_seen)
    for question in pages:
        redeliver(question.message)  # through the gateway's own settling
    with transaction.atomic():  # and straight to the handler, as a late duplicate would reach it
        for question in pages:
            services.on_list_page(question, _page_reply(question))
    for page in SyncPage.objects.filter(run=run):  # and each page's storing job run again
        assert not services.sync_page_store(page_id=page.pk)
    run.refresh_from_db()
    assert (Letter.objects.count(), Question.objects.count(), run.letters_seen) == before


def test_the_ato_down_mid_sync_stops_plainly_and_resume_carries_on_without_losing_a_page(
    few_letters: Ato, admin: User, small_pages: None, settings: Any
) -> None:
    settings.GATEWAY_MAX_ATTEMPTS = 3
    run = services.sync_start(practice=few_letters.practice, actor=admin, today=TODAY)
    assert run.current_question is not None
    outbox_send_one(run.current_question.message_id, worker="test")  # page 1 arrives
    few_letters.sandbox.faults(outage_seconds=300)
    try:
        run = finished(run)
    finally:
        few_letters.sandbox.clear_faults()
    assert run.status == SyncStatus.FAILED and run.pages == 1 and run.letters_seen == services.PAGE_SIZE
    assert run.error.startswith("The ATO could not be reached: page 2 of its list of letters")
    assert "Resume carries on from page 2" in run.error
    assert Letter.objects.count() == services.PAGE_SIZE  # page 1 kept whole, nothing of page 2

    run = finished(services.sync_resume(run=run, actor=admin))
    assert run.status == SyncStatus.DONE and run.error == ""
    assert Letter.objects.count() == len(covered(few_letters)) == run.letters_seen
    assert AuditEvent.objects.filter(action="communications.sync_resumed").count() == 1


def test_one_sync_at_a_time_and_the_nightly_one_for_every_practice(few_letters: Ato, admin: User) -> None:
    first = services.sync_start(practice=few_letters.practice, actor=admin, today=TODAY)
    assert services.sync_start(practice=few_letters.practice).pk == first.pk
    assert services.sync_nightly() == [first.pk]
    assert finished(first).status == SyncStatus.DONE
    jobs = {job["func"]: job.get("cron") for job in CRON_JOBS}
    assert jobs["communications.jobs.sync_nightly"] == "0 2 * * *"
    assert "communications.jobs.letters_rematch" in jobs and "communications.jobs.digest_daily" in jobs


def test_a_refused_list_stops_the_sync_in_plain_words(few_letters: Ato, admin: User) -> None:
    run = SyncRun.objects.create(practice=few_letters.practice, started_by=admin, issued_from=TODAY, issued_to=TODAY)
    with transaction.atomic():
        services._ask(run, "not-a-continuation")  # the ATO refuses a continuation it did not issue
    run = finished(run)
    assert run.status == SyncStatus.FAILED and run.error.startswith("The ATO refused page 1 of its list of letters")
    assert "CMN.ATO" not in run.error


def test_a_document_that_will_not_download_says_why_and_can_be_fetched_again(few_letters: Ato, admin: User) -> None:
    unknown = letter(few_letters.practice, ato_id="999999999", document_state=DocumentState.FAILED)
    services.letter_document_refetch(user=admin, letter=unknown)
    unknown.refresh_from_db()
    assert unknown.document_state == DocumentState.WAITING
    documents_settled()
    unknown.refresh_from_db()
    assert unknown.document_state == DocumentState.FAILED and unknown.document_error
    assert "CMN.ATO" not in unknown.document_error
    assert not LetterDocument.objects.filter(letter=unknown).exists()
    with pytest.raises(services.LetterError):
        services.letter_document_open(user=admin, letter=unknown)
    assert AuditEvent.objects.filter(action="communications.document_failed").count() == 1

    real = covered(few_letters)[0]
    unknown.ato_id = str(real["id"])
    unknown.save()
    services.letter_document_refetch(user=admin, letter=unknown)
    documents_settled()
    unknown.refresh_from_db()
    assert unknown.document_state == DocumentState.STORED and unknown.document_error == ""
    with pytest.raises(services.LetterError):  # stored: nothing to fetch again
        services.letter_document_refetch(user=admin, letter=unknown)


def _answer_with(practice: Any, admin: User, held: Letter, content: bytes) -> Question:
    return fabricate_question(
        practice=practice,
        by=admin,
        purpose=services.DOCUMENT_PURPOSE,
        request=cc.GetRequest(id=held.ato_id),
        response=cc.GetResponse(
            communication=cc.Communication(
                id=held.ato_id,
                client=ClientIdentifier.of(tfn="123456782"),
                kind=held.kind,
                title=held.title,
                issued=held.issued,
            ),
            attachment=cc.Attachment(file_name="x.pdf", media_type="application/pdf", content=content),
        ),
        about=api.Subject(services.LETTER_SUBJECT, str(held.pk), "letter"),
    )


@pytest.mark.parametrize("content", [b"%PDF-1.7\n garbage that is not a PDF", b"<html>not a pdf</html>"])
def test_a_corrupt_pdf_is_not_stored_and_says_so(practice: Any, admin: User, content: bytes) -> None:
    held = letter(practice)
    question = _answer_with(practice, admin, held, content)
    with transaction.atomic():
        services.on_document(question, api.reply(question))
    held.refresh_from_db()
    assert held.document_state == DocumentState.FAILED
    assert held.document_error.startswith("The ATO sent a document for this letter that is not a readable PDF")
    assert not LetterDocument.objects.exists()


def test_the_due_date_a_letter_states_wins_over_the_rule(practice: Any, admin: User) -> None:
    held = letter(practice, kind="DEBT", issued=date(2026, 11, 2), due=date(2026, 11, 16))
    stated = pdf("Australian Taxation Office", "Overdue account", "Please pay by 21 December 2026 to avoid interest.")
    question = _answer_with(practice, admin, held, stated)
    with transaction.atomic():
        services.on_document(question, api.reply(question))
        services.on_document(question, api.reply(question))  # delivered twice: stored once
    held.refresh_from_db()
    assert (held.due, held.due_source, held.document_state) == (date(2026, 12, 21), DueSource.LETTER, "stored")
    assert unseal_bytes(LetterDocument.objects.get(letter=held).content) == stated


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("Due date: 3 March 2027", date(2027, 3, 3)),
        ("Please respond by 14/01/2027.", date(2027, 1, 14)),
        ("You must lodge by\n28 February 2027", date(2027, 2, 28)),
        ("Issued 2 November 2026. Keep this notice.", None),
        ("Due date: 31/02/2027", None),
    ],
)
def test_due_dates_in_a_letters_text(text: str, due: date | None) -> None:
    assert services.due_in_text(text) == due


def test_unmatched_letters_are_matched_when_the_register_gains_the_client(
    practice: Any, agent: User, admin: User
) -> None:
    from clients.tfn import tfn_lookup_hash

    waiting = letter(practice, tfn_hash=tfn_lookup_hash("123456782"), tfn_last3="782")
    bulk = letter(practice, tfn_hash=tfn_lookup_hash("876543210"), tfn_last3="210")
    group = ClientGroup.objects.create(practice=practice, name="Payroll")
    group.staff.add(agent)
    client = Client(practice=practice, family_name="Citizen", given_names="Jane")
    client.set_tfn("123456782")
    with transaction.atomic():  # one at a time (added, linked): the save's signal matches it once it commits
        client.save()
        group.clients.add(client)
    waiting.refresh_from_db()
    assert waiting.client_id == client.pk and waiting.owner_id == agent.pk

    imported = Client(practice=practice, organisation_name="Acme Pty Ltd", kind="company")
    imported.set_tfn("876543210")
    Client.objects.bulk_create([imported])  # as an import writes: no signal
    bulk.refresh_from_db()
    assert bulk.client_id is None
    assert services.letters_rematch() == 1  # the scheduler's ten-minute job
    bulk.refresh_from_db()
    assert bulk.client_id == imported.pk and bulk.owner_id is None
    assert services.letters_rematch() == 0


def test_a_page_delivered_again_while_the_next_is_in_flight_changes_nothing(
    few_letters: Ato, admin: User, small_pages: None
) -> None:
    run = services.sync_start(practice=few_letters.practice, actor=admin, today=TODAY)
    first = run.current_question
    assert first is not None
    outbox_send_one(first.message_id, worker="test")  # page 1 read; page 2 asked
    run.refresh_from_db()
    assert run.pages == 1 and run.current_question_id != first.pk
    before = (Letter.objects.count(), Question.objects.count(), run.letters_seen, run.current_question_id)
    redeliver(first.message)  # the gateway settles an answer once
    with transaction.atomic():  # and the handler, reached again, finds page 1 is not the page in flight
        services.on_list_page(first, _page_reply(first))
    run.refresh_from_db()
    assert (Letter.objects.count(), Question.objects.count(), run.letters_seen, run.current_question_id) == before


class _BrokenPage:
    """A page whose stream breaks after its first letters, as a truncated or garbled answer does."""

    document = None

    def __init__(self, letters: list[cc.Communication]) -> None:
        self.letters = letters

    def __iter__(self) -> Any:
        yield from self.letters
        raise api.DocumentError("the list ended in the middle of a letter")


def test_a_page_that_breaks_half_way_leaves_nothing_of_it(practice: Any, admin: User, small_pages: None) -> None:
    run = SyncRun.objects.create(practice=practice, started_by=admin, issued_from=TODAY, issued_to=TODAY)
    question = fabricate_question(
        practice=practice,
        by=admin,
        purpose=services.LIST_PURPOSE,
        request=cc.ListRequest(issued_from=TODAY, issued_to=TODAY),
        response=cc.ListResponse(),
        about=api.Subject(services.SUBJECT, str(run.pk), "page"),
    )
    SyncRun.objects.filter(pk=run.pk).update(current_question=question)
    letters = [
        cc.Communication(
            id=str(n), client=ClientIdentifier.of(tfn="123456782"), kind="NOA", title=f"Letter {n}", issued=TODAY
        )
        for n in range(services.CHUNK * 2)  # two whole chunks are applied before it breaks
    ]
    reply: api.Reply[cc.ListResponse] = api.Reply(document=None, items=[], stream=_BrokenPage(letters))  # type: ignore[arg-type]
    with transaction.atomic():
        services.on_list_page(question, reply)
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED and run.error.startswith("Page 1 of the ATO's list could not be read")
    assert (Letter.objects.count(), run.letters_seen, run.letters_new, run.pages) == (0, 0, 0, 0)


def test_an_import_matches_the_letters_waiting_for_its_clients(practice: Any, admin: User) -> None:
    """An import writes clients in bulk (no save signals); the event that closes it re-matches the letters."""
    import csv
    import io

    from clients.services import import_run, import_start, import_upload
    from clients.testdata import make_client_rows
    from clients.tfn import tfn_lookup_hash

    rows = make_client_rows(3, seed=5)
    waiting = letter(practice, tfn_hash=tfn_lookup_hash(rows[1]["tfn"]), tfn_last3=rows[1]["tfn"][-3:])
    other = letter(practice, tfn_hash=tfn_lookup_hash("123456782"), tfn_last3="782")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    job = import_upload(user=admin, filename="clients.csv", raw=out.getvalue().encode())
    import_start(user=admin, job=job)
    import_run(job_id=job.pk)
    imported = Client.objects.get(practice=practice, tfn_hash=tfn_lookup_hash(rows[1]["tfn"]))
    waiting.refresh_from_db()
    other.refresh_from_db()
    assert waiting.client_id == imported.pk and other.client_id is None


def test_a_letter_the_practice_is_no_longer_linked_for_says_so_in_plain_words(ato: Ato, admin: User) -> None:
    from tests.ato_fixtures import OTHER_AGENT_TAN

    theirs = ato.query(
        "SELECT c.id FROM reg_communications c WHERE EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents a ON "
        "a.id = l.agent_id WHERE a.tan = ? AND l.taxpayer_id = c.taxpayer_id) AND NOT EXISTS (SELECT 1 FROM "
        "reg_links l JOIN reg_agents a ON a.id = l.agent_id WHERE a.tan = ? AND l.taxpayer_id = c.taxpayer_id "
        "AND l.end_date IS NULL) ORDER BY c.id LIMIT 1",
        OTHER_AGENT_TAN,
        AGENT_TAN,
    )[0]
    held = letter(ato.practice, ato_id=str(theirs["id"]), document_state=DocumentState.FAILED)
    services.letter_document_refetch(user=admin, letter=held)
    documents_settled()
    held.refresh_from_db()
    assert held.document_state == DocumentState.FAILED and "CMN.ATO" not in held.document_error
    question = Question.objects.filter(purpose=services.DOCUMENT_PURPOSE).get()
    assert [i.code for i in api.reply(question).errors] == ["CMN.ATO.AUTH.002"]
    assert held.document_error == " ".join(api.refusal_in_plain_words(question)) != ""
    assert not LetterDocument.objects.exists()


def test_documents_are_asked_for_after_the_last_page_so_no_page_queues_behind_them(
    few_letters: Ato, admin: User, small_pages: None
) -> None:
    run = services.sync_start(practice=few_letters.practice, actor=admin, today=TODAY)
    assert run.current_question is not None
    outbox_send_one(run.current_question.message_id, worker="test")  # page 1 read; page 2 asked
    [page] = SyncPage.objects.filter(run=run)
    assert services.sync_page_store(page_id=page.pk)  # what its job does
    assert Letter.objects.filter(document_asked=False).count() == services.PAGE_SIZE
    assert not Question.objects.filter(purpose=services.DOCUMENT_PURPOSE).exists()
    assert services.documents_ask(practice=few_letters.practice) == 0  # not while the sync runs

    run = finished(run)
    documents_settled()
    assert not Letter.objects.filter(document_asked=False).exists()
    assert Letter.objects.filter(document_state=DocumentState.STORED).count() == run.letters_new
    assert Question.objects.filter(purpose=services.DOCUMENT_PURPOSE).count() == run.letters_new
    assert services.documents_ask_all() == 0  # asked once


def test_the_safety_net_asks_for_documents_a_lost_job_left(
    practice: Any, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "DOCUMENT_CHUNK", 2)  # a chunk a job: the first job enqueues the next
    forgotten = [letter(practice, document_asked=False) for _ in range(3)]
    asked_before = letter(practice)
    assert services.documents_ask_all() == 2
    run_worker_burst()
    assert not Letter.objects.filter(document_asked=False).exists()
    assert {q.subject_id for q in Question.objects.filter(purpose=services.DOCUMENT_PURPOSE)} == {
        str(x.pk) for x in forgotten
    }
    asked_before.refresh_from_db()
    assert asked_before.document_asked
    assert "communications.jobs.documents_ask_all" in {job["func"] for job in CRON_JOBS}
