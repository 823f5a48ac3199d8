"""Reading and writing the client CSV. Whole-file problems raise CsvProblem before anything is stored; row
problems are returned per row so that a bad row never stops the good ones."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError

from clients.models import ClientKind
from clients.validation import clean_abn, clean_birth_date, clean_tfn, clean_wpn

COLUMNS = ("kind", "family_name", "given_names", "organisation_name", "date_of_birth", "tfn", "abn", "wpn", "group")
EXPORT_COLUMNS = (
    "kind",
    "family_name",
    "given_names",
    "organisation_name",
    "date_of_birth",
    "tfn_masked",
    "abn",
    "wpn",
    "groups",
)
_KIND_ALIASES = {k.value: k.value for k in ClientKind} | {k.label.lower(): k.value for k in ClientKind}
_MAX_LENGTHS = {"family_name": 100, "given_names": 150, "organisation_name": 200, "group": 100}


class CsvProblem(Exception):
    """The file as a whole cannot be imported; the message says why in words a user can act on."""


@dataclass(frozen=True)
class ClientRow:
    kind: str
    family_name: str
    given_names: str
    organisation_name: str
    date_of_birth: date | None
    tfn: str
    abn: str
    wpn: str
    group: str


@dataclass(frozen=True)
class RowError:
    row_number: int
    field: str
    message: str


def decode(raw: bytes, *, max_bytes: int) -> str:
    if len(raw) > max_bytes:
        raise CsvProblem(f"The file is {len(raw) // 1024:,} KB; the limit is {max_bytes // 1024:,} KB. Split it.")
    if b"\x00" in raw:
        raise CsvProblem("This is not a CSV text file (it contains binary data). Save it from Excel as CSV UTF-8.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            # Excel on Windows saves "CSV" as cp1252; accept it rather than make the user re-save.
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            raise CsvProblem("The file's text encoding is not recognised. Save it as CSV UTF-8.") from None


def _header(fields: list[str] | None) -> list[str]:
    if not fields:
        raise CsvProblem("The file is empty. The first line must name the columns: " + ", ".join(COLUMNS))
    names = [f.strip().lower().replace(" ", "_") for f in fields]
    if "kind" not in names or not ({"family_name", "organisation_name"} & set(names)):
        raise CsvProblem(
            "The first line must name the columns. Needed: kind, and family_name or organisation_name. "
            "Known columns: " + ", ".join(COLUMNS)
        )
    return names


def iter_rows(text: str, *, start: int = 0) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet shows it, row) from data row `start` (0-based) on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    names = _header(next(reader, None))
    for index, values in enumerate(reader):
        if index < start:
            continue
        if not any(v.strip() for v in values):
            continue
        yield index + 2, {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(names)}


def count_rows(text: str, *, max_rows: int) -> int:
    try:
        total = 0
        for _ in iter_rows(text):
            total += 1
            if total > max_rows:
                raise CsvProblem(f"The file has more than {max_rows:,} rows. Split it into smaller files.")
        return total
    except csv.Error as exc:
        raise CsvProblem(f"The file is not valid CSV: {exc}.") from None


def validate_row(row_number: int, row: dict[str, str]) -> tuple[ClientRow | None, list[RowError]]:
    errors: list[RowError] = []

    def check(field: str, cleaner: object) -> str:
        try:
            return cleaner(row.get(field, ""))  # type: ignore[operator,no-any-return]
        except ValidationError as exc:
            errors.append(RowError(row_number, field, exc.messages[0]))
            return ""

    kind = _KIND_ALIASES.get(row.get("kind", "").lower(), "")
    if not kind:
        errors.append(RowError(row_number, "kind", "Kind must be one of: " + ", ".join(_KIND_ALIASES)))
    for field, limit in _MAX_LENGTHS.items():
        if len(row.get(field, "")) > limit:
            errors.append(RowError(row_number, field, f"Longer than {limit} characters."))
    individual = kind == ClientKind.INDIVIDUAL
    if individual and not row.get("family_name"):
        errors.append(RowError(row_number, "family_name", "An individual needs a family name."))
    if kind and not individual and not row.get("organisation_name"):
        errors.append(RowError(row_number, "organisation_name", "An organisation needs its name."))
    tfn = check("tfn", clean_tfn)
    abn = check("abn", clean_abn)
    wpn = check("wpn", clean_wpn)
    birth = check("date_of_birth", clean_birth_date) if individual else None
    if not (row.get("tfn") or row.get("abn") or row.get("wpn")):
        errors.append(RowError(row_number, "tfn", "A client needs a TFN, an ABN or a WPN."))
    if errors:
        return None, errors
    client = ClientRow(
        kind=kind,
        family_name=row.get("family_name", "") if individual else "",
        given_names=row.get("given_names", "") if individual else "",
        organisation_name="" if individual else row.get("organisation_name", ""),
        date_of_birth=birth or None,  # type: ignore[arg-type]
        tfn=tfn,
        abn=abn,
        wpn=wpn,
        group=row.get("group", ""),
    )
    return client, []


def write_csv(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Lines of CSV, one at a time, for a streaming response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
