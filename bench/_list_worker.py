"""The RQ worker process of bench_ato_lists: the project's worker class (portal.worker.Worker, jobs run in the
worker process) on the "high" queue, as production runs it (`manage.py rqworker high ... --with-scheduler`), with
a paging handler registered for CUREL List and CC List.

The handler streams each page with `base.stream` and, while the page carries a continuation, records the request
for the next page with the typed API function, so the whole list is paged inside the worker. It keeps nothing of
an item: per page it stores in Redis only the item count and an order-independent digest of the items' keys, which
the benchmark compares with the stand-in ATO's register to prove every client and letter was seen exactly once.

Run as `python -m bench._list_worker` from the project root with the benchmark's environment."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ato_gateway.api.base import Reply
    from ato_gateway.handlers import Handler, Outcome
    from ato_gateway.models import OutboxMessage

PREFIX = "bench-lists"  # Redis keys of the results: <PREFIX>:<list>:pages, :done, :error
MASK = (1 << 64) - 1
CUREL, CC = "curel", "cc"


def key_digest(key: str) -> int:
    """64 bits of a stable hash of one item's key. The sum of these over a list, modulo 2**64, does not depend on
    the order of the items, and a repeated item or a missing one changes it."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def _redis() -> Any:
    import django_rq

    return django_rq.get_connection("high")


def _request_text(message: OutboxMessage) -> str:
    return message.payloads()[0][1]


def _record(name: str, message: OutboxMessage, count: int, digest: int, last: bool) -> None:
    """Stored once the handler's transaction commits, keyed by the message, so that an outcome delivered again
    (the gateway's at-least-once hand-over) overwrites its page's figures instead of counting it twice."""
    from django.db import transaction

    def store() -> None:
        redis = _redis()
        redis.hset(f"{PREFIX}:{name}:pages", str(message.pk), f"{count} {digest}")
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


def _refused(name: str, message: OutboxMessage, reply: Reply[Any]) -> None:
    reasons = reply.failure or "; ".join(f"{i.code} {i.text}" for i in reply.errors) or "no document"
    _redis().set(f"{PREFIX}:{name}:error", f"message {message.pk}: {reasons}")


def on_curel_page(message: OutboxMessage, outcome: Outcome) -> None:
    from ato_gateway.api import base
    from ato_gateway.api import curel as api
    from ato_gateway.wire.documents import codec, curel

    reply, items = base.stream(outcome, curel.ListResponse, "clients")
    if not reply.ok or items is None:
        _refused(CUREL, message, reply)
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
        # The next page asks what this one asked (page size, ended links), from where this page ended.
        asked = codec.decode(curel.ListRequest, _request_text(message))
        api.list_links(
            practice=message.practice,
            include_ended=bool(asked.include_ended),
            continuation=continuation,
            page_size=asked.page_size,
        )
    _record(CUREL, message, count, digest, last=not continuation)


def on_cc_page(message: OutboxMessage, outcome: Outcome) -> None:
    from ato_gateway.api import base
    from ato_gateway.api import cc as api
    from ato_gateway.wire.documents import cc, codec

    reply, items = base.stream(outcome, cc.ListResponse, "communications")
    if not reply.ok or items is None:
        _refused(CC, message, reply)
        return
    count = digest = 0
    for letter in items:
        count += 1
        digest = (digest + key_digest(letter.id)) & MASK
        _ = (letter.client.tfn, letter.title, letter.issued)  # what an inbox would store of each letter
    assert items.document is not None
    continuation = items.document.continuation
    if continuation:
        asked = codec.decode(cc.ListRequest, _request_text(message))
        api.list_communications(
            practice=message.practice,
            issued_from=asked.issued_from,
            issued_to=asked.issued_to,
            clients=asked.clients,
            continuation=continuation,
            page_size=asked.page_size,
        )
    _record(CC, message, count, digest, last=not continuation)


def register_handlers() -> dict[tuple[str, str], Handler | None]:
    """Install the pager for both lists; returns the handlers it replaced, for `restore_handlers`."""
    from ato_gateway import handlers
    from ato_gateway.api import cc, curel
    from ato_gateway.wire import registry

    replaced: dict[tuple[str, str], Handler | None] = {}
    for key, handler in ((curel.LIST, on_curel_page), (cc.LIST, on_cc_page)):
        action = registry.get(key)
        # The worker process belongs to the benchmark: if a domain app already handles the list (the
        # relationships reconciliation does), the pager takes its place here, and only here.
        replaced[(action.service, action.action)] = handlers.handler_for(action.service, action.action)
        handlers.unregister(action.service, action.action)
        handlers.register(action.service, action.action, handler)
    return replaced


def restore_handlers(replaced: dict[tuple[str, str], Handler | None]) -> None:
    """For a test that installs the pager in its own process."""
    from ato_gateway import handlers

    for (service, action), handler in replaced.items():
        handlers.unregister(service, action)
        if handler is not None:
            handlers.register(service, action, handler)


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
