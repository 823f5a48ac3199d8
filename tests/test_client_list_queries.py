"""The client list runs a fixed number of SQL queries whatever the page size: no query per row (groups are
prefetched, the practice is read once). Paging by cursor lists every client once, in order."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clients.models import ClientGroup
from portal.capabilities import Role
from tests.conftest import add_clients, make_user

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr><td><a href="/clients/\d+/">')
NEXT = re.compile(r'<a href="\?([^"]*after=[^"]*)" rel="next">')


@pytest.fixture
def groups(practice):
    """60 clients in 4 groups: a third in none, a third in one, a third in two."""
    clients = add_clients(practice, 60)
    groups = [ClientGroup.objects.create(practice=practice, name=n) for n in ("Payroll", "BAS", "Trusts", "SMSF")]
    for i, client in enumerate(clients):
        client.groups.set(groups[i % 3 : i % 3 + i % 3])
    return groups


def list_queries(http, page_size: int, query: str = "") -> tuple[int, str]:
    """(queries run, page) for GET /clients/ with the given page size; the page must list clients."""
    with override_settings(CLIENT_LIST_PAGE_SIZE=page_size), CaptureQueriesContext(connection) as captured:
        response = http.get(f"{reverse('clients:list')}?{query}")
    assert response.status_code == 200
    return len(captured.captured_queries), response.content.decode()


def assert_same_queries(http, query: str = "", *, expect_rows: tuple[int, int]) -> None:
    http.get(reverse("clients:list"))  # the session's first request stamps last_seen; later ones within a minute don't
    small, page10 = list_queries(http, 10, query)
    large, page50 = list_queries(http, 50, query)
    assert (len(ROW.findall(page10)), len(ROW.findall(page50))) == expect_rows
    assert small == large, f"{small} queries for 10 rows but {large} for 50: a query runs per row"


def test_first_page_queries_do_not_depend_on_page_size(admin, login, groups):
    assert_same_queries(login(admin), expect_rows=(10, 50))


def test_next_page_queries_do_not_depend_on_page_size(admin, login, groups):
    http = login(admin)
    with override_settings(CLIENT_LIST_PAGE_SIZE=5):
        first = http.get(reverse("clients:list")).content.decode()
    after = NEXT.search(first)
    assert after, "the first page of five has a next link"
    # The cursor of client 5 leaves 55 clients: a full page of 10 and a full page of 50.
    assert_same_queries(http, after.group(1).replace("&amp;", "&"), expect_rows=(10, 50))


def test_group_filter_queries_do_not_depend_on_page_size(admin, login, groups):
    # Group 1 ("BAS") holds the 20 clients with i % 3 == 1.
    assert_same_queries(login(admin), f"group={groups[1].pk}", expect_rows=(10, 20))


def test_restricted_staff_queries_do_not_depend_on_page_size(practice, login, groups):
    agent = make_user(practice, "rhonda", Role.AGENT)
    agent.restricted_to_groups = True
    agent.save(update_fields=["restricted_to_groups"])
    groups[1].staff.add(agent)
    groups[2].staff.add(agent)
    # Groups 1 and 2 together hold the 40 clients with i % 3 in (1, 2).
    assert_same_queries(login(agent), expect_rows=(10, 40))


def test_paging_by_cursor_lists_every_client_once_in_order(practice, admin, login, groups):
    from clients.models import Client

    # Clients with the same name are ordered by id; the cursor must neither skip nor repeat them.
    twins = add_clients(practice, 4, seed=99)
    Client.objects.filter(pk__in=[c.pk for c in twins]).update(sort_name="smith, jo", display_name="SMITH, Jo")
    expected = list(Client.objects.filter(practice=practice).order_by("sort_name", "pk").values_list("pk", flat=True))
    # A page ends on the first twin, so the next page starts between two clients of the same name.
    size = expected.index(min(c.pk for c in twins)) + 1
    http, seen, query = login(admin), [], ""
    with override_settings(CLIENT_LIST_PAGE_SIZE=size):
        while True:
            page = http.get(f"{reverse('clients:list')}?{query}").content.decode()
            seen += [int(pk) for pk in re.findall(r'<tr><td><a href="/clients/(\d+)/">', page)]
            after = NEXT.search(page)
            if not after:
                break
            query = after.group(1).replace("&amp;", "&")
    assert seen == expected


def test_group_choices_are_the_groups_visible_to_each_kind_of_user(practice, admin, outsider, groups):
    from portal.models import User

    ClientGroup.objects.create(practice=outsider.practice, name="Elsewhere")
    restricted = make_user(practice, "rhonda", Role.AGENT)
    restricted.restricted_to_groups = True
    restricted.save(update_fields=["restricted_to_groups"])
    groups[3].staff.add(restricted)
    groups[1].staff.add(restricted)
    unassigned = make_user(practice, "ursula", Role.AGENT)
    unassigned.restricted_to_groups = True
    unassigned.save(update_fields=["restricted_to_groups"])
    homeless = User.objects.create_user(username="nobody", password="x" * 20, practice=None)
    for user in (admin, outsider, restricted, unassigned, homeless):
        expected = list(ClientGroup.objects.visible_to(user).values_list("pk", "name"))
        assert ClientGroup.objects.choices_for(user) == expected, user.username
    assert [name for _, name in ClientGroup.objects.choices_for(restricted)] == ["BAS", "SMSF"]
