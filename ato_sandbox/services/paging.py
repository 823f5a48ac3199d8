"""Keyset paging for the list actions: a page size the sandbox caps, and an opaque continuation that holds the
position after the last item sent (an id), never an offset, so a change to the list between pages neither repeats
nor skips an item that was already there."""

from __future__ import annotations

import base64
import binascii

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 500


def page_size(requested: int | None) -> int:
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def token(scope: str, last_id: int) -> str:
    """The continuation after ``last_id``. ``scope`` names the list (service and client), so a continuation used
    for another list is refused instead of silently starting it part-way."""
    return base64.urlsafe_b64encode(f"{scope}:{last_id}".encode()).decode("ascii").rstrip("=")


def position(scope: str, continuation: str | None) -> int | None:
    """The id to continue after: 0 without a continuation, None when the continuation is not one of ``scope``."""
    if continuation is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(continuation + "=" * (-len(continuation) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, last = text.rpartition(":")
    if prefix != scope or not last.isdigit():
        return None
    return int(last)
