"""Search over the letters' titles and text: PostgreSQL full-text over the words pypdf reads from each stored
document, without the digit runs that could be a TFN (the document itself stays sealed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from django.db import connection, transaction
from django.test import Client as HttpClient
from django.urls import reverse

from ato_gateway import api
from ato_gateway.wire.documents import cc
from ato_gateway.wire.documents.common import ClientIdentifier
from communications import services
from communications.models import DocumentState, Letter, searchable
from communications.tests.support import letter, pdf
from portal.models import Practice, User
from tests.questions import fabricate_question

pytestmark = pytest.mark.django_db
Login = Callable[[User], HttpClient]
TFN = "123456782"


def _store(practice: Practice, admin: User, held: Letter, content: bytes) -> None:
    """The ATO's answer to CC Get for the letter, handled as the gateway hands it over."""
    question = fabricate_question(
        practice=practice,
        by=admin,
        purpose=services.DOCUMENT_PURPOSE,
        request=cc.GetRequest(id=held.ato_id),
        response=cc.GetResponse(
            communication=cc.Communication(
                id=held.ato_id,
                client=ClientIdentifier.of(tfn=TFN),
                kind=held.kind,
                title=held.title,
                issued=held.issued,
            ),
            attachment=cc.Attachment(file_name="x.pdf", media_type="application/pdf", content=content),
        ),
        about=api.Subject(services.LETTER_SUBJECT, str(held.pk), "letter"),
    )
    with transaction.atomic():
        services.on_document(question, api.reply(question))


@pytest.fixture
def stored(practice: Practice, admin: User) -> dict[str, Letter]:
    penalty = letter(practice, kind="DEBT", title="Director penalty notice", document_state=DocumentState.WAITING)
    _store(
        practice,
        admin,
        penalty,
        pdf(
            "Director penalty notice",
            "Tax file number: 123 456 782",
            f"TFN {TFN}, ABN 53 004 085 616",
            "Unpaid superannuation guarantee charge of $1,234.56",
            "Pay by 21/12/2026 to avoid garnishee action.",
        ),
    )
    other = letter(practice, kind="NOA", title="Notice of assessment 2026")
    _store(practice, admin, other, pdf("Notice of assessment 2026", "Your refund is on its way."))
    return {"penalty": penalty, "other": other}


def _titles(viewer: HttpClient, words: str) -> list[str]:
    response = viewer.get(reverse("communications:inbox"), {"q": words})
    assert response.status_code == 200
    return [x.title for x in response.context["letters"]]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("garnishee", ["Director penalty notice"]),  # in the text alone
        ("superannuation guarantee", ["Director penalty notice"]),
        ("SUPERANNUATION garnish", ["Director penalty notice"]),  # the start of a word, any case
        ("refund", ["Notice of assessment 2026"]),
        ("notice", ["Notice of assessment 2026", "Director penalty notice"]),
        ("2026", ["Notice of assessment 2026"]),  # a year is a word like another
        ("21/12/2026", ["Director penalty notice"]),  # and so is a date
        ("garnishee refund", []),  # every word must be found in the one letter
        (TFN, []),  # a TFN is never indexed
        ("123 456 782", []),
        ("53004085616", []),
        ("&|!:*()", []),  # the query's own syntax is not the searcher's to write
    ],
)
def test_the_inbox_searches_titles_and_the_letters_text(
    stored: dict[str, Letter], admin: User, login: Login, words: str, expected: list[str]
) -> None:
    assert _titles(login(admin), words) == expected


def test_the_index_holds_no_tfn_or_abn_while_the_document_states_them(stored: dict[str, Letter], admin: User) -> None:
    penalty = Letter.objects.get(pk=stored["penalty"].pk)
    assert penalty.document_state == DocumentState.STORED and penalty.due == date(2026, 12, 21)
    text = services.pdf_text(services.letter_document_open(user=admin, letter=penalty)[1])
    assert "123 456 782" in text and TFN in text  # what the letter says stays whole in its sealed document
    with connection.cursor() as cursor:
        cursor.execute("SELECT search::text FROM communications_letter WHERE id = %s", [penalty.pk])
        [index] = cursor.fetchone()
    assert "garnishe" in index and "2026" in index
    for digits in (TFN, "123", "456", "782", "53", "004", "085", "616"):
        assert f"'{digits}'" not in index


@pytest.mark.parametrize(
    ("text", "indexed"),
    [
        ("TFN 123456782 issued", "TFN   issued"),
        ("TFN 123 456 782.", "TFN  ."),
        ("ABN 53 004 085 616", "ABN  "),
        ("12345678", " "),  # an old eight-digit TFN
        ("Pay $1,234.56 by 21/12/2026", "Pay $1,234.56 by 21/12/2026"),
        ("12 345 678", " "),
        ("Years 2024 2025 and 1300 720 092", "Years 2024 2025 and 1300 720 092"),  # not grouped as a TFN is
        ("1234567", "1234567"),
    ],
)
def test_what_of_a_letter_is_indexed(text: str, indexed: str) -> None:
    assert searchable(text) == indexed


def test_a_synced_letter_is_found_by_its_title_before_its_document_arrives(
    practice: Practice, admin: User, login: Login
) -> None:
    title = "Running balance account reminder for 123 456 782"
    issued = date(2026, 11, 30)
    page = [cc.Communication(id="1", client=ClientIdentifier.of(tfn=TFN), kind="ASR", title=title, issued=issued)]
    services._apply(practice, [services.listed(c) for c in page])
    assert _titles(login(admin), "balance remind") == [title]
    assert _titles(login(admin), "782") == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT search::text FROM communications_letter")
        [index] = cursor.fetchone()
    assert "'balanc':2a" in index.lower() and "782" not in index and "123" not in index
