"""The RQ worker process of bench_ato_lists: the project's worker class (portal.worker.Worker, jobs run in the
worker process) on the "high" queue, as production runs it (`manage.py rqworker high ... --with-scheduler`), with
a paging handler registered for the purposes of its two lists, CUREL List and CC List (read as streams).

The handler reads each page's stream (`reply.stream`) and, while the page carries a continuation, asks for the next
page with the same request from where this one ended, so the whole list is paged inside the worker. It keeps nothing of
an item: per page it stores in Redis only the item count and an order-independent digest of the items' keys, which
the benchmark compares with the stand-in ATO's register to prove every client and letter was seen exactly once.

Run as `python -m bench._list_worker` from the project root with the benchmark's environment."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ato_gateway.api import Question, Reply
    from ato_gateway.wire.documents import cc, curel

PREFIX = "bench-lists"  # Redis keys of the results: <PREFIX>:<list>:pages, :done, :error
MASK = (1 << 64) - 1
CUREL, CC = "curel", "cc"
# The purposes the pager answers: the benchmark's own, so no domain app's handler (the relationships
# reconciliation reads CUREL List too) is displaced.
PURPOSES = {CUREL: "bench.curel_list", CC: "bench.cc_list"}


def key_digest(key: str) -> int:
    """64 bits of a stable hash of one item's key. The sum of these over a list, modulo 2**64, does not depend on
    the order of the items, and a repeated item or a missing one changes it."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def _redis() -> Any:
    import django_rq

    return django_rq.get_connection("high")


def _record(name: str, question: Question, count: int, digest: int, last: bool) -> None:
    """Stored once the handler's transaction commits, keyed by the question, so that a page's answer handled again
    overwrites its page's figures instead of counting it twice."""
    from django.db import transaction

    def store() -> None:
        redis = _redis()
        redis.hset(f"{PREFIX}:{name}:pages", str(question.pk), f"{count} {digest}")
        if last:
            redis.set(f"{PREFIX}:{name}:done", repr(time.time()))

    transaction.on_commit(store)


def totals(redis: Any, name: str) -> tuple[int, int, int]:
    """(pages, items, digest of the items' keys) recorded so far for one list."""
    pages = redis.hgetall(f"{PREFIX}:{name}:pages")
    items = digest = 0
    for value in pages.values():
        count, page_digest = value.split()
        items += int(count)
        digest = (digest + int(page_digest)) & MASK
    return len(pages), items, digest


def _refused(name: str, question: Question, reply: Reply[Any]) -> None:
    reasons = reply.failure or "; ".join(f"{i.code} {i.text}" for i in reply.errors) or "no document"
    _redis().set(f"{PREFIX}:{name}:error", f"question {question.pk}: {reasons}")


def ask_next_page(name: str, question: Question, continuation: str) -> None:
    """The next page asks what this one asked (page size, ended links, dates, clients), from where it ended."""
    from dataclasses import replace

    from ato_gateway import api
    from ato_gateway.wire.documents import cc, curel

    asked = api.question_request(question)
    assert isinstance(asked, curel.ListRequest | cc.ListRequest), asked
    api.ask(replace(asked, continuation=continuation), practice=question.practice, by=None, purpose=PURPOSES[name])


def on_curel_page(question: Question, reply: Reply[curel.ListResponse]) -> None:
    items = reply.stream
    if not reply.ok or items is None:
        _refused(CUREL, question, reply)
        return
    count = digest = links = 0
    for client in items:
        # Touch what a reconciliation reads (the client's identity and its links), then let the item go.
        count += 1
        digest = (digest + key_digest(client.tfn)) & MASK
        links += len(client.relationships)
    assert items.document is not None  # set once the stream is exhausted
    continuation = items.document.continuation
    if continuation:
        ask_next_page(CUREL, question, continuation)
    _record(CUREL, question, count, digest, last=not continuation)


def on_cc_page(question: Question, reply: Reply[cc.ListResponse]) -> None:
    items = reply.stream
    if not reply.ok or items is None:
        _refused(CC, question, reply)
        return
    count = digest = 0
    for letter in items:
        count += 1
        digest = (digest + key_digest(letter.id)) & MASK
        _ = (letter.client.tfn, letter.title, letter.issued)  # what an inbox would store of each letter
    assert items.document is not None
    continuation = items.document.continuation
    if continuation:
        ask_next_page(CC, question, continuation)
    _record(CC, question, count, digest, last=not continuation)


def register_handlers() -> None:
    """Install the pager for both lists, each reading its page's list as a stream."""
    from ato_gateway import api

    api.register(PURPOSES[CUREL], on_curel_page, stream="clients")
    api.register(PURPOSES[CC], on_cc_page, stream="communications")


def unregister_handlers() -> None:
    """For a test that installs the pager in its own process."""
    from ato_gateway import handlers

    for purpose in PURPOSES.values():
        handlers.unregister(purpose)


def main() -> None:
    import django

    django.setup()
    register_handlers()

    import django_rq
    from django.db import connections

    worker = django_rq.get_worker("high")  # the settings' worker class, as in production
    connections.close_all()  # a fresh connection for the worker, as rqworker does
    # With the scheduler, as production runs it: a page whose exchange failed transiently is retried later.
    worker.work(with_scheduler=True, logging_level="WARNING")


if __name__ == "__main__":
    main()
