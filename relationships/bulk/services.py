"""Bulk linking from a CSV of identifiers: every row validated first, then the chosen rows submitted.

The upload reads the whole file, refuses the rows it can tell are wrong without asking (a check digit, a missing
name, a level it cannot read) and records one Validate per good row, all in one transaction and sent in the
gateway's batches, under a purpose of their own (``PURPOSE``). The ATO's answers come back to ``on_row_answer``,
which applies each the way a person's step is applied (``services.answer_apply``) and then moves the row and the
bulk link on, in the same transaction. The chosen rows are then submitted the same way; each accepted one is linked
in the register. A row's state is never stored twice: it is read from its
requests, so a page, the report and the handler cannot disagree.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404

from ato_gateway import api
from ato_gateway.api import Question, Reply
from clients.csv_io import CsvProblem, decode
from clients.validation import clean_abn, clean_birth_date, clean_tfn, clean_wpn
from portal.audit import audit_record
from portal.models import User
from relationships import services
from relationships.models import (
    ROLE_NAMES,
    AtoRequest,
    BulkJob,
    BulkRow,
    BulkStatus,
    Level,
    RequestKind,
    RequestStatus,
    describe_level,
)

if TYPE_CHECKING:
    pass

# One bulk link is one review table a person reads row by row: a few thousand rows at most. Larger lists are
# better split, and the limits keep one upload's transaction (a sealed identifier and a message a row) short.
# The kind of question a bulk row's Validate or Submit asks: its answers come back to ``on_row_answer``.
PURPOSE = "relationships.bulk_row"
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 2000
COLUMNS = ("tfn", "abn", "wpn", "family_name", "given_name", "date_of_birth", "organisation_name", "level")
_ALIASES = {
    "given_names": "given_name",
    "first_name": "given_name",
    "surname": "family_name",
    "dob": "date_of_birth",
    "birth_date": "date_of_birth",
    "organisation": "organisation_name",
    "organization_name": "organisation_name",
}
_MAX_LENGTHS = {"family_name": 100, "given_name": 100, "organisation_name": 200}
_ACCOUNT = re.compile(r"(ITX|AS|FBT)(?:\s+(\d{3}))?")
_ROLE = re.compile(r"([A-Z]+)\s+ON\s+(AS)(?:\s+(\d{3}))?")


# --- reading the file ---------------------------------------------------------------------------------------------


@dataclass
class ParsedRow:
    """One data row as read: either what to ask the ATO, or the problem that stops it being asked. The identifier
    is only ever in memory here, on its way to being sealed."""

    row_number: int
    label: str = ""
    identifier_kind: str = ""
    identifier: str = field(default="", repr=False)
    identifier_last3: str = ""  # kept even when the identifier is refused, so the row can be recognised
    family_name: str = ""
    given_name: str = ""
    organisation_name: str = ""
    birth_date: date | None = None
    links: list[services.LinkKey] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str:
        return " ".join(self.problems)[:300]


def parse_levels(raw: str) -> list[services.LinkKey]:
    """The level column: blank or "client"; an account ("ITX", "FBT", "AS 001"); a role ("PAYGW on AS 001");
    several separated by ";". An activity statement account without a branch is branch 001."""
    keys: list[services.LinkKey] = []
    for part in (raw or "").split(";"):
        text = " ".join(part.split()).upper()
        if text in ("", "CLIENT"):
            key: services.LinkKey = (Level.CLIENT, "", "", "")
        elif match := _ACCOUNT.fullmatch(text):
            kind, branch = match.group(1), match.group(2) or ""
            if kind != "AS" and branch:
                raise ValueError(f"“{part.strip()}”: only an activity statement (AS) account has a branch.")
            key = (Level.ACCOUNT, kind, branch or ("001" if kind == "AS" else ""), "")
        elif match := _ROLE.fullmatch(text):
            role = match.group(1)
            if role not in ROLE_NAMES:
                raise ValueError(f"“{part.strip()}”: the role must be one of {', '.join(ROLE_NAMES)}.")
            key = (Level.ROLE, "AS", match.group(3) or "001", role)
        else:
            raise ValueError(
                f"“{part.strip()}” is not a level: write client, an account (ITX, FBT, AS 001) or a role "
                "(PAYGW on AS 001)."
            )
        if key not in keys:
            keys.append(key)
    return keys


def _header(names: list[str] | None) -> list[str]:
    if not names:
        raise CsvProblem("The file is empty. The first line must name the columns: " + ", ".join(COLUMNS))
    cleaned = [n.strip().lower().replace(" ", "_") for n in names]
    cleaned = [_ALIASES.get(n, n) for n in cleaned]
    if not {"tfn", "abn", "wpn"} & set(cleaned) or not {"family_name", "organisation_name"} & set(cleaned):
        raise CsvProblem(
            "The first line must name the columns. Needed: at least one of tfn, abn or wpn, and family_name or "
            "organisation_name. Known columns: " + ", ".join(COLUMNS)
        )
    return cleaned


def _identifier(values: dict[str, str], row: ParsedRow) -> None:
    """Every identifier given is checked; the TFN is used if there is one, else the ABN, else the WPN."""
    for kind, cleaner in (("TFN", clean_tfn), ("ABN", clean_abn), ("WPN", clean_wpn)):
        raw = values.get(kind.lower(), "")
        if not raw:
            continue
        digits = re.sub(r"\D", "", raw)
        if not row.identifier_kind:
            row.identifier_kind, row.identifier_last3 = kind, digits[-3:]
        try:
            value = cleaner(raw)
        except ValidationError as exc:
            row.problems.append(exc.messages[0])
            continue
        if row.identifier_kind == kind:
            row.identifier = value
    if not row.identifier_kind:
        row.problems.append("The row needs a TFN, an ABN or a WPN.")


def _names(values: dict[str, str], row: ParsedRow) -> None:
    for name, limit in _MAX_LENGTHS.items():
        if len(values.get(name, "")) > limit:
            row.problems.append(f"The {name.replace('_', ' ')} is longer than {limit} characters.")
    row.family_name = values.get("family_name", "")[:100]
    row.given_name = values.get("given_name", "")[:100]
    row.organisation_name = values.get("organisation_name", "")[:200]
    if row.family_name and row.organisation_name:
        row.problems.append("Give a family name (a person) or an organisation name, not both.")
    elif row.family_name:
        try:
            row.birth_date = clean_birth_date(values.get("date_of_birth", ""))
        except ValidationError as exc:
            row.problems.append(f"Date of birth: {exc.messages[0]}")
        else:
            if row.birth_date is None:
                row.problems.append("A person needs a date of birth: the ATO matches it with the family name.")
    elif not row.organisation_name:
        row.problems.append("The row needs a family name (a person) or an organisation name.")
    person = ", ".join(filter(None, [row.family_name.upper(), row.given_name]))
    row.label = (row.organisation_name or person)[:250]


def read_rows(text: str) -> list[ParsedRow]:
    """Every data row, with its problems. Raises CsvProblem when the file as a whole cannot be read."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[ParsedRow] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        names = _header(next(reader, None))
        for index, raw in enumerate(reader):
            if not any(v.strip() for v in raw):
                continue
            if len(rows) >= MAX_ROWS:
                raise CsvProblem(f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files.")
            values = {name: (raw[i].strip() if i < len(raw) else "") for i, name in enumerate(names)}
            row = ParsedRow(row_number=index + 2)  # as a spreadsheet numbers it: line 1 is the header
            _identifier(values, row)
            _names(values, row)
            try:
                row.links = parse_levels(values.get("level", ""))
            except ValueError as exc:
                row.problems.append(f"Level: {exc}")
            if row.identifier:
                first = seen.setdefault((row.identifier_kind, row.identifier), row.row_number)
                if first != row.row_number:
                    row.problems.append(f"The same {row.identifier_kind} as row {first}: one row a client.")
            rows.append(row)
    except csv.Error as exc:
        raise CsvProblem(f"The file is not valid CSV: {exc}.") from None
    return rows


# --- the workflow ---------------------------------------------------------------------------------------------------


class NotReady(Exception):
    """The bulk link is not at the step the action needs; the message says what to do."""


def get_bulk_or_404(user: User, pk: int) -> BulkJob:
    """A bulk link of the user's practice. Staff restricted to client groups see only their own: a file of
    identifiers is not limited to their groups."""
    jobs = bulk_visible_to(user)
    return get_object_or_404(jobs, pk=pk)


def bulk_visible_to(user: User) -> Any:
    jobs = BulkJob.objects.filter(practice=user.tenant)
    return jobs.filter(created_by=user) if user.restricted_to_groups else jobs


def _validate_request(user: User, job: BulkJob, row: BulkRow, parsed: ParsedRow) -> AtoRequest:
    req = AtoRequest(
        practice=job.practice,
        created_by=user,
        kind=RequestKind.VALIDATE,
        bulk_row=row,
        family_name=parsed.family_name,
        given_name=parsed.given_name if parsed.family_name else "",
        organisation_name=parsed.organisation_name,
        birth_date=parsed.birth_date,
        links=[list(k) for k in parsed.links],
    )
    req.seal_identifier(parsed.identifier_kind, parsed.identifier)
    return req


def bulk_upload(*, user: User, filename: str, raw: bytes) -> BulkJob:
    """Store the rows and ask the ATO to validate every good one. Raises CsvProblem, having stored nothing,
    when the file as a whole is bad; a bad row is kept with its problem and never stops the good ones."""
    parsed = read_rows(decode(raw, max_bytes=MAX_BYTES))
    if not parsed:
        raise CsvProblem("The file has a header but no rows.")
    user = user
    with transaction.atomic(durable=True):
        job = BulkJob.objects.create(practice=user.tenant, created_by=user, filename=filename[:200])
        rows = BulkRow.objects.bulk_create(
            [
                BulkRow(
                    job=job,
                    row_number=p.row_number,
                    label=p.label,
                    identifier_kind=p.identifier_kind,
                    identifier_last3=p.identifier_last3,
                    problem=p.problem,
                )
                for p in parsed
            ]
        )
        asked = [_validate_request(user, job, r, p) for r, p in zip(rows, parsed, strict=True) if not p.problems]
        AtoRequest.objects.bulk_create(asked)
        services.send_many(asked, purpose=PURPOSE)
        if not asked:
            job.status = BulkStatus.REVIEW  # nothing to ask: the review table shows every row's problem
            job.save(update_fields=["status"])
        audit_record(
            "relationships.bulk_uploaded",
            actor=user,
            target=job,
            details={"rows": len(rows), "asked": len(asked), "refused_before_asking": len(rows) - len(asked)},
        )
    return job


def _latest_requests(job: BulkJob) -> dict[int, AtoRequest]:
    """Each row's most recent request (its current step)."""
    latest: dict[int, AtoRequest] = {}
    for req in AtoRequest.objects.filter(bulk_row__job=job).select_related("question").order_by("created_at", "pk"):
        assert req.bulk_row_id is not None
        latest[req.bulk_row_id] = req
    return latest


def bulk_submit(*, user: User, job: BulkJob, rows: Iterable[BulkRow]) -> int:
    """Link the chosen rows: a Submit for each whose Validate the ATO answered without errors (warnings shown and
    ticked). Returns how many were sent. Only once per bulk link: a second click or tab is refused."""
    chosen = {r.pk for r in rows}
    with transaction.atomic(durable=True):
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != BulkStatus.REVIEW:
            raise NotReady(
                "These rows are still being checked with the ATO; wait for the review table to finish."
                if locked.status == BulkStatus.VALIDATING
                else "The chosen rows of this bulk link have already been sent to the ATO."
            )
        validated = [
            req
            for row_id, req in _latest_requests(locked).items()
            if row_id in chosen and req.kind == RequestKind.VALIDATE and req.status == RequestStatus.ANSWERED
        ]
        if not validated:
            raise NotReady("Choose at least one row the ATO validated.")
        BulkRow.objects.filter(job=locked).update(chosen=False)
        BulkRow.objects.filter(pk__in=[r.bulk_row_id for r in validated]).update(chosen=True)
        submits = [services.next_step(req, RequestKind.SUBMIT, user) for req in validated]
        AtoRequest.objects.bulk_create(submits)
        services.send_many(submits, purpose=PURPOSE)
        locked.status = BulkStatus.SUBMITTING
        locked.save(update_fields=["status"])
        numbers = sorted(BulkRow.objects.filter(chosen=True, job=locked).values_list("row_number", flat=True))
        audit_record(
            "relationships.bulk_submitted",
            actor=user,
            target=locked,
            details={"rows": len(submits), "row_numbers": numbers[:500]},
        )
    return len(submits)


def bulk_check_again(*, user: User, job: BulkJob) -> int:
    """Validate again the rows whose Validate could not be sent (the ATO was down and the gateway gave up);
    refusals are the ATO's answer and are not asked again. Returns how many were asked."""
    with transaction.atomic(durable=True):
        locked = BulkJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != BulkStatus.REVIEW:
            raise NotReady("Rows can be checked again only while the review table is shown.")
        failed = [
            req
            for req in _latest_requests(locked).values()
            if req.kind == RequestKind.VALIDATE and req.status == RequestStatus.FAILED
        ]
        if not failed:
            return 0
        again = [services.next_step(req, RequestKind.VALIDATE, user) for req in failed]
        AtoRequest.objects.bulk_create(again)
        services.send_many(again, purpose=PURPOSE)
        locked.status = BulkStatus.VALIDATING
        locked.save(update_fields=["status"])
        audit_record("relationships.bulk_checked_again", actor=user, target=locked, details={"rows": len(again)})
    return len(again)


def on_row_answer(question: Question, reply: Reply[Any]) -> None:
    """The handler of the bulk rows' questions."""
    req = services.answer_apply(question, reply)
    if req is not None:
        on_request_settled(req)


def on_request_settled(req: AtoRequest) -> None:
    """Called in the handler's transaction when a request of a bulk row has its answer. A validated row without
    warnings is chosen by default; one with warnings waits for a person to tick it."""
    if req.bulk_row_id is None:
        return
    if req.kind == RequestKind.VALIDATE and req.status == RequestStatus.ANSWERED:
        BulkRow.objects.filter(pk=req.bulk_row_id).update(chosen=not services.warnings_in_plain_words(req))
    job_id = BulkRow.objects.filter(pk=req.bulk_row_id).values_list("job_id", flat=True).first()
    if job_id is not None:
        bulk_finish_if_settled(job_id)


def bulk_finish_if_settled(job_id: int) -> None:
    """Move the bulk link on once no request of it waits. Conditional updates rather than a lock on the job: the
    answers of one bulk link settle in many workers' transactions at once, and the last two may each still see
    the other waiting, so the progress view calls this too and whichever looks last finishes it."""
    if AtoRequest.objects.filter(bulk_row__job_id=job_id).waiting().exists():
        return
    BulkJob.objects.filter(pk=job_id, status=BulkStatus.VALIDATING).update(status=BulkStatus.REVIEW)
    BulkJob.objects.filter(pk=job_id, status=BulkStatus.SUBMITTING).update(status=BulkStatus.DONE)


# --- what the pages and the report show -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RowOutcome:
    row: BulkRow
    state: str  # checking, ok, warning, error, linking, linked, not_linked, not_chosen
    words: list[str]
    identifier: str  # masked: never a full TFN
    unsent: bool = False  # the gateway gave up sending it (the ATO was down): it may be asked again

    LABELS = {
        "checking": "Checking with the ATO",
        "ok": "OK",
        "warning": "Warning",
        "error": "Error",
        "linking": "Linking",
        "linked": "Linked",
        "not_linked": "Not linked",
        "not_chosen": "Not chosen",
    }

    @property
    def label(self) -> str:
        return self.LABELS[self.state]

    @property
    def choosable(self) -> bool:
        return self.state in ("ok", "warning")

    @property
    def badge(self) -> str:
        return {"ok": "good", "linked": "good", "warning": "warn", "error": "bad", "not_linked": "bad"}.get(
            self.state, ""
        )


def _masked(row: BulkRow, req: AtoRequest | None) -> str:
    if req is not None:
        return f"{req.identifier_kind} {req.masked_identifier}"
    if not row.identifier_kind:
        return ""
    return f"{row.identifier_kind} ending {row.identifier_last3}" if row.identifier_last3 else row.identifier_kind


def _levels(req: AtoRequest) -> str:
    return "; ".join(describe_level(*k) for k in req.links)


def _outcome(row: BulkRow, steps: list[AtoRequest], job: BulkJob) -> RowOutcome:
    if not steps:
        return RowOutcome(row, "error", [row.problem or "Not asked."], _masked(row, None))
    req = steps[-1]
    masked = _masked(row, req)
    if req.status == RequestStatus.WAITING:
        words = [f"Asking for {_levels(req)}."]
        if req.question is not None and req.question.is_retrying:
            words = ["The ATO is not answering yet; the request is kept and tried again."]
        return RowOutcome(row, "checking" if req.kind == RequestKind.VALIDATE else "linking", words, masked)
    if req.status != RequestStatus.ANSWERED:
        state = "error" if req.kind == RequestKind.VALIDATE else "not_linked"
        unsent = req.status == RequestStatus.FAILED
        return RowOutcome(row, state, services.refusal_in_plain_words(req), masked, unsent=unsent)
    notes = [api.item_in_plain_words(i) for i in req.items("Information") if i.code != "GEN.OK"]  # not news
    if req.kind == RequestKind.SUBMIT:
        return RowOutcome(row, "linked", [f"Linked for {_levels(req)}.", *notes], masked)
    if job.status in (BulkStatus.SUBMITTING, BulkStatus.DONE):
        return RowOutcome(row, "not_chosen", ["Validated but not chosen, so not linked."], masked)
    warnings = services.warnings_in_plain_words(req)
    if warnings:
        return RowOutcome(row, "warning", warnings, masked)
    return RowOutcome(row, "ok", [f"Can be linked for {_levels(req)}.", *notes], masked)


def row_outcomes(job: BulkJob) -> list[RowOutcome]:
    steps = AtoRequest.objects.select_related("question__message").order_by("created_at", "pk")
    rows = list(job.rows.prefetch_related(Prefetch("requests", queryset=steps)))
    return [_outcome(row, list(row.requests.all()), job) for row in rows]


@dataclass(frozen=True)
class Progress:
    total_rows: int
    asked: int  # requests of the current step
    settled: int

    @property
    def percent(self) -> int:
        return 100 if not self.asked else self.settled * 100 // self.asked


def progress(job: BulkJob) -> Progress:
    """How far the current step is: the Validates while checking, the Submits once linking."""
    kind = RequestKind.VALIDATE if job.status in (BulkStatus.VALIDATING, BulkStatus.REVIEW) else RequestKind.SUBMIT
    counts = AtoRequest.objects.filter(bulk_row__job=job, kind=kind).aggregate(
        asked=Count("bulk_row", distinct=True),
        waiting=Count("bulk_row", filter=Q(question__state=RequestStatus.WAITING), distinct=True),
    )
    return Progress(job.rows.count(), counts["asked"], counts["asked"] - counts["waiting"])


def summary(outcomes: list[RowOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.state] = counts.get(o.state, 0) + 1
        if o.unsent:
            counts["unsent"] = counts.get("unsent", 0) + 1
    return counts


REPORT_COLUMNS = ("row", "name", "identifier", "outcome", "message")


def report_rows(*, user: User, job: BulkJob) -> Iterator[list[object]]:
    """The outcome report: one line a row, the identifier masked."""
    with transaction.atomic():
        audit_record("relationships.bulk_report_downloaded", actor=user, target=job)
    yield list(REPORT_COLUMNS)
    cell = services.spreadsheet_cell
    for o in row_outcomes(job):
        yield [o.row.row_number, cell(o.row.label), o.identifier, o.label, cell(" ".join(o.words))]
