"""Small helpers over iterables that more than one app uses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last one shorter), taken as the items come: a streamed page is applied a chunk
    at a time, never held whole. (``itertools.batched`` does this from Python 3.12; the project runs on 3.11.)"""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
