"""Checks of Australian identifiers, shared by the client form and the CSV import so both say the same thing.

Each returns the normalised value or raises ValidationError with a message fit to show beside the field. No
message repeats the value: a TFN must not end up in an error list, a log or a page."""

from __future__ import annotations

import re
from datetime import date, datetime

from django.core.exceptions import ValidationError
from stdnum.au import abn as abn_check
from stdnum.au import tfn as tfn_check
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength

_SEPARATORS = re.compile(r"[\s-]")


def clean_tfn(raw: str) -> str:
    value = _SEPARATORS.sub("", raw or "")
    if not value:
        return ""
    try:
        return str(tfn_check.validate(value))
    except InvalidLength:
        raise ValidationError("A TFN has 8 or 9 digits.") from None
    except InvalidFormat:
        raise ValidationError("A TFN has digits only.") from None
    except InvalidChecksum:
        raise ValidationError("This TFN fails the TFN check: a digit is wrong or two are swapped.") from None


def clean_abn(raw: str) -> str:
    value = _SEPARATORS.sub("", raw or "")
    if not value:
        return ""
    try:
        return str(abn_check.validate(value))
    except InvalidLength:
        raise ValidationError("An ABN has 11 digits.") from None
    except InvalidFormat:
        raise ValidationError("An ABN has digits only.") from None
    except InvalidChecksum:
        raise ValidationError("This ABN fails the ABN check: a digit is wrong or two are swapped.") from None


def clean_wpn(raw: str) -> str:
    """A withholding payer number has 11 digits. The ATO publishes no check digit for it, so only the shape
    is checked."""
    value = _SEPARATORS.sub("", raw or "")
    if value and not re.fullmatch(r"\d{11}", value):
        raise ValidationError("A WPN has 11 digits.")
    return value


def clean_branch(raw: str) -> str:
    value = (raw or "").strip() or "001"
    if not re.fullmatch(r"\d{3}", value):
        raise ValidationError("A branch number has 3 digits, such as 001.")
    return value


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y")


def clean_birth_date(raw: str) -> date | None:
    value = (raw or "").strip()
    if not value:
        return None
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if parsed > date.today() or parsed.year < 1880:
            raise ValidationError("The date of birth is out of range.")
        return parsed
    raise ValidationError("Write the date as YYYY-MM-DD or DD/MM/YYYY.")
