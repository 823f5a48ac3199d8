"""The ATO inbox: each sync through the ATO's list of letters (CC List), the letters it found, matched to the register
or kept as unmatched, and each letter's document (CC Get), sealed at rest because ATO letters carry TFNs.

A letter is also a task: a state, an owner and a due date. An owner of None means the practice admins: the letter
is theirs until someone takes it, and a leaver's letters go back to them.

A sync keeps all of its state here, as a reconciliation does: the page in flight (``current_question``), the
continuation that asked for it, and the counts so far, so that it can stop anywhere and carry on from that page.
Reading a page and storing its letters are two steps: each page read is a ``SyncPage`` until a job has stored it,
so that the next page is fetched while this one is stored, and a page whose storing failed is stored again on
Resume."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Self

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorField
from django.db import connection, models
from django.db.models import Exists, Expression, F, OuterRef, Q, TextField, Value
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clients.models import Client, ClientGroup
from communications.search import WordsMatch, letters_newest
from portal.models import Practice, User
from portal.sealing import SealedField

# The letter types the ATO issues, in plain words (the stand-in ATO issues these six).
KIND_WORDS = {
    "NOA": "Notice of assessment",
    "ASR": "Activity statement reminder",
    "DEBT": "Debt notice",
    "PPA": "Payment plan",
    "AUD": "Audit",
    "REV": "Review",
}


def kind_in_words(kind: str) -> str:
    return KIND_WORDS.get(kind, f"Other letter ({kind})")


# The communication category (COMMPREF's, CATEGORY_WORDS below) of each letter type: the client's preference for
# that category decides where the ATO sends the letter. Audits and reviews can be about any tax, and the ATO files
# them with its general letters; so is any type not listed here.
KIND_CATEGORY = {"NOA": "ITX", "ASR": "AS", "DEBT": "DEBT", "PPA": "DEBT", "AUD": "GEN", "REV": "GEN"}
GENERAL_CATEGORY = "GEN"


def category_of(kind: str) -> str:
    return KIND_CATEGORY.get(kind, GENERAL_CATEGORY)


def letter_categories() -> list[str]:
    """The categories that have letters (of the types known, and the general one), in COMMPREF's order."""
    used = {*KIND_CATEGORY.values(), GENERAL_CATEGORY}
    return [code for code in CATEGORY_WORDS if code in used]


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Reading the ATO's letters"
    DONE = "done", "Finished"
    FAILED = "failed", "Stopped"


# A page read but not stored after this long, whose storing job is no longer queued or running in Redis, lost its
# job (a killed worker, Redis down or restarted): the run is stuck, and Resume stores it again. Sooner than that its
# job may not be queued yet (it is queued once the handler's transaction commits).
STORE_PATIENCE = timedelta(minutes=2)


def store_job_id(page_id: int) -> str:
    return f"communications-sync-page-{page_id}"


def store_jobs_waiting(page_ids: list[int]) -> set[int]:
    """Of these pages, those whose storing job is queued or running: waiting its turn, not lost. Redis out of
    reach: none (the wait alone decides, and a page stored twice is stored once)."""
    import django_rq
    from redis.exceptions import RedisError
    from rq.job import Job, JobStatus

    waiting = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)

    try:
        jobs = Job.fetch_many([store_job_id(pk) for pk in page_ids], connection=django_rq.get_connection("high"))
    except RedisError:
        return set()
    return {pk for pk, job in zip(page_ids, jobs, strict=True) if job and job.get_status(refresh=False) in waiting}


class SyncRun(models.Model):
    """One pass through the ATO's list of the letters to every client of the practice over a date range.
    ``pages`` and ``letters_seen`` count what was read of the list, ``pages_stored`` and ``letters_new`` what of it
    is stored; ``paged``: the last page was read, only storing is left."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    started_by = models.ForeignKey(  # None: the nightly sync
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    issued_from = models.DateField()
    issued_to = models.DateField()
    current_question = models.ForeignKey(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    continuation = models.TextField(blank=True)
    pages = models.PositiveIntegerField(default=0)
    pages_stored = models.PositiveIntegerField(default=0)
    paged = models.BooleanField(default=False)
    letters_seen = models.PositiveIntegerField(default=0)
    letters_new = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice"], condition=Q(status="running"), name="comms_one_sync_running_per_practice"
            )
        ]

    def __str__(self) -> str:
        return f"Letters sync of {timezone.localtime(self.started_at):%d/%m/%Y %H:%M}"

    @property
    def is_running(self) -> bool:
        return self.status == SyncStatus.RUNNING

    @property
    def is_stuck(self) -> bool:
        """Running, but nothing will move it on but Resume: the page in flight ended without being read; the list
        read to its end with no page left to store, yet not finished; or a page read longer than STORE_PATIENCE ago
        whose storing job is neither queued nor running. Decided by the pages themselves, not by the counts (a
        worker of the version before SyncPage counted pages it stored itself)."""
        if not self.is_running:
            return False
        if not self.paged:
            question = self.current_question
            if question is None or question.is_settled:
                return True
        unstored = list(SyncPage.objects.filter(run=self, stored_at__isnull=True).values_list("pk", "read_at"))
        if not unstored:
            return self.paged
        late = timezone.now() - STORE_PATIENCE
        overdue = [pk for pk, read_at in unstored if read_at < late]
        return bool(overdue) and len(store_jobs_waiting(overdue)) < len(overdue)

    @property
    def percent(self) -> int | None:
        """The list gives no total, but it runs oldest first: the share of the date range read so far (never more
        than 99 until the last page is stored, which a page read is within seconds of)."""
        if self.status == SyncStatus.DONE:
            return 100
        if self.paged:
            return 99
        if not self.continuation:
            return 0
        try:
            reached = date.fromisoformat(self.continuation.split(".")[0])
        except ValueError:  # a continuation of another shape: no estimate
            return None
        span = (self.issued_to - self.issued_from).days or 1
        return max(0, min(99, int(100 * (reached - self.issued_from).days / span)))


class SyncPage(models.Model):
    """A page of the ATO's list a sync has read (its answer is the question's), and when its letters were stored:
    None while it waits for its storing job."""

    # Indexed by the (run, number) constraint.
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    number = models.PositiveIntegerField()
    question = models.OneToOneField("ato_gateway.Question", on_delete=models.PROTECT, related_name="+")
    read_at = models.DateTimeField(default=timezone.now)
    stored_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="comms_syncpage_run_number")]

    def __str__(self) -> str:
        return f"page {self.number} of {self.run}"


def get_sync_or_404(user: User, pk: int) -> SyncRun:
    return get_object_or_404(SyncRun.objects.filter(practice=user.tenant), pk=pk)


class LetterState(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    NO_ACTION = "no_action", "No action needed"


OPEN_STATES = (LetterState.NEW, LetterState.IN_PROGRESS)


class DocumentState(models.TextChoices):
    WAITING = "waiting", "Being fetched from the ATO"
    STORED = "stored", "Stored"
    FAILED = "failed", "Could not be fetched"


class DueSource(models.TextChoices):
    LETTER = "letter", "stated in the letter"
    RULE = "rule", "by the rule for its type"


class ToldHow(models.TextChoices):
    """How the practice passed a letter on to its client."""

    EMAIL = "email", "By email"
    PHONE = "phone", "By phone"
    POST = "post", "By post"
    IN_PERSON = "in_person", "In person"
    PORTAL = "portal", "Through the client's own portal or app"


# --- what of a letter is searchable ---
#
# A letter's document is sealed at rest because it carries the client's TFN. Searching its text needs an index that
# is not sealed, so what goes into it is decided here: the words of the title and of the text pypdf extracts, as a
# PostgreSQL tsvector (stemmed lexemes, not the text), without any run of eight or more digits, or of digits grouped
# as the ATO prints a TFN or an ABN ("123 456 782", "53 004 085 616"). That drops every TFN (8 or 9 digits) and ABN
# a letter can state, and long reference numbers with them, while years, amounts, phone numbers and dates
# ("21/12/2026") stay searchable. A tsvector keeps numbers as lexemes in the clear, so without this rule the index
# would hold the TFN the sealing protects.
SEARCH_CONFIG = "english"
_ID_LIKE = re.compile(r"(?<!\d)(?:\d{8,}|\d{2,3}(?:[ -]\d{3}){2,3})(?!\d)")
_QUERY_SYNTAX = re.compile(r"[&|!():*<>'\\]")  # tsquery's own operators: a searcher's words are only words


def searchable(text: str) -> str:
    """The text with every digit run that could be a TFN taken out: what may be indexed."""
    return _ID_LIKE.sub(" ", text)


def search_vector(title: str, text: str = "") -> Expression:
    """The index of a letter: its title weighs more than its text (a match in the title ranks first)."""
    vector: Expression = SearchVector(
        Value(searchable(title), output_field=TextField()), config=SEARCH_CONFIG, weight="A"
    )
    if text:
        vector = vector + SearchVector(
            Value(searchable(text), output_field=TextField()), config=SEARCH_CONFIG, weight="B"
        )
    return vector


# {title: its search_vector()} as PostgreSQL writes a tsvector, for the titles syncs have stored: a sync's titles
# repeat (a few dozen wordings, each with a year or a quarter), and the vector is a function of the title alone
# (the search configuration is fixed), so each is computed once a process rather than once a letter. Bounded: past
# TITLE_VECTORS_KEPT titles it starts again.
_title_vectors: dict[str, str] = {}
TITLE_VECTORS_KEPT = 5000


def title_vectors(titles: Iterable[str]) -> dict[str, str]:
    """{title: search_vector() of the title alone, as tsvector text} (PostgreSQL only, whose regular expressions
    take searchable()'s pattern): one query for the titles not seen before, none when all were."""
    wanted = set(titles)
    missing = [t for t in wanted if t not in _title_vectors]
    if missing:
        if len(_title_vectors) + len(missing) > TITLE_VECTORS_KEPT:
            _title_vectors.clear()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t, setweight(to_tsvector(%s::regconfig, regexp_replace(t, %s, ' ', 'g')), 'A')::text "
                "FROM unnest(%s::text[]) AS t",
                [SEARCH_CONFIG, _ID_LIKE.pattern, missing],
            )
            _title_vectors.update(cursor.fetchall())
    return {t: _title_vectors[t] for t in wanted}


def full_text() -> bool:
    """PostgreSQL has the full-text index; SQLite (the laptop default) searches titles by substring."""
    return connection.vendor == "postgresql"


class LetterQuerySet(models.QuerySet["Letter"]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._searches = False  # filtered by matching(): newest() pages it as communications.search does

    def _clone(self) -> Self:
        clone = super()._clone()  # type: ignore[misc]
        clone._searches = self._searches
        return clone  # type: ignore[no-any-return]

    def visible_to(self, user: User) -> LetterQuerySet:
        """The practice's letters; staff restricted to groups see only their groups' clients' letters (an
        unmatched letter belongs to no group, so only unrestricted staff see it)."""
        if user.practice_id is None:
            return self.none()
        qs = self.filter(practice_id=user.practice_id)
        if user.restricted_to_groups:
            membership = ClientGroup.clients.through.objects.filter(
                client_id=OuterRef("client_id"), clientgroup__staff=user
            )
            qs = qs.filter(Exists(membership))
        return qs

    def open(self) -> LetterQuerySet:
        return self.filter(state__in=OPEN_STATES)

    def overdue(self, today: date | None = None) -> LetterQuerySet:
        return self.open().filter(due__lt=today or timezone.localdate())

    def matching(self, words: str) -> LetterQuerySet:
        """Letters whose title or text has every word given, each as the start of a word ("remind" finds
        "reminder"). A word that is all digits of a TFN's length finds nothing: those are not indexed."""
        if not full_text():
            return self.filter(title__icontains=words.strip())
        terms = _QUERY_SYNTAX.sub(" ", searchable(words)).split()
        if not terms:
            return self.none()
        # Each term quoted, so that PostgreSQL's parser reads it as it read the letter ("21/12/2026" is one word).
        query = SearchQuery(" & ".join(f"'{term}':*" for term in terms), config=SEARCH_CONFIG, search_type="raw")
        found = self.filter(WordsMatch(F("search"), query))
        found._searches = True
        return found

    def newest(self, count: int, fields: Sequence[str] = ()) -> list[Any]:
        """The first ``count`` letters newest issue first, as models or as tuples of ``fields``; a search's by
        communications.search.letters_newest(), at a cost that does not grow with its number of matches."""
        letters = self.values_list(*fields) if fields else self
        if self._searches and full_text():
            return letters_newest(letters, count=count)
        return list(letters.order_by("-issued", "-pk")[:count])

    def of_category(self, category: str) -> LetterQuerySet:
        """The letters of one communication category, by their types (category_of())."""
        kinds = Q(kind__in=[kind for kind, code in KIND_CATEGORY.items() if code == category])
        if category == GENERAL_CATEGORY:
            kinds |= ~Q(kind__in=list(KIND_CATEGORY))
        return self.filter(kinds)

    def to_pass_on(self) -> LetterQuerySet:
        """Letters the ATO sent to the practice instead of the client, that the client has not been told of yet."""
        return self.filter(to_practice=True, told_on__isnull=True)


class Letter(models.Model):
    # The foreign keys to the practice and to staff have no index of their own: Meta.indexes holds those that serve
    # their queries, without an entry written for every letter a sync stores.
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+", db_index=False)
    ato_id = models.CharField(max_length=40)  # the ATO's CommunicationId
    # The ATO names the client by TFN: kept as the register keeps it (a keyed hash and the last three digits).
    tfn_hash = models.CharField(max_length=64, blank=True)
    tfn_last3 = models.CharField(max_length=3, blank=True)
    name = models.CharField(max_length=250)  # the ATO's name for the client
    # No index of its own either: comms_letter_client starts with the client, and serves the client's letters and
    # a client's deletion as well.
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="letters", db_index=False
    )
    kind = models.CharField(max_length=10)
    title = models.CharField(max_length=300)
    account = models.CharField(max_length=20, blank=True)  # "AS 001", "ITX"
    issued = models.DateField()
    due = models.DateField(null=True, blank=True)
    due_source = models.CharField(max_length=10, choices=DueSource.choices, default=DueSource.RULE)
    state = models.CharField(max_length=12, choices=LetterState.choices, default=LetterState.NEW)
    note = models.TextField(blank=True)
    owner = models.ForeignKey(  # None: the practice admins
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    escalated_at = models.DateTimeField(null=True, blank=True)  # overdue, raised to the admins
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    document_state = models.CharField(max_length=10, choices=DocumentState.choices, default=DocumentState.WAITING)
    document_error = models.CharField(max_length=500, blank=True)
    # False until CC Get is asked for the document: a sync asks for its letters' documents after its last page,
    # so that the list's pages never queue behind thousands of documents on the worker.
    document_asked = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Where the client's preference (its own, else the practice default, else the ATO's: the agent's inbox) sent
    # the letter. True: the client had no notice from the ATO, so the practice must pass the letter on.
    to_practice = models.BooleanField(default=True)
    told_on = models.DateField(null=True, blank=True)  # when the client was told
    told_how = models.CharField(max_length=12, choices=ToldHow.choices, blank=True, default="")
    told_by = models.ForeignKey(  # who told the client (not necessarily who recorded it: the audit says that)
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # The title's and the text's words (see searchable() for what is left out); PostgreSQL only (with a GIN index
    # its migration makes there), NULL on SQLite.
    search = SearchVectorField(null=True, editable=False)

    objects = LetterQuerySet.as_manager()

    class Meta:
        ordering = ["-issued", "-pk"]
        constraints = [models.UniqueConstraint(fields=["practice", "ato_id"], name="comms_letter_once_per_practice")]
        indexes = [
            models.Index(fields=["practice", "-issued", "-id"], name="comms_letter_inbox"),
            # The inbox filtered by type, and by owner, in its order.
            models.Index(fields=["practice", "kind", "-issued", "-id"], name="comms_letter_inbox_kind"),
            models.Index(fields=["practice", "owner", "-issued", "-id"], name="comms_letter_inbox_owner"),
            # The open letters by due date: what the dashboard counts and lists (most overdue first) and the nightly
            # escalation asks for. It carries what those counts also filter on, so that they read the index alone:
            # the owner ("yours"), the escalation, and the client (the groups of staff restricted to them).
            models.Index(
                fields=["practice", "due", "id"],
                include=["client", "owner", "escalated_at"],
                condition=Q(state__in=["new", "in_progress"]),  # OPEN_STATES
                name="comms_letter_open_due",
            ),
            models.Index(fields=["practice", "owner", "state"], name="comms_letter_owner"),
            models.Index(fields=["client", "-issued"], name="comms_letter_client"),
            models.Index(
                fields=["practice", "tfn_hash"], condition=Q(client__isnull=True), name="comms_letter_unmatched"
            ),
            models.Index(
                fields=["practice", "-issued", "-id"],
                condition=Q(to_practice=True, told_on__isnull=True),
                name="comms_letter_to_pass_on",
            ),
            models.Index(fields=["practice", "id"], condition=Q(document_asked=False), name="comms_letter_to_ask"),
            # A member of staff's letters (the dashboard's, a leaver's, a user deleted): a letter without an owner,
            # closer or teller has no entry, so storing a new one (the admins', not closed, not passed on) writes
            # none. The practice's own index is gone: every index above starts with the practice.
            models.Index(fields=["owner"], condition=Q(owner__isnull=False), name="comms_letter_owned"),
            models.Index(fields=["closed_by"], condition=Q(closed_by__isnull=False), name="comms_letter_closed_by"),
            models.Index(fields=["told_by"], condition=Q(told_by__isnull=False), name="comms_letter_told_by"),
            # The open letters in the inbox's order, with the due date in the index: overdue and due this week are
            # read from it alone, without visiting each open letter that is not due (the recent ones, most of them).
            models.Index(
                fields=["practice", "-issued", "-id", "due"],
                condition=Q(state__in=["new", "in_progress"]),  # OPEN_STATES, as the inbox's filter asks
                name="comms_letter_open_inbox",
            ),
            # The unmatched in the inbox's order: a page of them without walking past the matched.
            models.Index(
                fields=["practice", "-issued", "-id"],
                condition=Q(client__isnull=True),
                name="comms_letter_unmatched_inbox",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind_words}: {self.title}"

    @property
    def kind_words(self) -> str:
        return kind_in_words(self.kind)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due is not None and self.due < timezone.localdate()

    @property
    def must_pass_on(self) -> bool:
        return self.to_practice and self.told_on is None

    @property
    def category(self) -> str:
        return category_of(self.kind)

    @property
    def category_words(self) -> str:
        return CATEGORY_WORDS.get(self.category, self.category)


def get_letter_or_404(user: User, pk: int) -> Letter:
    return get_object_or_404(Letter.objects.visible_to(user).select_related("client", "owner", "told_by"), pk=pk)


class LetterDocument(models.Model):
    """The letter's PDF, stored once and sealed (it carries the client's TFN)."""

    letter = models.OneToOneField(Letter, on_delete=models.CASCADE, related_name="document")
    file_name = models.CharField(max_length=200)
    media_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    content = SealedField()
    stored_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.file_name


# The channel that sends a client's letters to the agent's online inbox rather than to the client (COMMPREF).
TO_PRACTICE_CHANNEL = "ELEC"
CHANNEL_WORDS = {
    "ELEC": "To the practice's online inbox (the client gets no notice from the ATO)",
    "POST": "By post to the client",
    "EMAIL": "By email to the client",
}
CHANNEL_SHORT_WORDS = {
    "ELEC": "to the practice's online inbox",
    "POST": "by post to the client",
    "EMAIL": "by email to the client",
}


class Preference(models.Model):
    """Where the ATO sends the letters (COMMPREF), as it last answered: the practice default (``client`` None) or a
    client's. ``own`` is false when the client has no preference of its own and the default applies to it."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10)
    email = models.CharField(max_length=250, blank=True)
    own = models.BooleanField(default=True)
    updated = models.DateField(null=True, blank=True)  # when it was set at the ATO; None: never (the ATO's default)
    checked_at = models.DateTimeField(default=timezone.now)
    # Each category of letters as the ATO answered: {"AS": {"channel": "POST", "email": "", "default": false}}.
    categories = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice"], condition=Q(client__isnull=True), name="comms_one_default_preference"
            ),
            models.UniqueConstraint(
                fields=["practice", "client"], condition=Q(client__isnull=False), name="comms_one_preference_a_client"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} ({'practice default' if self.client_id is None else 'client'})"

    @property
    def to_practice(self) -> bool:
        return self.channel == TO_PRACTICE_CHANNEL

    @property
    def channel_words(self) -> str:
        return CHANNEL_WORDS.get(self.channel, self.channel)

    def category_rows(self) -> list[dict[str, object]]:
        """Each category in order, in words: where its letters go and whether the practice default decides it."""
        return [
            {
                "category": CATEGORY_WORDS.get(code, code),
                "channel": CHANNEL_WORDS.get(str(held["channel"]), str(held["channel"])),
                "email": held.get("email") or "",
                "default": bool(held.get("default")),
            }
            for code, held in self.categories.items()
        ]

    def decides(self, category: str) -> tuple[str, str] | None:
        """For a client's preference: the (channel, email) it sets itself for the category's letters, or None when
        the category follows the practice default. An answer that named no categories decides them all when the
        preference is the client's own."""
        held = self.categories.get(category)
        if held is not None:
            return (str(held["channel"]), str(held.get("email") or "")) if held.get("default") is False else None
        return (self.channel, self.email) if self.own else None

    def sends(self, category: str) -> tuple[str, str]:
        """For the practice default: the (channel, email) of the category's letters."""
        held = self.categories.get(category)
        if held is not None:
            return str(held["channel"]), str(held.get("email") or "")
        return self.channel, self.email


def deciding_itself(category: str) -> Q:
    """The client preferences that set the category themselves (Preference.decides() is not None), in SQL."""
    named = Q(categories__has_key=category)
    return (named & Q(**{f"categories__{category}__default": False})) | (~named & Q(own=True))


class DecidedBy(models.TextChoices):
    CLIENT = "client", "the client's own preference"
    DEFAULT = "default", "the practice default"
    ATO = "ato", "the ATO's own default (no preference known)"


# The ATO's own default when no preference was ever set or asked about: the agent's online inbox.
ATO_DEFAULT_CHANNEL = TO_PRACTICE_CHANNEL


def masked_email(email: str) -> str:
    """An address shown in a file that leaves the portal: enough to tell whose it is (the first letter and the
    domain), not enough to write to."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if at and local else ("***" if email else "")


@dataclass(frozen=True)
class Destination:
    """Where the ATO sends one category of a client's letters, and what decided it."""

    category: str
    channel: str
    email: str
    decided_by: DecidedBy

    @property
    def to_practice(self) -> bool:
        return self.channel == TO_PRACTICE_CHANNEL

    @property
    def category_words(self) -> str:
        return CATEGORY_WORDS.get(self.category, self.category)

    @property
    def channel_words(self) -> str:
        return CHANNEL_WORDS.get(self.channel, self.channel)

    @property
    def decided_by_words(self) -> str:
        return DecidedBy(self.decided_by).label

    def __str__(self) -> str:
        """In words: "Income tax: to the practice's online inbox, by the practice default"."""
        where = CHANNEL_SHORT_WORDS.get(self.channel, self.channel)
        return f"{self.category_words}: {where}, by {self.decided_by_words}"


class Destinations:
    """Where the ATO sends each category of the letters of a set of clients, by the preferences it last answered:
    the client's own for the category, else the practice default's for it, else the ATO's own default (the
    agent's inbox). The last is the safe side: a letter of unknown destination is one to pass on. Made by
    ``held()`` in one query whatever the number of clients; a client not in the set follows the default."""

    def __init__(self, default: Preference | None, clients: dict[int, Preference]) -> None:
        self.default, self.clients = default, clients

    @classmethod
    def held(cls, practice: Practice | int, client_ids: Iterable[int | None]) -> Destinations:
        practice_id = practice if isinstance(practice, int) else practice.pk
        ids = {pk for pk in client_ids if pk is not None}
        rows = Preference.objects.filter(practice_id=practice_id).filter(Q(client__isnull=True) | Q(client_id__in=ids))
        default, clients = None, {}
        for row in rows:
            if row.client_id is None:
                default = row
            else:
                clients[row.client_id] = row
        return cls(default, clients)

    def of(self, client_id: int | None, category: str) -> Destination:
        own = self.clients.get(client_id) if client_id is not None else None
        decided = own.decides(category) if own is not None else None
        if decided is not None:
            return Destination(category, *decided, DecidedBy.CLIENT)
        if self.default is not None:
            return Destination(category, *self.default.sends(category), DecidedBy.DEFAULT)
        return Destination(category, ATO_DEFAULT_CHANNEL, "", DecidedBy.ATO)

    def to_practice(self, client_id: int | None, category: str) -> bool:
        return self.of(client_id, category).to_practice

    def of_letter(self, letter: Letter) -> Destination:
        return self.of(letter.client_id, letter.category)


# --- changing where the ATO sends the letters (COMMPREF Validate, then Submit) ---

# COMMPREF's categories of letters (ato_gateway.wire.documents.commpref.CATEGORIES); the codes are the project's own.
CATEGORY_WORDS = {
    "ITX": "Income tax",
    "AS": "Activity statements",
    "SUP": "Superannuation",
    "DEBT": "Debt and payment plans",
    "FBT": "Fringe benefits tax",
    "EXC": "Excise and fuel schemes",
    "GEN": "General and other letters",
}


class PreferenceChangeStatus(models.TextChoices):
    VALIDATING = "validating", "Being checked by the ATO"
    VALIDATED = "validated", "Checked: ready to submit"
    SUBMITTING = "submitting", "Sent to the ATO"
    ACCEPTED = "accepted", "Changed at the ATO"
    REFUSED = "refused", "Refused by the ATO"
    FAILED = "failed", "Could not be completed"


class PreferenceBulk(models.Model):
    """One change of preference for one or many clients (or for the practice default): each client's change is
    its own row, validated and submitted on its own, so one refused client leaves the others changed. A bulk of
    many submits each validated row by itself; a single change waits for its Submit."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    channel = models.CharField(max_length=10, blank=True)  # blank: back to the practice default
    email = models.CharField(max_length=250, blank=True)
    categories = models.JSONField(default=list, blank=True)  # COMMPREF codes; none: every category
    submit_when_validated = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Preference change of {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def channel_words(self) -> str:
        return CHANNEL_WORDS.get(self.channel, self.channel) if self.channel else "Back to the practice default"

    @property
    def categories_words(self) -> str:
        return ", ".join(CATEGORY_WORDS.get(c, c) for c in self.categories) or "Every category"

    def counts(self, user: User | None = None) -> dict[str, int]:
        """How many clients' changes are in each state; with ``user``, of the clients that user sees (a member
        restricted to groups is told nothing of the others, not even how many there are). The practice default's
        row belongs to no client and counts for all."""
        changes = self.changes.all()  # type: ignore[attr-defined]
        if user is not None:
            changes = changes.filter(Q(client__isnull=True) | Q(client__in=Client.objects.visible_to(user)))
        found = dict(changes.values("status").annotate(n=models.Count("pk")).values_list("status", "n"))
        return {status: int(found.get(status, 0)) for status in PreferenceChangeStatus.values}


class PreferenceChange(models.Model):
    """One client's change (``client`` None: the practice default's) within its bulk."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    bulk = models.ForeignKey(PreferenceBulk, on_delete=models.CASCADE, related_name="changes")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=12, choices=PreferenceChangeStatus.choices, default=PreferenceChangeStatus.VALIDATING
    )
    validate_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submit_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Preference change for {self.client or 'the practice default'}"


class PreferenceAuthority(models.Model):
    """The client's written authorisation for the ATO to send its letters to the practice, recorded before such a
    preference is submitted: an uploaded document (sealed: it can carry the TFN), or the date it was signed and the
    member of staff who holds it."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    signed_on = models.DateField()
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    file_name = models.CharField(max_length=200, blank=True)
    document = SealedField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(document="") | Q(held_by__isnull=False), name="comms_authority_document_or_holder"
            )
        ]

    def __str__(self) -> str:
        return f"Authority of {self.client} signed {self.signed_on}"
