"""A page of a search is read window by window (communications.search): the newest letters in order, then the
matches of a month, a year and all before them. Whichever window completes the page, the rows, their order and the
keyset paging are those of the query itself, evaluated whole."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clients.models import Client, ClientGroup
from communications import search, views
from communications.models import Letter
from communications.tests.support import letter
from portal.models import Practice, User
from tests.conftest import add_clients

pytestmark = pytest.mark.django_db
Login = Callable[[User], HttpClient]

TOP = date(2026, 11, 30)
WALK = 4  # letters the walk reads, so that a handful of letters spans every window
MATCH, OTHER = "Widget plan reminder", "Notice of assessment 2026"
SAME_DAY = 900_000  # ids given to one day's letters, above those the sequence gives


@pytest.fixture(autouse=True)
def short_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "SEARCH_WALK", WALK)


def _day(days_before_top: int) -> date:
    return TOP - timedelta(days=days_before_top)


@pytest.fixture
def spread(practice: Practice) -> dict[str, list[Letter]]:
    """Matches in every window, the walk's edge and each window's first day among them, for two clients."""
    mine, theirs = add_clients(practice, 2)
    # The walk reads the newest WALK letters: the two matches and the other letter of TOP, and one of the day
    # before, which is its edge (the day it reads down to).
    made: dict[str, list[Letter]] = {"mine": [], "theirs": []}

    def add(days: int, *, match: bool = True, client: Client = mine, pk: int | None = None) -> None:
        made["mine" if client == mine else "theirs"].append(
            letter(practice, pk=pk, title=MATCH if match else OTHER, issued=_day(days), client=client)
        )

    add(0)
    add(0, client=theirs)
    add(0, match=False)
    add(1, match=False)
    add(1, match=False)
    edge = 1
    month, year = edge + 31, edge + 366  # each window's first day: a window holds the letters of that day
    # One day's matches on the month's first day, on both sides of a short page's break, stored out of the order
    # of their ids (the inbox's second key): the window's bitmap reads them in the order they were stored.
    for n in (5, 2, 7, 1, 8, 3, 6):
        add(month, pk=SAME_DAY + n)
    add(month, client=theirs, pk=SAME_DAY + 4)
    add(month, match=False, pk=SAME_DAY + 9)
    add(month + 1)  # the first day outside the month
    add(year, client=theirs)
    add(year)
    add(year + 1)
    add(year + 1, client=theirs)
    add(1000)
    add(1000)
    return made


def _expected(user: User) -> list[int]:
    """The search evaluated whole: every match the user may see, newest issue first."""
    found = Letter.objects.visible_to(user).matching("widget plan").order_by("-issued", "-pk")
    return list(found.values_list("pk", flat=True))


def _pages(viewer: HttpClient, words: str) -> list[list[int]]:
    """Each page of the inbox's search, through each page's own link to the next."""
    pages: list[list[int]] = []
    query = urlencode({"q": words})
    while len(pages) < 50:
        response = viewer.get(f"{reverse('communications:inbox')}?{query}")
        assert response.status_code == 200
        pages.append([row.pk for row in response.context["letters"]])
        query = response.context["next_query"]
        if not query:
            return pages
    raise AssertionError(f"no last page: {pages[:5]}")


@pytest.mark.parametrize("page", [1, 2, 3, 4, 7])
def test_each_page_of_a_search_is_the_querys_own_whichever_window_completes_it(
    spread: dict[str, list[Letter]], admin: User, login: Login, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    monkeypatch.setattr(views, "PAGE", page)
    expected = _expected(admin)
    assert len(expected) == 17
    assert _pages(login(admin), "widget plan") == [expected[i : i + page] for i in range(0, len(expected), page)]


def test_the_first_rows_of_a_search_are_the_querys_first_rows_at_every_count(
    spread: dict[str, list[Letter]], admin: User
) -> None:
    found = Letter.objects.visible_to(admin).matching("widget plan")
    whole = list(found.order_by("-issued", "-pk"))
    for count in range(1, len(whole) + 2):
        assert found.newest(count) == whole[:count], count
        assert found.newest(count, ("pk", "issued")) == [(x.pk, x.issued) for x in whole[:count]], count


def test_a_restricted_member_of_staff_pages_through_their_groups_matches_only(
    spread: dict[str, list[Letter]], practice: Practice, agent: User, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = ClientGroup.objects.create(practice=practice, name="Payroll")
    mine = spread["mine"][0].client
    assert mine is not None
    group.clients.add(mine)
    group.staff.add(agent)
    User.objects.filter(pk=agent.pk).update(restricted_to_groups=True)
    agent.refresh_from_db()
    monkeypatch.setattr(views, "PAGE", 2)
    expected = _expected(agent)
    assert set(expected) == {x.pk for x in spread["mine"] if x.title == MATCH}
    assert _pages(login(agent), "widget plan") == [expected[i : i + 2] for i in range(0, len(expected), 2)]


def test_a_page_the_month_completes_asks_for_no_wider_window(spread: dict[str, list[Letter]], admin: User) -> None:
    found = Letter.objects.visible_to(admin).matching("widget plan")
    with CaptureQueriesContext(connection) as asked:
        assert len(found.newest(3)) == 3
    # The newest letter, the walk's edge, the walk (which finds two) and the month before the edge.
    assert len(asked) == 4
    walk, month = asked[2]["sql"], asked[3]["sql"]
    assert "ts_match_vq" in walk and "@@" not in walk
    assert "@@" in month and f"'{_day(1 + 31).isoformat()}'" in month


def test_a_search_of_words_no_letter_has_finds_nothing_through_every_window(
    spread: dict[str, list[Letter]], admin: User
) -> None:
    assert Letter.objects.visible_to(admin).matching("gizmo").newest(51) == []


def test_a_search_among_fewer_letters_than_a_walk_reads_reads_them_all(practice: Practice, admin: User) -> None:
    older, newer = (letter(practice, title=MATCH, issued=_day(days)) for days in (400, 0))
    assert Letter.objects.visible_to(admin).matching("widget").newest(51) == [newer, older]
