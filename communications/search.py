"""A page of the inbox's search, newest first, at a cost that does not grow with the number of matches (PostgreSQL).

The full-text index finds a search's matches in no particular order, and PostgreSQL cannot tell how many letters a
word has (its estimate is the same for every word). Left to itself it either fetches and sorts every match to keep
a page of them, or reads the inbox in its order testing each letter, through every letter when the words are rare.
letters_newest() bounds both:

- it first reads SEARCH_WALK of the practice's letters in the inbox's order, from the newest the other filters
  leave, testing those they keep against the words: enough when one letter in SEARCH_WALK / page has them;
- when those hold fewer than a page of matches, it asks the index for the matches issued within each of
  SEARCH_WINDOWS before them in turn (PostgreSQL ANDs the bitmaps of the full-text index and of the inbox's btree,
  so only the window's matches are fetched and sorted), until one holds a page; the last window is every letter.

Every letter outside a window was issued before every letter inside it, so a window's first page is the first page
of all: the rows, their order and the keyset paging are the query's own, as are the filters (a restricted member
of staff's groups among them), which every step keeps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, Literal

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, DateField, ExpressionWrapper, F, Func
from django.db.models.sql.compiler import SQLCompiler

# The letters a walk reads. It reads each from the table, which costs about what the full-text index spends on as
# many entries of a word's prefix: words rarer than a page in SEARCH_WALK letters cost less through the windows.
SEARCH_WALK = 5000
SEARCH_WINDOWS: tuple[timedelta | None, ...] = (timedelta(days=31), timedelta(days=366), None)

# How the words test a letter in the SQL being compiled: "indexed" (``search @@ query``, which the full-text index
# answers), "walk" (the same test as a function call, which no index answers, so PostgreSQL reads the letters in an
# order a btree gives and stops at a page) or "absent" (TRUE: the letters the other filters leave, to bound a walk).
SearchForm = Literal["indexed", "walk", "absent"]
_search_form: ContextVar[SearchForm] = ContextVar("letter_search_form", default="indexed")


@contextmanager
def _searching_as(form: SearchForm) -> Iterator[None]:
    token = _search_form.set(form)
    try:
        yield
    finally:
        _search_form.reset(token)


class WordsMatch(Func):
    """A search vector matches a tsquery: ``search @@ query`` as Django writes it, but in the form _search_form
    gives while letters_newest() compiles its steps."""

    output_field = BooleanField()

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        form = _search_form.get()
        if form == "absent":
            return "TRUE", ()
        vector, query = self.get_source_expressions()
        vector_sql, vector_params = compiler.compile(vector)
        query_sql, query_params = compiler.compile(query)
        sql = f"ts_match_vq({vector_sql}, {query_sql})" if form == "walk" else f"{vector_sql} @@ {query_sql}"
        return sql, (*vector_params, *query_params)


def letters_newest(letters: models.QuerySet[Any, Any], *, count: int) -> list[Any]:
    """The first ``count`` rows of a search (LetterQuerySet.matching(), on PostgreSQL) in the inbox's order, newest
    issue first: models, or what values() and values_list() ask for."""
    ordered = letters.order_by("-issued", "-pk")
    with _searching_as("absent"):
        top = ordered.values_list("issued", "practice_id").first()
    if top is None:  # nothing left to search, whatever the words
        return []
    # The walk's bound: the SEARCH_WALK-th letter of the practice from the newest the filters leave, so that the
    # walk reads about that many letters of the index, however few of them the filters keep (a restricted member
    # of staff's groups, say).
    issued, practice_id = top
    edge = (
        letters.model._default_manager.filter(practice_id=practice_id, issued__lte=issued)
        .order_by("-issued", "-pk")
        .values_list("issued", flat=True)[SEARCH_WALK - 1 : SEARCH_WALK]
        .first()
    )
    with _searching_as("walk"):
        if edge is None:  # fewer letters than a walk reads: the walk reads them all
            return list(ordered[:count])
        rows = list(ordered.filter(issued__gte=edge)[:count])
    # Sorted by expressions no index gives, a window cannot be read in order and left at a page: PostgreSQL takes
    # the window's matches from the bitmaps of the indexes and sorts those alone.
    unwalked = letters.order_by(
        ExpressionWrapper(F("issued") + 0, output_field=DateField()).desc(),
        ExpressionWrapper(F("pk") + 0, output_field=models.BigIntegerField()).desc(),
    )
    for span in SEARCH_WINDOWS:
        if len(rows) == count:
            break
        window = unwalked if span is None else unwalked.filter(issued__gte=edge - span)
        rows = list(window[:count])
    return rows
