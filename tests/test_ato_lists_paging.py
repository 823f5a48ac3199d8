"""bench_ato_lists at small scale: the pager it runs in the worker reads the whole relationships list and the whole
CC list, a few items a page, through the real gateway to the stand-in ATO, and sees every client and every letter
exactly once. (The benchmark's own figures are not asserted here; this keeps its verification honest.)"""

from __future__ import annotations

from collections.abc import Iterator

import django_rq
import pytest
from django.db import transaction

from ato_gateway import api
from ato_gateway.wire.documents import cc, curel
from bench._list_worker import CC, CUREL, PREFIX, PURPOSES, register_handlers, totals, unregister_handlers
from bench.bench_ato_lists import ISSUED_FROM, TODAY, expected_lists
from tests.ato_fixtures import AGENT_TAN, Ato
from tests.gateway_fixtures import pump

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = 7  # small pages, so that even the fixture's 60 clients take several


@pytest.fixture
def pager() -> Iterator[None]:
    register_handlers()
    yield
    unregister_handlers()


def test_the_bench_pager_sees_every_client_and_letter_exactly_once(ato: Ato, pager: None) -> None:
    redis = django_rq.get_connection("high")
    with transaction.atomic():
        api.ask(curel.ListRequest(page_size=PAGE), practice=ato.practice, by=ato.user, purpose=PURPOSES[CUREL])
        letters = cc.ListRequest(issued_from=ISSUED_FROM, issued_to=TODAY, page_size=PAGE)
        api.ask(letters, practice=ato.practice, by=ato.user, purpose=PURPOSES[CC])
    pump(lambda: all(redis.get(f"{PREFIX}:{name}:done") for name in (CUREL, CC)), timeout=120)

    assert redis.get(f"{PREFIX}:{CUREL}:error") is None and redis.get(f"{PREFIX}:{CC}:error") is None
    expected = expected_lists(ato, AGENT_TAN)
    for name in (CUREL, CC):
        pages, items, digest = totals(redis, name)
        assert (items, digest) == (expected[name].count, expected[name].digest), name
        assert pages == -(-expected[name].count // PAGE) > 1, name
