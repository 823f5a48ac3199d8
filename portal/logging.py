"""A logging filter that masks anything shaped like a TFN before a record reaches a handler.

It is the net under the rule that code never logs a TFN: a nine-digit run (with or without the usual spaces) that
passes the TFN check digit is replaced. Longer digit runs (ABNs, phone numbers) are left alone."""

from __future__ import annotations

import logging
import re

from stdnum.au import tfn as tfn_check

_CANDIDATE = re.compile(r"(?<!\d)(\d{3}[ -]?\d{3}[ -]?\d{3})(?!\d)")


def redact_tfns(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(1))
        return "[TFN REDACTED]" if tfn_check.is_valid(digits) else match.group(0)

    return _CANDIDATE.sub(repl, text)


class RedactTFNFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tfns(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True
