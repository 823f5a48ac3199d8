"""The coverage report: where the ATO sends each client's letters (as it last answered COMMPREF Get), and the
clients whose letters the practice does not see; and asking the ATO again for every client."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from ato_gateway.api import Question
from clients.models import Client, ClientGroup
from communications import services, views
from communications.models import CATEGORY_WORDS, Preference
from portal.capabilities import Role
from portal.models import AuditEvent, Practice, User
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
Login = Callable[[User], HttpClient]


def _client(practice: Practice, name: str, tfn: str = "") -> Client:
    client = Client(practice=practice, kind="company", organisation_name=name)
    if tfn:
        client.set_tfn(tfn)
    client.save()
    return client


@pytest.fixture
def held(practice: Practice) -> dict[str, Client]:
    """Two clients whose letters go to them (post, email), one with its own preference for the practice's inbox,
    one following the practice default (the practice's inbox), one never asked about."""
    clients = {
        "post": _client(practice, "Bravo Pty Ltd", "123456782"),
        "email": _client(practice, "Alpha Trust", "876543210"),
        "inbox": _client(practice, "Charlie Pty Ltd"),
        "follows": _client(practice, "Delta Pty Ltd"),
        "never": _client(practice, "Echo Pty Ltd"),
    }
    Preference.objects.create(practice=practice, client=None, channel="ELEC")
    Preference.objects.create(practice=practice, client=clients["post"], channel="POST")
    Preference.objects.create(practice=practice, client=clients["email"], channel="EMAIL", email="a@example.com.au")
    Preference.objects.create(practice=practice, client=clients["inbox"], channel="ELEC")
    Preference.objects.create(practice=practice, client=clients["follows"], channel="ELEC", own=False)
    return clients


def test_the_coverage_report_counts_and_lists_the_clients_whose_letters_the_practice_does_not_see(
    held: dict[str, Client], admin: User, login: Login
) -> None:
    response = login(admin).get(reverse("communications:preferences"))
    assert response.status_code == 200
    context = response.context
    assert (context["clients"], context["to_practice"], context["elsewhere"], context["never_asked"]) == (5, 2, 2, 1)
    assert [p.client.display_name for p in context["elsewhere_page"]] == ["Alpha Trust", "Bravo Pty Ltd"]
    page = response.content.decode()
    assert "By email to the client (a@example.com.au)" in page and "By post to the client" in page


def test_a_practice_default_of_paper_moves_the_clients_that_follow_it(
    held: dict[str, Client], practice: Practice, admin: User
) -> None:
    Preference.objects.filter(practice=practice, client=None).update(channel="POST")
    coverage = services.preferences_coverage(user=admin)
    assert (coverage["to_practice"], coverage["elsewhere"]) == (1, 3)


def test_the_list_pages_by_name_without_repeating_a_client(
    practice: Practice, admin: User, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PAGE", 2)
    for n in range(5):
        Preference.objects.create(practice=practice, client=_client(practice, f"Client {n}"), channel="POST")
    viewer, seen, url = login(admin), [], reverse("communications:preferences")
    for _ in range(5):
        response = viewer.get(url)
        seen += [p.client.display_name for p in response.context["elsewhere_page"]]
        if response.context["next_after"] is None:
            break
        url = f"{reverse('communications:preferences')}?after={response.context['next_after']}"
    assert seen == [f"Client {n}" for n in range(5)]


def test_restricted_staff_see_only_their_groups_clients(
    held: dict[str, Client], practice: Practice, agent: User, login: Login
) -> None:
    group = ClientGroup.objects.create(practice=practice, name="Payroll")
    group.clients.add(held["post"])
    group.staff.add(agent)
    agent.restricted_to_groups = True
    agent.save()
    context = login(agent).get(reverse("communications:preferences")).context
    assert (context["clients"], context["elsewhere"]) == (1, 1)
    assert [p.client_id for p in context["elsewhere_page"]] == [held["post"].pk]


def test_asking_for_every_client_asks_once_for_the_default_and_once_a_client_with_a_tfn(
    held: dict[str, Client], admin: User, reader: User, login: Login
) -> None:
    assert login(reader).post(reverse("communications:preferences_ask")).status_code == 403
    assert not Question.objects.exists()
    assert login(admin).post(reverse("communications:preferences_ask")).status_code == 302
    asked = Question.objects.filter(purpose=services.PREFERENCE_PURPOSE)
    assert sorted(asked.values_list("subject_id", flat=True)) == sorted(
        ["default", str(held["post"].pk), str(held["email"].pk)]
    )


def test_the_coverage_report_counts_each_category_where_its_letters_go(
    practice: Practice, admin: User, login: Login
) -> None:
    def held(channel: str, default: bool = False) -> dict[str, object]:
        return {"channel": channel, "email": "", "default": default}

    one, two, three = (_client(practice, f"Client {n}") for n in range(3))
    Preference.objects.create(practice=practice, client=one, channel="ELEC", categories={"AS": held("POST")})
    Preference.objects.create(practice=practice, client=two, channel="POST", categories={"AS": held("POST")})
    Preference.objects.create(practice=practice, client=three, channel="ELEC", categories={"AS": held("ELEC", True)})
    rows = {r["category"]: r for r in services.preferences_coverage(user=admin)["by_category"]}
    assert (rows["Activity statements"]["to_practice"], rows["Activity statements"]["elsewhere"]) == (1, 2)
    assert (rows["Income tax"]["to_practice"], rows["Income tax"]["elsewhere"]) == (0, 0)
    page = login(admin).get(reverse("communications:preferences")).content.decode()
    assert 'data-testid="coverage-categories"' in page


def _csv(response: Any) -> list[list[str]]:
    assert response.streaming and response["Content-Type"] == "text/csv"
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_the_coverage_report_downloads_as_csv_every_client_and_category_without_a_tfn(
    held: dict[str, Client], practice: Practice, agent: User, login: Login
) -> None:
    post = Preference.objects.get(client=held["post"])
    post.categories = {"AS": {"channel": "ELEC", "email": "", "default": False}}
    post.save()
    http = login(agent)
    page = http.get(reverse("communications:preferences")).content.decode()
    assert reverse("communications:preferences_csv") in page
    rows = _csv(http.get(reverse("communications:preferences_csv")))
    assert rows[0] == list(services.COVERAGE_COLUMNS)
    assert len(rows) == 1 + 5 * len(CATEGORY_WORDS)
    by = {(row[1], row[2]): row for row in rows[1:]}
    assert by["Bravo Pty Ltd", "Activity statements"][3:7] == [
        "to the practice's online inbox",
        "ELEC",
        "",
        "the client's own preference",
    ]
    assert by["Bravo Pty Ltd", "Income tax"][3:7] == [
        "by post to the client",
        "POST",
        "",
        "the client's own preference",
    ]
    assert by["Alpha Trust", "Debt and payment plans"][4:6] == ["EMAIL", "a***@example.com.au"]
    assert by["Delta Pty Ltd", "Income tax"][6] == "the practice default"
    never = by["Echo Pty Ltd", "General and other letters"]
    assert never[3:] == ["to the practice's online inbox", "ELEC", "", "the practice default", "never"]
    assert by["Bravo Pty Ltd", "Income tax"][7] == timezone.localdate().isoformat()
    assert [row[1] for row in rows[1 :: len(CATEGORY_WORDS)]] == [
        "Alpha Trust", "Bravo Pty Ltd", "Charlie Pty Ltd", "Delta Pty Ltd", "Echo Pty Ltd"
    ]  # fmt: skip
    whole = "\n".join(",".join(row) for row in rows)
    assert "123456782" not in whole and "876543210" not in whole and "a@example.com.au" not in whole
    assert AuditEvent.objects.filter(action="communications.coverage_exported", actor=agent).count() == 1


def test_the_coverage_csv_holds_only_the_clients_the_user_sees_and_needs_the_export_capability(
    held: dict[str, Client], practice: Practice, reader: User, outsider: User, login: Login
) -> None:
    Preference.objects.filter(client=None).delete()  # never asked: the ATO's own default
    restricted = make_user(practice, "gwen", Role.AGENT)
    restricted.restricted_to_groups = True
    restricted.save()
    group = ClientGroup.objects.create(practice=practice, name="Alpha's")
    group.clients.add(held["email"])
    group.staff.add(restricted)
    rows = _csv(login(restricted).get(reverse("communications:preferences_csv")))
    assert {row[1] for row in rows[1:]} == {"Alpha Trust"}
    assert rows[1][3:7] == ["by email to the client", "EMAIL", "a***@example.com.au", "the client's own preference"]
    assert _csv(login(outsider).get(reverse("communications:preferences_csv")))[1:] == []
    assert login(reader).get(reverse("communications:preferences_csv")).status_code == 403
    assert "coverage-csv" not in login(reader).get(reverse("communications:preferences")).content.decode()


def test_without_any_answer_the_csv_says_the_atos_own_default_sends_them_to_the_practice(
    practice: Practice, admin: User, login: Login
) -> None:
    _client(practice, "Foxtrot Pty Ltd")
    rows = _csv(login(admin).get(reverse("communications:preferences_csv")))
    assert {tuple(row[3:]) for row in rows[1:]} == {
        ("to the practice's online inbox", "ELEC", "", "the ATO's own default (no preference known)", "never")
    }
