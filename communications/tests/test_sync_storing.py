"""Storing a page of the ATO's list of letters, without the stand-in ATO: each chunk is written in one INSERT (its
letters matched to the register, owned and indexed for search there), never written again by an UPDATE, and a
letter held already, or listed twice, is skipped. A page's storing is what a first sync of a large practice spends
its time on beside the ATO's own paging (bench/bench_communications_sync.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection, transaction

from ato_gateway.wire.documents import cc
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from clients.models import Client, ClientGroup
from clients.tfn import tfn_lookup_hash
from communications import services
from communications.models import DocumentState, DueSource, Letter, LetterState, search_vector
from communications.tests.support import letter
from portal.models import Practice, User

TODAY = date(2026, 11, 30)


def _client(practice: Practice, tfn: str, family_name: str) -> Client:
    client = Client(practice=practice, family_name=family_name, given_names="Jane")
    client.set_tfn(tfn)
    client.save()
    return client


def _item(ato_id: str, tfn: str, title: str, kind: str = "NOA") -> cc.Communication:
    return cc.Communication(
        id=ato_id,
        client=ClientIdentifier.of(tfn=tfn),
        person_name=PersonName(family_name="Citizen", given_name="Jane"),
        kind=kind,
        title=title,
        issued=date(2026, 11, 2),
    )


def _rows_written() -> tuple[int, int]:
    """(rows inserted, rows updated) in communications_letter by this transaction so far, as PostgreSQL counts them
    (the chunk's INSERT goes through psycopg's own cursor, which Django's query capture does not see)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'communications_letter'"
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, 0)


@pytest.mark.django_db
def test_a_chunk_is_inserted_once_matched_owned_and_searchable_and_again_adds_nothing(
    practice: Practice, agent: User
) -> None:
    looked_after = _client(practice, "123456782", "Citizen")
    alone = _client(practice, "876543210", "Alone")
    group = ClientGroup.objects.create(practice=practice, name="Payroll")
    group.clients.add(looked_after)
    group.staff.add(agent)
    held = letter(practice, ato_id="900", title="Held before this sync", client=alone)
    chunk = [
        _item("901", "123456782", "Notice of assessment for TFN 123 456 782"),
        _item("902", "876543210", "Debt reminder: amount overdue", kind="DEBT"),
        _item("903", "111111111", "Review finalised"),  # a client the register lacks
        _item("900", "876543210", "Held before this sync, listed again"),
        _item("902", "876543210", "Debt reminder: amount overdue", kind="DEBT"),  # twice in the list
    ]

    inserted, updated = _rows_written()
    with transaction.atomic():
        assert services._apply(practice, [services.listed(c) for c in chunk]) == 3
    after = _rows_written()
    assert (after[0] - inserted, after[1] - updated) == (3, 0)  # each new letter written once: no UPDATE rewrote it

    letters = {x.ato_id: x for x in Letter.objects.filter(practice=practice)}
    assert sorted(letters) == ["900", "901", "902", "903"]
    first, debt, unmatched = letters["901"], letters["902"], letters["903"]
    assert (first.client_id, first.owner_id, debt.client_id, debt.owner_id) == (
        looked_after.pk,
        agent.pk,
        alone.pk,
        None,
    )
    assert (unmatched.client_id, unmatched.tfn_hash, unmatched.tfn_last3) == (None, tfn_lookup_hash("111111111"), "111")
    assert (first.name, first.kind, first.title, first.tfn_last3) == ("CITIZEN, Jane", "NOA", chunk[0].title, "782")
    assert (debt.due, debt.due_source) == (date(2026, 11, 16), DueSource.RULE)
    assert first.due == date(2026, 11, 2) + timedelta(days=services.DUE_DAYS["NOA"])
    assert (first.state, first.document_state, first.document_asked) == (LetterState.NEW, DocumentState.WAITING, False)
    assert all(x.to_practice for x in (first, debt, unmatched))  # no preference known: the agent's inbox
    assert letters["900"].title == held.title and letters["900"].document_asked  # held: untouched

    # The search index is the one the documents' arrival writes (search_vector), without the TFN's digits.
    for stored in (first, debt):
        expected = Letter.objects.filter(pk=stored.pk).annotate(expected=search_vector(stored.title))
        assert expected.values_list("search", flat=True).get() == expected.values_list("expected", flat=True).get()
    assert list(Letter.objects.matching("assessment")) == [first]
    assert not any(digits in str(first.search) for digits in ("123", "456", "782"))

    with transaction.atomic():  # the same page delivered again
        assert services._apply(practice, [services.listed(c) for c in chunk]) == 0
    assert Letter.objects.count() == 4


@pytest.mark.django_db
def test_a_title_seen_before_is_indexed_without_computing_its_vector_again(practice: Practice) -> None:
    from django.test.utils import CaptureQueriesContext

    from communications import models

    models._title_vectors.clear()
    pages = [
        [_item("1", "123456782", "Notice of assessment 2026"), _item("2", "876543210", "Notice of assessment 2026")],
        [_item("3", "123456782", "Notice of assessment 2026"), _item("4", "876543210", "Audit: TFN 123 456 782")],
        [_item("5", "123456782", "Audit: TFN 123 456 782")],
    ]
    vector_queries = []
    for page in pages:
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            services._apply(practice, [services.listed(c) for c in page])
        vector_queries.append(sum("to_tsvector" in q["sql"] for q in queries.captured_queries))
    assert vector_queries == [1, 1, 0]  # a page of titles all seen before computes none

    for stored in Letter.objects.filter(practice=practice):  # each as the documents' arrival would write it
        expected = Letter.objects.filter(pk=stored.pk).annotate(expected=search_vector(stored.title))
        assert expected.values_list("search", flat=True).get() == expected.values_list("expected", flat=True).get()
    assert Letter.objects.exclude(search=None).count() == 5
