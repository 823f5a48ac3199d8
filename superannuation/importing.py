"""The member file: CSV in (at scale, a bad row never stops the good ones) and CSV out (TFNs masked).

``member_import_start`` seals the upload (it holds TFNs) and queues ``member_import_run``, which reads it a chunk of
rows at a time: each chunk's new members are one bulk insert, its updates one bulk update, and its progress
(``done_rows``) commits with them, so a worker killed half way resumes after the last chunk it wrote. The content
is emptied when the import finishes. The columns are in docs/superannuation.md and ``TEMPLATE``."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import django_rq
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clients.validation import clean_birth_date, clean_tfn
from portal.audit import audit_record
from portal.db.bulk import insert_many, update_many
from portal.iterables import batched
from portal.models import User
from portal.sealing import seal_bytes, unseal_bytes
from superannuation.access import require_manage, require_view, visible_fund
from superannuation.events import foundation_built, pending_event
from superannuation.models import (
    FLAG_ATTRIBUTES,
    AccountPhase,
    AccountStatus,
    EventKind,
    LostStatus,
    Member,
    MemberImport,
    SuperFund,
    TfnChange,
    Transaction,
)

REQUIRED = ("member_number", "family_name", "date_of_birth")
ATTRIBUTES = FLAG_ATTRIBUTES
COLUMNS = (
    "member_number",
    "family_name",
    "given_names",
    "date_of_birth",
    "tfn",
    "address_line1",
    "address_line2",
    "locality",
    "state",
    "postcode",
    "status",
    "opened_on",
    "closed_on",
    "phase",
    *ATTRIBUTES,
    "lost_status",
    "update",
)
EXPORT_COLUMNS = (
    *("tfn_masked" if c == "tfn" else c for c in COLUMNS if c != "update"),
    "tfn_from_ato",
    "tfn_validation",
)
TEMPLATE = (
    ",".join(COLUMNS)
    + "\n"
    + "M000123,Citizen,Jane Mary,1980-04-01,,1 Harbour St,,Sydney,NSW,2000,open,2015-07-01,,accumulation,"
    + "yes,yes,yes,yes,no,yes,no,no,not_lost,\n"
)
CHUNK = 500
STATES = {"ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"}
_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0"}
_MEMBER_FIELDS = (
    "family_name",
    "given_names",
    "date_of_birth",
    "address_line1",
    "address_line2",
    "locality",
    "state",
    "postcode",
    "phase",
    "lost_status",
    *ATTRIBUTES,
)
_MAX_LENGTHS = {
    "member_number": 40,
    "family_name": 100,
    "given_names": 150,
    "address_line1": 100,
    "address_line2": 100,
    "locality": 60,
}


class FileProblem(Exception):
    """The file as a whole cannot be read; the message says why in words a person can act on."""


@dataclass
class MemberRow:
    """One valid row: the member's fields, its TFN (empty: none quoted), and whether it may update a member."""

    member_number: str
    fields: dict[str, Any]
    tfn: str
    update: bool


def _choice(value: str, choices: type[AccountPhase] | type[LostStatus] | type[AccountStatus], column: str) -> str:
    key = value.strip().lower().replace(" ", "_").replace("-", "_")
    for choice in choices:
        if key in (choice.value, str(choice.label).lower().replace(" ", "_")):
            return str(choice.value)
    allowed = ", ".join(str(c.value) for c in choices)
    raise ValidationError(f"{column}: “{value.strip()[:30]}” is not a code this file takes ({allowed}).")


def _flag(value: str, column: str) -> bool | None:
    key = value.strip().lower()
    if not key:
        return None
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise ValidationError(f"{column}: write yes or no.")


def _day(value: str, column: str) -> date | None:
    raw = value.strip()
    if not raw:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValidationError(f"{column}: write the date as YYYY-MM-DD or DD/MM/YYYY.")


def validate_row(raw: dict[str, str]) -> tuple[MemberRow | None, list[str]]:
    """A row of the file checked as a whole: every problem of the row at once, never the TFN in a message."""
    get = {k: (raw.get(k) or "").strip() for k in COLUMNS}
    messages: list[str] = []
    fields: dict[str, Any] = {}
    for column in REQUIRED:
        if not get[column]:
            messages.append(f"{column.replace('_', ' ').capitalize()} is missing.")
    for column, limit in _MAX_LENGTHS.items():
        if len(get[column]) > limit:
            messages.append(f"{column.replace('_', ' ').capitalize()} is longer than {limit} characters.")
    for column in ("family_name", "given_names", "address_line1", "address_line2", "locality"):
        fields[column] = get[column][: _MAX_LENGTHS[column]]
    tfn = ""
    checks: list[tuple[str, Any]] = [
        ("tfn", lambda: clean_tfn(get["tfn"])),
        ("date_of_birth", lambda: clean_birth_date(get["date_of_birth"]) if get["date_of_birth"] else None),
        ("opened_on", lambda: _day(get["opened_on"], "opened_on")),
        ("closed_on", lambda: _day(get["closed_on"], "closed_on")),
        ("status", lambda: _choice(get["status"], AccountStatus, "status") if get["status"] else AccountStatus.OPEN),
        ("phase", lambda: _choice(get["phase"], AccountPhase, "phase") if get["phase"] else AccountPhase.ACCUMULATION),
        (
            "lost_status",
            lambda: (
                _choice(get["lost_status"], LostStatus, "lost_status") if get["lost_status"] else LostStatus.NOT_LOST
            ),
        ),
        ("update", lambda: bool(_flag(get["update"], "update"))),
        *((column, (lambda c=column: _flag(get[c], c))) for column in ATTRIBUTES),  # type: ignore[misc]
    ]
    values: dict[str, Any] = {}
    for column, check in checks:
        try:
            values[column] = check()
        except ValidationError as exc:
            messages.extend(exc.messages)
    tfn = values.pop("tfn", "") or ""
    if get["state"] and get["state"].upper() not in STATES:
        messages.append(f"state: “{get['state'][:10]}” is not an Australian state or territory code.")
    if get["postcode"] and not re.fullmatch(r"\d{4}", get["postcode"]):
        messages.append("postcode: a postcode has 4 digits.")
    if values.get("status") == AccountStatus.CLOSED and not values.get("closed_on"):
        messages.append("closed_on: a closed account needs the date it closed.")
    if messages:
        return None, messages
    fields.update(
        date_of_birth=values["date_of_birth"],
        state=get["state"].upper(),
        postcode=get["postcode"],
        phase=values["phase"],
        lost_status=values["lost_status"],
        status=values["status"],
        opened_on=values["opened_on"],
        closed_on=values["closed_on"],
    )
    for column in ATTRIBUTES:
        if values[column] is not None:  # blank: the model's default for a new member, unchanged for an update
            fields[column] = values[column]
    return MemberRow(get["member_number"], fields, tfn, values["update"]), []


def _read_header(text: str) -> list[str]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise FileProblem("The file is empty.") from None
    except csv.Error as exc:
        raise FileProblem(f"The file is not a CSV file this import can read ({exc}).") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise FileProblem(
            f"The first row must name the columns; {', '.join(missing)} is missing. "
            "Download the template to see the columns."
        )
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise FileProblem(f"The file has columns this import does not know: {', '.join(unknown[:5])}.")
    return header


def _decode(content: bytes) -> str:
    if b"\x00" in content:
        raise FileProblem("The file is not a CSV text file (it holds binary data).")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileProblem("The file is not UTF-8 text: save it as CSV UTF-8 and upload it again.") from None


def member_import_start(*, user: User, fund: SuperFund, filename: str, content: bytes) -> MemberImport:
    """Seal the file and queue its import. A file whose header cannot be read is refused now, having stored
    nothing the person would lose (the import is recorded with its failure, so they see why)."""
    require_manage(user)
    fund = visible_fund(user, fund)
    with transaction.atomic(durable=True):
        job = MemberImport.objects.create(
            fund=fund, uploaded_by=user, filename=filename[:200], content=seal_bytes(content)
        )
        audit_record("superannuation.import_uploaded", actor=user, target=job, details={"bytes": len(content)})
        transaction.on_commit(
            lambda: django_rq.get_queue("default").enqueue("superannuation.jobs.member_import_run", job.pk)
        )
    return job


def member_import_run(import_pk: int) -> None:
    job = MemberImport.objects.select_related("fund", "uploaded_by").get(pk=import_pk)
    if job.finished_at is not None:
        return
    try:
        text = _decode(unseal_bytes(job.content))
        header = _read_header(text)
    except FileProblem as exc:
        MemberImport.objects.filter(pk=job.pk).update(failure=str(exc), content="", finished_at=timezone.now())
        return
    reader = csv.reader(io.StringIO(text))
    next(reader)
    rows = ((number, dict(zip(header, values, strict=False))) for number, values in enumerate(reader, start=2))
    rows = ((n, r) for n, r in rows if any(v.strip() for v in r.values()))
    total = sum(1 for _ in csv.reader(io.StringIO(text))) - 1
    MemberImport.objects.filter(pk=job.pk).update(total_rows=max(total, 0))
    done = job.done_rows
    try:
        for chunk in batched(rows, CHUNK):
            last_row = chunk[-1][0] - 1
            if last_row <= done:
                continue  # written before the worker was interrupted
            _import_chunk(job, [(n, r) for n, r in chunk if n - 1 > done], last_row)
            done = last_row
    except csv.Error as exc:
        MemberImport.objects.filter(pk=job.pk).update(
            failure=f"The file could not be read past row {done + 1} ({exc}); the rows before it are imported.",
            content="",
            finished_at=timezone.now(),
        )
        return
    with transaction.atomic(durable=True):
        MemberImport.objects.filter(pk=job.pk).update(content="", finished_at=timezone.now(), done_rows=total)
        job.refresh_from_db()
        audit_record(
            "superannuation.imported",
            actor=job.uploaded_by,
            target=job,
            details={"added": job.added, "updated": job.updated, "errors": len(job.errors)},
        )


def _import_chunk(job: MemberImport, chunk: list[tuple[int, dict[str, str]]], last_row: int) -> None:
    """One chunk of rows, written whole with its progress: new members in one insert, updates in one update."""
    with transaction.atomic(durable=True):
        fund = SuperFund.objects.select_for_update().get(pk=job.fund_id)
        locked = MemberImport.objects.select_for_update().get(pk=job.pk)
        if locked.done_rows >= last_row:
            return  # another run of the job (a retry of one thought lost) has written these rows
        valid: list[tuple[int, MemberRow]] = []
        errors: list[dict[str, Any]] = []
        for number, raw in chunk:
            row, messages = validate_row(raw)
            if row is None:
                errors.append(
                    {"row": number, "member_number": (raw.get("member_number") or "")[:40], "messages": messages}
                )
            else:
                valid.append((number, row))
        numbers = [row.member_number for _, row in valid]
        existing = {m.member_number: m for m in Member.objects.filter(fund=fund, member_number__in=numbers)}
        seen_before = set(
            Member.objects.filter(fund=fund, member_number__in=numbers, created_at__gte=job.uploaded_at).values_list(
                "member_number", flat=True
            )
        )
        in_chunk: set[str] = set()
        new: list[Member] = []
        changed: list[Member] = []
        tfn_changes: list[TfnChange] = []
        for number, row in valid:
            duplicate_in_file = row.member_number in in_chunk or (
                row.member_number in seen_before and row.member_number in existing
            )
            if duplicate_in_file:
                errors.append(_duplicate(number, row, "appears earlier in this file; only the first is imported."))
                continue
            in_chunk.add(row.member_number)
            member = existing.get(row.member_number)
            if member is None:
                member = Member(fund=fund, member_number=row.member_number, **_new_fields(row, job))
                member.set_tfn(row.tfn)
                new.append(member)
            elif not row.update:
                errors.append(
                    _duplicate(
                        number, row, "is already a member of this fund; write yes in the update column to update it."
                    )
                )
            else:
                tfn_change = _apply_update(member, row, job.uploaded_by)
                if tfn_change is not None:
                    tfn_changes.append(tfn_change)
                changed.append(member)
        insert_many(new, returning_pk=True)  # the new members' keys, for their events
        if changed:
            update_many(
                changed, [*_MEMBER_FIELDS, "tfn_ciphertext", "tfn_hash", "tfn_last3", "tfn_from_ato", "updated_at"]
            )
        TfnChange.objects.bulk_create(tfn_changes)
        if foundation_built(fund):
            today = timezone.localdate()
            events = [pending_event(m, EventKind.OPENED, m.opened_on) for m in new if m.status != AccountStatus.CLOSED]
            events += [pending_event(m, EventKind.CHANGED, today) for m in changed]
            Transaction.objects.bulk_create(events)
        locked.added += len(new)
        locked.updated += len(changed)
        locked.errors = [*locked.errors, *sorted(errors, key=lambda e: e["row"])]
        locked.done_rows = last_row
        locked.save(update_fields=["added", "updated", "errors", "done_rows"])
        job.added, job.updated, job.errors, job.done_rows = locked.added, locked.updated, locked.errors, last_row


def _duplicate(number: int, row: MemberRow, words: str) -> dict[str, Any]:
    return {
        "row": number,
        "member_number": row.member_number,
        "messages": [f"Member number {row.member_number} {words}"],
    }


def _new_fields(row: MemberRow, job: MemberImport) -> dict[str, Any]:
    fields = dict(row.fields)
    fields["opened_on"] = fields["opened_on"] or timezone.localdate(job.uploaded_at)
    return fields


def _apply_update(member: Member, row: MemberRow, user: User) -> TfnChange | None:
    """An update changes the member's details and attributes; status changes go through close and reopen, which
    report them."""
    for name in _MEMBER_FIELDS:
        if name in row.fields:
            setattr(member, name, row.fields[name])
    member.updated_at = timezone.now()
    if row.tfn and row.tfn != member.reveal_tfn():
        change = TfnChange(
            member=member,
            old_ciphertext=member.tfn_ciphertext,
            old_last3=member.tfn_last3,
            new_last3=row.tfn[-3:],
            source=TfnChange.Source.IMPORT,
            changed_by=user,
        )
        member.set_tfn(row.tfn)
        member.tfn_from_ato = False
        return change
    return None


def members_export_csv(*, user: User, fund: SuperFund) -> Iterator[str]:
    """The fund's register as CSV lines, TFNs masked, streamed a chunk at a time; the export is audited."""
    require_view(user)
    fund = visible_fund(user, fund)
    with transaction.atomic(durable=True):
        audit_record("superannuation.members_exported", actor=user, target=fund)
    return _export_lines(fund)


def _export_lines(fund: SuperFund) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)

    def line(values: list[object]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(values)
        return out.getvalue()

    yield line(list(EXPORT_COLUMNS))
    for member in Member.objects.filter(fund=fund).order_by("pk").iterator(chunk_size=2000):
        values: list[object] = []
        for column in EXPORT_COLUMNS:
            if column == "tfn_masked":
                values.append(member.masked_tfn)
            elif column in ATTRIBUTES or column == "tfn_from_ato":
                values.append("yes" if getattr(member, column) else "no")
            else:
                value = getattr(member, column)
                values.append(value.isoformat() if isinstance(value, date) else (value or ""))
        yield line(values)
