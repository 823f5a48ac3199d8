"""The ATO inbox: sync the practice's letters from the ATO (CC List, then CC Get for each new letter), match them to
the register, and work them as tasks (state, owner, due date).

How a sync moves, as a reconciliation does (relationships/reconcile/services.py): ``sync_start`` records the run
and the request for its first page. Each page's answer reaches ``on_list_page`` in the transaction that settles its
message; it reads the page as a stream (checked whole), records it as read (a ``SyncPage``), asks
for the next page with the ATO's continuation, and leaves the storing of the page's letters to a job
(``sync_page_store``, enqueued once that transaction commits, with the page's letters as the handler read them,
sealed), so that with two workers the next page is fetched while this one is stored. The job stores the page whole
or not at all (a chunk of letters at a time), and the job that stores the last page of a run read to its end
finishes the run; on Resume a page's job reads its letters from the ATO's stored answer instead. The run row
names the page in flight, so a page delivered twice, or a page of an attempt the run has moved past, changes
nothing; a page stored already is not stored again; and a letter already held (the ATO's id, once per practice) is
never added twice, so overlapping date ranges are harmless. A page whose storing fails stops the run, saying so,
and Resume stores it (and every page not stored yet) again. The new letters' documents are asked for
once the last page is stored (``documents_ask``, a job on the low queue): asked beside the pages, their thousands of
CC Gets queued ahead of each next page on the worker, and a sync read 8 letters a second instead of hundreds.

Re-matching: a letter whose client the register lacks is kept, unmatched, with the TFN's keyed hash. A client saved
one at a time (added, linked from the ATO) re-matches its letters at once (``clients_saved``, a post_save signal
connected in apps.py); an import writes clients in bulk without signals, so the audit event that closes it (and a
reconciliation's) re-matches the practice's letters (``audit_recorded``), the scheduler runs ``letters_rematch``
every ten minutes as a safety net, and every sync ends with it. Each is one UPDATE over the unmatched letters'
partial index."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone

from ato_gateway import api
from ato_gateway.api import DocumentError, Question, Reply, Subject
from ato_gateway.wire.documents import cc, commpref
from ato_gateway.wire.documents.common import ClientIdentifier
from clients.models import Client, ClientGroup
from clients.tfn import tfn_lookup_hash
from communications.models import (
    CATEGORY_WORDS,
    CHANNEL_SHORT_WORDS,
    OPEN_STATES,
    TO_PRACTICE_CHANNEL,
    Destination,
    Destinations,
    DocumentState,
    DueSource,
    Letter,
    LetterDocument,
    LetterState,
    Preference,
    SyncPage,
    SyncRun,
    SyncStatus,
    ToldHow,
    category_of,
    deciding_itself,
    full_text,
    letter_categories,
    masked_email,
    search_vector,
    store_job_id,
    title_vectors,
)
from portal.audit import audit_record
from portal.capabilities import Role
from portal.db.bulk import insert_new
from portal.iterables import batched
from portal.logging import redact_tfns
from portal.models import AuditEvent, Practice, User
from portal.sealing import seal_bytes, seal_json, unseal_bytes, unseal_json
from portal.spreadsheet import spreadsheet_cell

log = logging.getLogger(__name__)

SUBJECT = "commsync"
LETTER_SUBJECT = "letter"
LIST_PURPOSE = "communications.list_page"  # a page of the ATO's list of letters, read as a stream
DOCUMENT_PURPOSE = "communications.document"  # one letter's document
PREFERENCE_SUBJECT = "commpref"
PREFERENCE_PURPOSE = "communications.preference"  # where the ATO sends a client's letters (COMMPREF Get)
PAGE_SIZE = 500
CHUNK = 500  # letters applied together, in one statement: bounds memory; a whole page at the usual page size
DOCUMENT_CHUNK = 500  # letters whose documents are asked for in one transaction (and one job)
# A sync asks from the last finished one's end, less a margin for letters the ATO dates back.
OVERLAP = timedelta(days=7)
# Without a date stated in the letter, the days from issue to act on it, by type (the ATO's usual terms).
DUE_DAYS = {"NOA": 21, "ASR": 28, "DEBT": 14, "PPA": 14, "AUD": 28, "REV": 28}
DEFAULT_DUE_DAYS = 28


class LetterError(ValueError):
    """A change to a letter that cannot be made, in words for the person who asked."""


# --- starting and resuming ---


def _five_years_before(day: date) -> date:
    try:
        return day.replace(year=day.year - cc.MAX_YEARS)
    except ValueError:  # 29 February
        return day.replace(year=day.year - cc.MAX_YEARS, day=28)


def sync_start(*, practice: Practice, actor: User | None = None, today: date | None = None) -> SyncRun:
    """Start a sync (``actor`` None: the nightly one) from the last finished one's end, or the ATO's five years for
    the first; return the one already running (resumed if it is stuck, SyncRun.is_stuck)."""
    today = today or timezone.localdate()
    with transaction.atomic(durable=True):
        running = (
            SyncRun.objects.select_for_update(of=("self",))  # a page's storing job may be counting on it
            .filter(practice=practice, status=SyncStatus.RUNNING)
            .first()
        )
        if running is not None:
            return _resume(running, actor) if running.is_stuck else running
        last = SyncRun.objects.filter(practice=practice, status=SyncStatus.DONE).order_by("-issued_to").first()
        earliest = _five_years_before(today)
        issued_from = max(earliest, last.issued_to - OVERLAP) if last else earliest
        run = SyncRun(practice=practice, started_by=actor, issued_from=issued_from, issued_to=today)
        try:
            with transaction.atomic():
                run.save()
        except IntegrityError:  # another start won the race: one sync at a time
            return SyncRun.objects.get(practice=practice, status=SyncStatus.RUNNING)
        _ask(run, "")
        audit_record(
            "communications.sync_started",
            actor=actor,
            practice=practice,
            target=run,
            details={"nightly": actor is None, "from": str(issued_from), "to": str(today)},
        )
    return run


def sync_resume(*, run: SyncRun, actor: User | None) -> SyncRun:
    """Carry on a stopped (or stuck) sync from the page it was at; the pages before it are kept."""
    with transaction.atomic(durable=True):
        locked = SyncRun.objects.select_for_update(of=("self",)).select_related("current_question").get(pk=run.pk)
        if locked.status == SyncStatus.DONE or (locked.is_running and not locked.is_stuck):
            return locked
        return _resume(locked, actor)


def _resume(run: SyncRun, actor: User | None) -> SyncRun:
    run.status, run.error, run.finished_at = SyncStatus.RUNNING, "", None
    try:
        with transaction.atomic():
            run.save(update_fields=["status", "error", "finished_at"])
    except IntegrityError:
        return SyncRun.objects.get(practice=run.practice, status=SyncStatus.RUNNING)
    unstored = list(SyncPage.objects.filter(run=run, stored_at__isnull=True).values_list("pk", flat=True))
    for page_id in unstored:  # a job stores a page once, so one still queued as well does no harm
        _store_enqueue(page_id)
    question = run.current_question
    if not run.paged and (question is None or question.is_settled):  # the page in flight was lost: ask it again
        _ask(run, run.continuation)
    audit_record(
        "communications.sync_resumed",
        actor=actor,
        practice=run.practice,
        target=run,
        details={"page": run.pages + 1, "unstored": len(unstored)},
    )
    if run.paged and not unstored:  # every page stored while the run was stopped
        _finish(run)
    return run


def _ask(run: SyncRun, continuation: str) -> None:
    document = cc.ListRequest(
        issued_from=run.issued_from,
        issued_to=run.issued_to,
        continuation=continuation or None,
        page_size=PAGE_SIZE,
    )
    question = api.ask(
        document,
        practice=run.practice,
        by=run.started_by,
        purpose=LIST_PURPOSE,
        about=Subject(SUBJECT, str(run.pk), f"Letters page {run.pages + 1}"),
    )
    run.current_question, run.continuation = question, continuation
    # With the counts of the page just read: one UPDATE of the run a page.
    run.save(update_fields=["current_question", "continuation", "pages", "letters_seen"])


def sync_nightly() -> list[int]:
    """A sync for every practice that can speak to the ATO; one practice's trouble does not stop the others."""
    started = []
    for practice in api.practices_able_to_ask():
        try:
            started.append(sync_start(practice=practice).pk)
        except Exception:
            log.exception("the letters sync of practice %s could not start", practice.pk)
    return started


# --- a page's answer ---


def on_list_page(question: Question, reply: Reply[cc.ListResponse]) -> None:
    """A page's answer, in the transaction that records it: only what the next page waits on. The page is read
    through (the schema checks every letter, and the continuation comes at its end), the next page is asked for,
    and the letters read go, sealed, to the job that stores them once the transaction commits."""
    if question.subject_type != SUBJECT:
        return
    run = (
        SyncRun.objects.select_for_update(of=("self",))  # not the practice: a storing job's INSERT reads it
        .select_related("practice")
        .filter(pk=int(question.subject_id), practice_id=question.practice_id)
        .first()
    )
    if run is None or run.status != SyncStatus.RUNNING or run.current_question_id != question.pk:
        return  # a page the run has moved past, or delivered again
    items = reply.stream
    if reply.failure or reply.errors or items is None:
        _stop(run, _failure_words(run, reply))
        return
    try:
        rows = [listed(item) for item in items]
    except DocumentError as exc:
        _stop(run, f"Page {run.pages + 1} of the ATO's list could not be read ({exc}). Resume asks for it again.")
        return
    continuation = items.document.continuation if items.document is not None else None
    run.pages += 1
    run.letters_seen += len(rows)
    page = SyncPage.objects.create(run=run, number=run.pages, question=question)
    if continuation:
        _ask(run, continuation)  # first, so that its send job is queued ahead of this page's storing
    else:
        run.paged = True
        run.save(update_fields=["paged", "pages", "letters_seen"])
    _store_enqueue(page.pk, _seal_rows(rows))


def _store_enqueue(page_id: int, sealed: str = "") -> None:
    """The page's storing job, queued once the transaction commits, with what is stored of its letters (``sealed``:
    they carry TFNs) so that the job need not decode the ATO's answer again; without it (Resume) the job reads the
    answer. Robust: a page whose job is lost (Redis down) makes the run stuck after STORE_PATIENCE, and Resume
    queues it again. No result kept: the job's arguments hold the page."""
    import django_rq

    def enqueue() -> None:
        queue = django_rq.get_queue("high")
        queue.enqueue(
            "communications.jobs.sync_page_store", page_id, sealed, result_ttl=0, job_id=store_job_id(page_id)
        )

    transaction.on_commit(enqueue, robust=True)


class Listed(NamedTuple):
    """What a sync stores of a letter the ATO lists (its document is fetched later), cut to the columns' sizes."""

    ato_id: str
    tfn: str
    name: str
    kind: str
    title: str
    account: str
    issued: date


def listed(item: cc.Communication) -> Listed:
    return Listed(
        item.id,
        item.client.tfn or "",
        _name(item)[:250],
        item.kind[:10],
        item.title[:300],
        _account(item)[:20],
        item.issued,
    )


def _seal_rows(rows: list[Listed]) -> str:
    return seal_json([[*row[:-1], row.issued.isoformat()] for row in rows])


def _unseal_rows(sealed: str) -> list[Listed]:
    return [
        Listed(ato_id, tfn, name, kind, title, account, date.fromisoformat(issued))
        for ato_id, tfn, name, kind, title, account, issued in unseal_json(sealed)
    ]


def sync_page_store(*, page_id: int, sealed: str = "") -> bool:
    """Store the letters of a page read (``sealed``: as its handler read them; else read again from the ATO's
    answer), count them on the run, and finish the run if it has been read to its end and this was the last page to
    store. A page stored already is left alone. A page that cannot be stored stops the run, saying which; its
    letters stay unstored until Resume. Returns whether the page was stored now."""
    try:
        with transaction.atomic(durable=True):
            page = (
                SyncPage.objects.select_for_update(of=("self",))  # two jobs of one page: the second finds it stored
                .select_related("run__practice")  # not the question's message: the page's whole answer
                .filter(pk=page_id)
                .first()
            )
            if page is None or page.stored_at is not None:
                return False
            if sealed:
                rows = _unseal_rows(sealed)
            else:
                reply = api.reply(Question.objects.select_related("message").get(pk=page.question_id))
                items = reply.document.communications if isinstance(reply.document, cc.ListResponse) else []
                rows = [listed(item) for item in items]
            new = sum(_apply(page.run.practice, chunk) for chunk in batched(rows, CHUNK))
            page.stored_at, page.error = timezone.now(), ""
            page.save(update_fields=["stored_at", "error"])
            if connection.vendor == "postgresql":
                # The letters' foreign keys checked now rather than at the commit, while the run is not locked yet
                # (made immediate, the checks pending run at once; then deferred again, as Django's are).
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            # The run last, and only for its counts: the next page's handler waits for its lock.
            run = SyncRun.objects.select_for_update(of=("self",)).select_related("practice").get(pk=page.run_id)
            run.pages_stored += 1
            run.letters_new += new
            # Finished when no page of it is left to store (not by the counts: a worker of the version before
            # SyncPage stored pages without counting them here).
            if run.is_running and run.paged and not SyncPage.objects.filter(run=run, stored_at__isnull=True).exists():
                _finish(run)
            else:
                run.save(update_fields=["pages_stored", "letters_new"])
            return True
    except Exception as exc:
        log.exception("page %s of a letters sync could not be stored", page_id)
        _store_failed(page_id, exc)
        return False


def _store_failed(page_id: int, exc: Exception) -> None:
    reason = str(exc) if isinstance(exc, DocumentError) else type(exc).__name__
    with transaction.atomic(durable=True):
        page = SyncPage.objects.select_for_update(of=("self",)).filter(pk=page_id).first()
        if page is None or page.stored_at is not None:
            return
        words = f"Page {page.number} of the ATO's list could not be stored ({reason}). Resume stores it again."
        page.error = redact_tfns(words)[:2000]
        page.save(update_fields=["error"])
        run = SyncRun.objects.select_for_update(of=("self",)).select_related("practice").get(pk=page.run_id)
        if run.is_running:
            _stop(run, words, page=page.number)


def _failure_words(run: SyncRun, reply: Reply[Any]) -> str:
    page = run.pages + 1
    kept = f"The {run.letters_seen} letters read before it are kept; Resume carries on from page {page}."
    if reply.failure:
        if reply.gave_up or reply.failure.startswith(("HTTP:", "GATEWAY:")):
            return (
                f"The ATO could not be reached: page {page} of its list of letters was retried and then given up. "
                f"{kept}"
            )
        return f"Page {page} of the letters could not be fetched from the ATO ({reply.failure}). {kept}"
    refused = " ".join(api.item_in_plain_words(i) for i in reply.errors) or "The ATO sent no list."
    return f"The ATO refused page {page} of its list of letters: {refused} {kept}"


def _stop(run: SyncRun, words: str, *, page: int | None = None) -> None:
    run.status, run.error, run.finished_at = SyncStatus.FAILED, redact_tfns(words)[:2000], timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    details = {"page": page or run.pages + 1}
    audit_record("communications.sync_failed", practice=run.practice, target=run, details=details)


def _finish(run: SyncRun) -> None:
    run.status, run.finished_at = SyncStatus.DONE, timezone.now()
    run.pages_stored = run.pages  # every page is stored: by a job, or by a worker of the version before them
    run.save(update_fields=["status", "finished_at", "pages", "pages_stored", "letters_seen", "letters_new"])
    letters_rematch(practice=run.practice)
    practice_id = run.practice.pk
    transaction.on_commit(lambda: documents_ask_enqueue(practice_id))
    audit_record(
        "communications.synced",
        practice=run.practice,
        target=run,
        details={"pages": run.pages, "letters": run.letters_seen, "new": run.letters_new},
    )


def _name(item: cc.Communication) -> str:
    if item.person_name is not None:
        given = " ".join(filter(None, [item.person_name.given_name, item.person_name.other_given_name]))
        return f"{item.person_name.family_name.upper()}, {given}".strip(", ")
    return item.organisation_name or ""


def _account(item: cc.Communication) -> str:
    if item.account is None:
        return ""
    return f"{item.account.kind} {item.account.branch}" if item.account.branch else item.account.kind


def due_by_rule(kind: str, issued: date) -> date:
    return issued + timedelta(days=DUE_DAYS.get(kind, DEFAULT_DUE_DAYS))


def _apply(practice: Practice, chunk: Sequence[Listed]) -> int:
    """Add the chunk's letters the practice does not hold yet, matched, owned and indexed for search, in one
    statement: a letter held already (or twice in the chunk) is skipped by its unique constraint, so a page read
    again adds nothing. Returns how many were added. Their documents are asked for after the last page."""
    tfns = [c.tfn for c in chunk]
    hashes = {tfn: tfn_lookup_hash(tfn) if tfn else "" for tfn in set(tfns)}  # once a client, not a letter
    found = Client.objects.filter(practice=practice, tfn_hash__in=[h for h in hashes.values() if h])
    clients, keepers = {}, {}  # {TFN hash: client id}, {client id: who looks after it}: one query
    for tfn_hash, pk, keeper in found.annotate(keeper=_keeper()).values_list("tfn_hash", "pk", "keeper"):
        clients[tfn_hash], keepers[pk] = pk, keeper
    matched = [clients.get(hashes[tfn]) for tfn in tfns]
    sent_to_practice = _sent_to_practice(practice, set(clients.values()))
    titles = [c.title for c in chunk]
    columns: dict[str, Sequence[object]] = {
        "ato_id": [c.ato_id for c in chunk],
        "tfn_hash": [hashes[tfn] for tfn in tfns],
        "tfn_last3": [tfn[-3:] for tfn in tfns],
        "name": [c.name for c in chunk],
        "client": matched,
        "owner": [keepers.get(pk) if pk else None for pk in matched],
        "kind": [c.kind for c in chunk],
        "title": titles,
        "account": [c.account for c in chunk],
        "issued": [c.issued for c in chunk],
        "due": [due_by_rule(c.kind, c.issued) for c in chunk],
        "to_practice": [sent_to_practice(pk, category_of(c.kind)) for pk, c in zip(matched, chunk, strict=True)],
    }
    if full_text():  # the titles' vectors computed once a title, not once a letter; elsewhere NULL
        vectors = title_vectors(titles)
        columns["search"] = [vectors[title] for title in titles]
    return insert_new(
        Letter,
        columns,
        unique=("practice", "ato_id"),
        same={"practice": practice.pk, "due_source": DueSource.RULE, "document_asked": False},
    )


def documents_ask_enqueue(practice_id: int) -> None:
    import django_rq

    django_rq.get_queue("low").enqueue("communications.jobs.documents_ask", practice_id)


def documents_ask(*, practice: Practice) -> int:
    """Ask for the documents of up to DOCUMENT_CHUNK of the practice's letters not asked for yet, and after a full
    chunk enqueue the next: one chunk a job, so that the worker sends each chunk's CC Gets (the high queue) before
    it records the next (the low queue). Not while a sync is running: its last page asks again. Returns how many
    were asked for."""
    if SyncRun.objects.filter(practice=practice, status=SyncStatus.RUNNING).exists():
        return 0
    with transaction.atomic(durable=True):
        letters = list(
            Letter.objects.select_for_update(skip_locked=True)
            .filter(practice=practice, document_asked=False)
            .order_by("id")
            .only("pk", "ato_id")[:DOCUMENT_CHUNK]
        )
        if not letters:
            return 0
        _ask_documents(practice, letters, by=None)
        Letter.objects.filter(pk__in=[letter.pk for letter in letters]).update(document_asked=True)
        if len(letters) == DOCUMENT_CHUNK:
            practice_id = practice.pk
            transaction.on_commit(lambda: documents_ask_enqueue(practice_id))
    return len(letters)


def documents_ask_all() -> int:
    """The scheduler's safety net: every practice's letters whose documents were never asked for (a finished
    sync's job that was lost, or letters of a sync that stopped and was never resumed)."""
    waiting = Letter.objects.filter(document_asked=False, practice_id=OuterRef("pk"))
    return sum(documents_ask(practice=practice) for practice in Practice.objects.filter(Exists(waiting)))


def _ask_documents(practice: Practice, letters: list[Letter], *, by: User | None) -> None:
    api.ask_many(
        [
            (cc.GetRequest(id=letter.ato_id), Subject(LETTER_SUBJECT, str(letter.pk), f"Letter {letter.ato_id}"))
            for letter in letters
        ],
        practice=practice,
        by=by,
        purpose=DOCUMENT_PURPOSE,
    )


# --- owners ---


def _looked_after_by(client_ids: Iterable[int]) -> dict[int, int]:
    """{client id: the member of staff who looks after it} (_keeper()), for those looked after."""
    ids = set(client_ids)
    if not ids:
        return {}
    keepers = Client.objects.filter(pk__in=ids).annotate(keeper=_keeper()).filter(keeper__isnull=False)
    return dict(keepers.values_list("pk", "keeper"))


def _keeper() -> Subquery:
    """The member of staff who looks after the client (OuterRef "pk"), in SQL: the first active staff member (not
    read-only) of the client's groups, in the order staff were added to the practice; None: the admins. In SQL so
    that a sync reads it with the clients it matches, in the same query."""
    staff = (
        ClientGroup.staff.through.objects.filter(clientgroup__clients=OuterRef("pk"), user__is_active=True)
        .exclude(user__role=Role.READ_ONLY)
        .order_by("user_id")
    )
    return Subquery(staff.values("user_id")[:1])


def _assign_owners(practice: Practice, letters: list[Letter]) -> None:
    """Give each unowned letter the staff member who looks after its client; the rest stay the admins'."""
    keepers = _looked_after_by(letter.client_id for letter in letters if letter.client_id)
    by_owner: dict[int, list[int]] = {}
    for letter in letters:
        if letter.owner_id is None and letter.client_id in keepers:
            by_owner.setdefault(keepers[letter.client_id], []).append(letter.pk)
    for owner_id, ids in by_owner.items():
        Letter.objects.filter(practice=practice, pk__in=ids, owner__isnull=True).update(owner_id=owner_id)


# --- re-matching ---


def letters_rematch(*, practice: Practice | None = None, client: Client | None = None) -> int:
    """Match the unmatched letters whose TFN the register now holds (of one practice, one client, or all), and give
    them their owners. Returns how many were matched."""
    match = Client.objects.filter(practice_id=OuterRef("practice_id"), tfn_hash=OuterRef("tfn_hash"))
    unmatched = Letter.objects.filter(client__isnull=True).exclude(tfn_hash="")
    if practice is not None:
        unmatched = unmatched.filter(practice=practice)
    if client is not None:
        if not client.tfn_hash:
            return 0
        unmatched = unmatched.filter(practice_id=client.practice_id, tfn_hash=client.tfn_hash)
    with transaction.atomic():
        ids = list(unmatched.filter(Exists(match)).values_list("pk", flat=True)[:10000])
        if not ids:
            return 0
        Letter.objects.filter(pk__in=ids).update(client_id=Subquery(match.values("pk")[:1]))
        matched = list(Letter.objects.filter(pk__in=ids).only("pk", "practice_id", "client_id", "owner_id"))
        for practice_id in {letter.practice_id for letter in matched}:
            of_practice = [letter for letter in matched if letter.practice_id == practice_id]
            _assign_owners(Practice(pk=practice_id), of_practice)
            _follow_preferences(
                Practice(pk=practice_id), {letter.client_id for letter in of_practice if letter.client_id}
            )
    return len(ids)


def clients_saved(sender: type[Client], instance: Client, **kwargs: Any) -> None:
    """post_save of a client: its letters, if any were waiting unmatched, are matched after the save commits."""
    if instance.tfn_hash:
        transaction.on_commit(lambda: letters_rematch(client=instance))


# --- where the ATO sends the letters (COMMPREF), and passing letters on ---


def _sent_to_practice(practice: Practice, client_ids: Iterable[int]) -> Callable[[int | None, str], bool]:
    """Whether the ATO sends a client's letters of a category (category_of() of the letter's type) to the practice:
    ``sent(client_id, category)``, None for an unmatched letter. One query for the set of clients, whatever their
    number; Destinations says the rule."""
    return Destinations.held(practice, client_ids).to_practice


def _follow_preferences(practice: Practice, client_ids: Iterable[int]) -> None:
    """Letters not passed on yet take where the clients' preferences now send their categories (a letter already
    passed on keeps its record): one UPDATE for each category and destination."""
    ids = set(client_ids)
    if not ids:
        return
    destinations = Destinations.held(practice, ids)
    for category in letter_categories():
        by_destination: dict[bool, list[int]] = {}
        for client_id in ids:
            by_destination.setdefault(destinations.to_practice(client_id, category), []).append(client_id)
        for to_practice, clients in by_destination.items():
            Letter.objects.filter(practice=practice, client_id__in=clients, told_on__isnull=True).of_category(
                category
            ).exclude(to_practice=to_practice).update(to_practice=to_practice)


def _follow_default(practice: Practice, default: Preference) -> None:
    """The practice default decides, for each category, the unmatched letters and those of every client whose
    preference does not set that category itself (or who has none held)."""
    for category in letter_categories():
        to_practice = default.sends(category)[0] == TO_PRACTICE_CHANNEL
        itself = Preference.objects.filter(practice=practice, client_id=OuterRef("client_id")).filter(
            deciding_itself(category)
        )
        Letter.objects.filter(practice=practice, told_on__isnull=True).of_category(category).exclude(
            Exists(itself)
        ).exclude(to_practice=to_practice).update(to_practice=to_practice)


def letters_destinations(*, practice: Practice, letters: Iterable[Letter]) -> dict[int, Destination]:
    """{letter id: where the ATO sends letters of its category for its client}, for a page of letters: one query."""
    chosen = list(letters)
    destinations = Destinations.held(practice, {letter.client_id for letter in chosen})
    return {letter.pk: destinations.of_letter(letter) for letter in chosen}


def preferences_refresh(*, user: User, clients: Iterable[Client]) -> list[Question]:
    """Ask the ATO where it sends the letters: the practice default and each client's preference (COMMPREF Get, one
    question a client, recorded in one insert whatever their number). Clients without a TFN are skipped: the ATO
    names clients by TFN."""
    practice = user.tenant
    asks: list[tuple[commpref.GetRequest, Subject | None]] = [
        (commpref.GetRequest(), Subject(PREFERENCE_SUBJECT, "default", "The practice default"))
    ]
    asks += [
        (
            commpref.GetRequest(client=ClientIdentifier.of(tfn=client.reveal_tfn())),
            Subject(PREFERENCE_SUBJECT, str(client.pk), client.display_name),
        )
        for client in clients
        if client.tfn_hash and client.practice_id == practice.pk
    ]
    with transaction.atomic(durable=True):
        questions = api.ask_many(asks, practice=practice, by=user, purpose=PREFERENCE_PURPOSE)
        audit_record(
            "communications.preferences_asked", actor=user, practice=practice, details={"clients": len(asks) - 1}
        )
    return questions


def on_preference(question: Question, reply: Reply[commpref.GetResponse]) -> None:
    """The handler of COMMPREF Get: keep what the ATO answered, and let the letters not passed on yet follow it."""
    if question.subject_type != PREFERENCE_SUBJECT or not reply.answered or reply.document is None:
        return  # a refusal is shown on the question itself; the preference last known stays
    practice = Practice.objects.get(pk=question.practice_id)
    client_id = None if question.subject_id == "default" else int(question.subject_id)
    preference_keep(practice, client_id, reply.document.preference)


def preference_keep(practice: Practice, client_id: int | None, answer: commpref.Preference) -> None:
    """Keep a preference as the ATO answered it (Get, or a change's Submit), and let the letters not passed on yet
    follow it."""
    if client_id is not None and not Client.objects.filter(pk=client_id, practice=practice).exists():
        return  # the client was removed from the register since
    values = {
        "channel": answer.channel,
        "email": answer.email or "",
        "own": client_id is None or not answer.practice_default,
        "updated": answer.updated,
        "checked_at": timezone.now(),
        "categories": {
            c.category: {"channel": c.channel, "email": c.email or "", "default": c.practice_default}
            for c in answer.categories
        },
    }
    if client_id is not None:
        Preference.objects.update_or_create(practice=practice, client_id=client_id, defaults=values)
        _follow_preferences(practice, [client_id])
        return
    default, _ = Preference.objects.update_or_create(practice=practice, client__isnull=True, defaults=values)
    _follow_default(practice, default)


def preferences_coverage(*, user: User) -> dict[str, Any]:
    """Where the ATO sends the letters of the clients the user sees, by the answers held: how many come to the
    practice, how many go to the clients themselves (letters the practice does not see), how many were never asked
    about; and the practice default."""
    clients = Client.objects.visible_to(user)
    own = Preference.objects.filter(practice=user.tenant, client__in=clients, own=True)
    default = Preference.objects.filter(practice=user.tenant, client__isnull=True).first()
    asked = Preference.objects.filter(practice=user.tenant, client_id=OuterRef("pk"))
    own_to_practice = own.filter(channel=TO_PRACTICE_CHANNEL).count()
    own_elsewhere = own.exclude(channel=TO_PRACTICE_CHANNEL).count()
    following = clients.filter(Exists(asked.filter(own=False))).count()
    default_to_practice = default is None or default.to_practice
    return {
        "by_category": _coverage_by_category(Preference.objects.filter(practice=user.tenant, client__in=clients)),
        "default": default,
        "clients": clients.count(),
        "to_practice": own_to_practice + (following if default_to_practice else 0),
        "elsewhere": own_elsewhere + (0 if default_to_practice else following),
        "never_asked": clients.exclude(Exists(asked)).count(),
    }


COVERAGE_CHUNK = 500  # clients a query of preferences: bounds memory and the IN list
COVERAGE_COLUMNS = ("client_number", "client", "category", "sent", "channel", "address", "decided_by", "asked_on")


def preferences_coverage_rows(*, user: User) -> Iterator[list[object]]:
    """The coverage report as rows of a CSV: for every client the user sees and every category of letters, where
    the ATO sends them, what decided it and when the ATO was last asked about the client. The practice's own data:
    no TFN, and an email address masked (enough to tell whose it is), since the file leaves the portal. Audited
    as an export; streamed a chunk of clients at a time (one query for their preferences)."""
    with transaction.atomic():
        audit_record("communications.coverage_exported", actor=user)
    yield list(COVERAGE_COLUMNS)
    clients = Client.objects.visible_to(user).order_by("sort_name", "pk").only("pk", "display_name")
    for chunk in batched(clients.iterator(chunk_size=COVERAGE_CHUNK), COVERAGE_CHUNK):
        destinations = Destinations.held(user.tenant, [c.pk for c in chunk])
        for client in chunk:
            held = destinations.clients.get(client.pk)
            asked = timezone.localtime(held.checked_at).date().isoformat() if held is not None else "never"
            for code in CATEGORY_WORDS:
                found = destinations.of(client.pk, code)
                yield [
                    client.pk,
                    spreadsheet_cell(client.display_name),
                    found.category_words,
                    CHANNEL_SHORT_WORDS.get(found.channel, found.channel),
                    found.channel,
                    spreadsheet_cell(masked_email(found.email)),
                    found.decided_by_words,
                    asked,
                ]


def _coverage_by_category(held: QuerySet[Preference]) -> list[dict[str, Any]]:
    """For each category of letters, how many clients' letters of it come to the practice and how many go to the
    clients, by the answers that named categories (one query a category, grouped by channel in the database)."""
    rows = []
    for code, words in CATEGORY_WORDS.items():
        channels = dict(
            held.filter(categories__has_key=code)
            .annotate(held_channel=KeyTextTransform("channel", KeyTransform(code, "categories")))
            .values("held_channel")
            .annotate(n=Count("pk"))
            .values_list("held_channel", "n")
        )
        to_practice = int(channels.pop(TO_PRACTICE_CHANNEL, 0))
        rows.append({"category": words, "to_practice": to_practice, "elsewhere": sum(channels.values())})
    return rows


def letter_told_record(*, user: User, letter: Letter, on: date, how: str, told_by: User) -> None:
    """Record when, how and by whom the client was told of a letter the ATO sent to the practice instead."""
    if how not in ToldHow.values:
        raise LetterError("Choose how the client was told.")
    if on > timezone.localdate() or on < letter.issued:
        raise LetterError("The client was told between the letter's issue and today: check the date.")
    if told_by.practice_id != letter.practice_id or not told_by.is_active:
        raise LetterError("Choose the member of staff of the practice who told the client.")
    with transaction.atomic(durable=True):
        changed = Letter.objects.visible_to(user).filter(pk=letter.pk).update(told_on=on, told_how=how, told_by=told_by)
        if not changed:
            raise LetterError("This letter is not one you can change.")
        audit_record(
            "communications.client_told",
            actor=user,
            target=letter,
            details={"on": str(on), "how": how, "by": told_by.pk},
        )


# --- a letter's document ---

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = rf"(\d{{1,2}} (?:{_MONTHS}) \d{{4}}|\d{{1,2}}/\d{{1,2}}/\d{{4}})"
# How the ATO states a date to act by: "Due date: 21 December 2026", "pay by 21/12/2026", "respond by ...".
_DUE = re.compile(
    r"(?:due date|due on|due by|pay(?:able)? by|respond by|lodge by|reply by|by the date)\s*:?\s*" + _DATE, re.I
)


def due_in_text(text: str) -> date | None:
    """The date the letter says to act by, or None if it states none."""
    found = _DUE.search(" ".join(text.split()))
    if found is None:
        return None
    words = found.group(1)
    for shape in ("%d %B %Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(words, shape).date()
        except ValueError:
            continue
    return None


class UnreadablePdf(ValueError):
    pass


def pdf_text(content: bytes) -> str:
    """The PDF's text, by pypdf (maintained, pure Python). A file that is not a readable PDF raises UnreadablePdf."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise UnreadablePdf(str(exc) or type(exc).__name__) from exc


def on_document(question: Question, reply: Reply[cc.GetResponse]) -> None:
    """The handler of CC Get: store the document once, sealed, and take the due date it states."""
    if question.subject_type != LETTER_SUBJECT:
        return
    letter = (
        Letter.objects.select_for_update().filter(pk=int(question.subject_id), practice_id=question.practice_id).first()
    )
    if letter is None or letter.document_state == DocumentState.STORED:
        return  # delivered again, or fetched already by another ask
    if reply.failure or reply.errors or reply.document is None:
        words = (
            " ".join(api.refusal_in_plain_words(question, reply))
            if not reply.failure
            else (
                "The ATO could not be reached to fetch this letter's document; Fetch again asks once more."
                if reply.gave_up or reply.failure.startswith(("HTTP:", "GATEWAY:"))
                else f"The document could not be fetched ({reply.failure})."
            )
        )
        _document_failed(letter, words)
        return
    attachment = reply.document.attachment
    try:
        text = pdf_text(attachment.content)
    except UnreadablePdf as exc:
        _document_failed(letter, f"The ATO sent a document for this letter that is not a readable PDF ({exc}).")
        return
    LetterDocument.objects.create(
        letter=letter,
        file_name=attachment.file_name[:200],
        media_type=attachment.media_type[:100],
        size=len(attachment.content),
        content=seal_bytes(attachment.content),
    )
    changes: dict[str, Any] = {"document_state": DocumentState.STORED, "document_error": ""}
    stated = due_in_text(text)
    if stated is not None:
        changes |= {"due": stated, "due_source": DueSource.LETTER}
    if full_text():
        changes["search"] = search_vector(letter.title, text)
    Letter.objects.filter(pk=letter.pk).update(**changes)


def _document_failed(letter: Letter, words: str) -> None:
    # A failure can quote what was sent: redacted for the audit trail too, which is append-only.
    redacted = redact_tfns(words)
    letter.document_state, letter.document_error = DocumentState.FAILED, redacted[:500]
    letter.save(update_fields=["document_state", "document_error"])
    audit_record(
        "communications.document_failed", practice=letter.practice, target=letter, details={"reason": redacted[:200]}
    )


def letter_document_refetch(*, user: User, letter: Letter) -> None:
    """Ask the ATO for a letter's document again (after a failure)."""
    if letter.document_state != DocumentState.FAILED:
        raise LetterError("This letter's document is stored or already being fetched.")
    with transaction.atomic(durable=True):
        Letter.objects.filter(pk=letter.pk).update(document_state=DocumentState.WAITING, document_error="")
        _ask_documents(user.tenant, [letter], by=user)
        audit_record("communications.document_refetch", actor=user, target=letter)


def letter_document_open(*, user: User, letter: Letter) -> tuple[LetterDocument, bytes]:
    """The letter's document and its content, unsealed; every opening is audited."""
    document = LetterDocument.objects.filter(letter=letter).first()
    if document is None:
        raise LetterError("This letter's document has not been fetched from the ATO yet.")
    with transaction.atomic():
        audit_record("communications.document_opened", actor=user, target=letter, details={"file": document.file_name})
    return document, unseal_bytes(document.content)


# --- working a letter ---


def _can_own(practice: Practice, owner: User | None) -> None:
    if owner is None:
        return
    if owner.practice_id != practice.pk or not owner.is_active or owner.role == Role.READ_ONLY:
        raise LetterError("A letter can be given only to active staff of the practice who can act on it.")


def letters_change(
    *,
    user: User,
    letters: Iterable[Letter],
    state: str | None = None,
    note: str = "",
    owner: User | None = None,
    assign: bool = False,
) -> int:
    """Change the state (done needs a note) or, with ``assign``, the owner (None: the admins) of one letter or
    many, and audit it. Returns how many letters changed."""
    ids = [letter.pk for letter in letters]
    if not ids:
        raise LetterError("Choose at least one letter.")
    note = note.strip()
    if state is not None and state not in LetterState.values:
        raise LetterError("Choose a state.")
    if state == LetterState.DONE and not note:
        raise LetterError("Say what was done in the note before marking a letter done.")
    if assign:
        _can_own(user.tenant, owner)
    changes: dict[str, Any] = {}
    if state is not None:
        changes["state"] = state
        closed = state not in OPEN_STATES
        changes["closed_by"], changes["closed_at"] = (user, timezone.now()) if closed else (None, None)
        if note:
            changes["note"] = note[:5000]
    if assign:
        changes["owner"] = owner
    if not changes:
        raise LetterError("Nothing to change.")
    with transaction.atomic(durable=True):
        count = Letter.objects.visible_to(user).filter(pk__in=ids).update(**changes)
        audit_record(
            "communications.letters_changed",
            actor=user,
            details={
                "letters": ids[:200],
                "count": count,
                "state": state or "",
                "owner": (owner.pk if owner else "admins") if assign else "",
            },
        )
    return count


# --- nothing past its date unseen ---


def letters_escalate(*, today: date | None = None) -> int:
    """Raise every overdue open letter not raised yet to the practice admins (the dashboard shows them theirs)."""
    overdue = Letter.objects.overdue(today).filter(escalated_at__isnull=True)
    return overdue.update(escalated_at=timezone.now())


def letters_return_to_admins(*, user: User) -> int:
    """A leaver's open letters go back to the practice admins."""
    count = Letter.objects.filter(owner=user).filter(state__in=OPEN_STATES).update(owner=None)
    if count and user.practice_id:
        audit_record("communications.letters_returned", practice=user.practice, target=user, details={"count": count})
    return count


def staff_saved(sender: type[User], instance: User, **kwargs: Any) -> None:
    """post_save of a user: a deactivated member of staff's letters go back to the admins."""
    if not instance.is_active or instance.deactivated_at is not None:
        user = instance
        transaction.on_commit(lambda: letters_return_to_admins(user=user))


def letters_for_user(user: User, *, today: date | None = None) -> dict[str, Any]:
    """What the dashboard and the digest show: the user's letters due this week and overdue, and the practice's;
    for an admin, also the letters escalated or owned by no one (the admins')."""
    today = today or timezone.localdate()
    week = today + timedelta(days=7)
    visible = Letter.objects.visible_to(user).open()
    mine = visible.filter(owner=user)
    is_admin = user.role == Role.PRACTICE_ADMIN
    figures: dict[str, Any] = {
        "mine_due": mine.filter(due__gte=today, due__lte=week).count(),
        "mine_overdue": mine.filter(due__lt=today).count(),
        "practice_due": visible.filter(due__gte=today, due__lte=week).count(),
        "practice_overdue": visible.filter(due__lt=today).count(),
        "is_admin": is_admin,
        "overdue": list(
            (visible if is_admin else mine).filter(due__lt=today).select_related("client").order_by("due", "pk")[:5]
        ),
    }
    if is_admin:
        figures["escalated"] = visible.filter(escalated_at__isnull=False).count()
        figures["unowned"] = visible.filter(owner__isnull=True).count()
    return figures


def digest_send(*, today: date | None = None) -> int:
    """The daily digest by email (Django's email framework; the console backend by default) to every active
    member of staff with an address and something due this week or overdue. Returns how many were sent."""
    from django.conf import settings
    from django.core.mail import send_mass_mail

    today = today or timezone.localdate()
    letters_escalate(today=today)
    messages = []
    for user in User.objects.filter(is_active=True, practice__isnull=False).exclude(email="").order_by("pk"):
        figures = letters_for_user(user, today=today)
        lines = [
            f"Your letters from the ATO: {figures['mine_overdue']} overdue, {figures['mine_due']} due this week.",
            f"The practice's: {figures['practice_overdue']} overdue, {figures['practice_due']} due this week.",
        ]
        if figures["is_admin"]:
            lines.append(
                f"Escalated to the admins: {figures['escalated']}; with no owner but the admins: {figures['unowned']}."
            )
        if not (
            figures["mine_overdue"] or figures["mine_due"] or (figures["is_admin"] and figures["practice_overdue"])
        ):
            continue
        lines += [f"- overdue since {letter.due:%d/%m/%Y}: {letter}" for letter in figures["overdue"]]
        subject = f"ATO letters: {figures['mine_overdue']} overdue, {figures['mine_due']} due this week"
        messages.append((subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, [user.email]))
    return send_mass_mail(messages, fail_silently=False) if messages else 0


# What of the register's changes writes clients without a save signal (an import writes them in bulk), by the audit
# event that closes it: the practice's unmatched letters are matched again once it commits.
REMATCH_AFTER = {"clients.imported", "relationships.reconciled"}


def audit_recorded(sender: type[AuditEvent], instance: AuditEvent, created: bool = False, **kwargs: Any) -> None:
    if created and instance.action in REMATCH_AFTER and instance.practice_id is not None:
        practice = Practice(pk=instance.practice_id)
        transaction.on_commit(lambda: letters_rematch(practice=practice))
