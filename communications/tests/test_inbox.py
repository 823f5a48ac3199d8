"""The inbox's pages: filters, keyset paging, a letter with its PDF (every opening audited), changes singly and in
bulk, who sees and who changes what, a client's tab; and what keeps letters from going past their date unseen (the
dashboard panel, escalation, a leaver's letters, the daily digest)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, ClientGroup
from communications import services, views
from communications.models import Letter, LetterState
from communications.tests.support import letter, pdf
from portal.models import AuditEvent, Practice, User
from portal.services import staff_deactivate

pytestmark = pytest.mark.django_db
Login = Callable[[User], HttpClient]
TODAY = timezone.localdate()


def _client(practice: Practice, name: str) -> Client:
    client = Client(practice=practice, kind="company", organisation_name=name)
    client.save()
    return client


@pytest.fixture
def inbox(practice: Practice, agent: User) -> dict[str, Any]:
    """Letters of every kind of standing: overdue and owned by the agent, due this week, done, unmatched, and one
    of a client in a group the agent is restricted to."""
    acme, zen = _client(practice, "Acme Pty Ltd"), _client(practice, "Zen Trust")
    group = ClientGroup.objects.create(practice=practice, name="Payroll")
    group.clients.add(acme)
    group.staff.add(agent)
    return {
        "acme": acme,
        "zen": zen,
        "overdue": letter(
            practice,
            client=acme,
            owner=agent,
            kind="DEBT",
            title="Final notice: overdue account",
            issued=TODAY - timedelta(days=30),
            due=TODAY - timedelta(days=2),
            document=pdf("Final notice"),
        ),
        "soon": letter(
            practice,
            client=zen,
            kind="ASR",
            title="Activity statement reminder",
            issued=TODAY,
            due=TODAY + timedelta(days=3),
        ),
        "done": letter(
            practice,
            client=zen,
            state=LetterState.DONE,
            note="Paid",
            due=TODAY - timedelta(days=9),
            issued=TODAY - timedelta(days=40),
        ),
        "unmatched": letter(
            practice,
            name="STRANGER, Sam",
            title="Audit letter",
            kind="AUD",
            issued=TODAY - timedelta(days=1),
            due=TODAY + timedelta(days=27),
        ),
    }


def _rows(response: Any) -> list[str]:
    page = response.content.decode()
    return [letter.title for letter in response.context["letters"]] if response.context else [page]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {},
            [
                "Activity statement reminder",
                "Audit letter",
                "Final notice: overdue account",
                "Notice of assessment 2026",
            ],
        ),
        ({"due": "overdue"}, ["Final notice: overdue account"]),
        ({"due": "week"}, ["Activity statement reminder"]),
        ({"unmatched": "on"}, ["Audit letter"]),
        ({"kind": "ASR"}, ["Activity statement reminder"]),
        ({"state": "done"}, ["Notice of assessment 2026"]),
        ({"state": "open", "owner": "admins"}, ["Activity statement reminder", "Audit letter"]),
        ({"owner": "me"}, []),
        (
            {"issued_from": str(TODAY - timedelta(days=35)), "issued_to": str(TODAY - timedelta(days=1))},
            ["Audit letter", "Final notice: overdue account"],
        ),
        ({"issued_from": "not a date"}, []),
        ({"q": "REMINDER"}, ["Activity statement reminder"]),
        ({"q": "notice", "due": "overdue"}, ["Final notice: overdue account"]),
    ],
)
def test_the_inbox_filters(
    inbox: dict[str, Any], admin: User, login: Login, query: dict[str, str], expected: list[str]
) -> None:
    response = login(admin).get(reverse("communications:inbox"), query)
    assert response.status_code == 200
    assert _rows(response) == expected


def test_filter_by_client_and_owner(inbox: dict[str, Any], admin: User, agent: User, login: Login) -> None:
    viewer = login(admin)
    by_client = viewer.get(reverse("communications:inbox"), {"client": inbox["zen"].pk})
    assert _rows(by_client) == ["Activity statement reminder", "Notice of assessment 2026"]
    assert _rows(viewer.get(reverse("communications:inbox"), {"owner": agent.pk})) == ["Final notice: overdue account"]


def test_each_letter_says_its_type_in_plain_words(inbox: dict[str, Any], admin: User, login: Login) -> None:
    page = login(admin).get(reverse("communications:inbox")).content.decode()
    for words in ("Debt notice", "Activity statement reminder", "Audit", "Notice of assessment", "Unmatched"):
        assert words in page
    assert "<td>DEBT</td>" not in page and "<td>AUD</td>" not in page


def test_keyset_paging_gives_every_letter_once_in_a_constant_number_of_queries(
    practice: Practice, admin: User, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(23):
        letter(practice, title=f"Letter {n:02}", issued=date(2026, 1, 1) + timedelta(days=n // 3))
    viewer = login(admin)
    viewer.get(reverse("communications:inbox"))  # the session's first request reads the user and the device
    seen: list[str] = []
    counts = []
    for size in (5, 10):
        monkeypatch.setattr(views, "PAGE", size)
        seen, url = [], reverse("communications:inbox")
        for _ in range(30):  # a paging that never ends fails here rather than hangs
            if not url:
                break
            with CaptureQueriesContext(connection) as queries:
                response = viewer.get(url)
            counts.append(len(queries))
            seen += _rows(response)
            url = (
                f"{reverse('communications:inbox')}?{response.context['next_query']}"
                if response.context["next_query"]
                else ""
            )
        assert len(seen) == len(set(seen)) == 23
    expected = [
        f"Letter {n:02}"
        for n in sorted(range(23), key=lambda n: (n // 3, Letter.objects.get(title=f"Letter {n:02}").pk), reverse=True)
    ]
    assert seen == expected
    assert len(set(counts)) == 1  # the same queries whatever the page size and however deep


@pytest.mark.parametrize("query", [{}, {"told": "no"}, {"due": "overdue"}, {"unmatched": "on"}])
def test_a_page_of_50_letters_takes_the_queries_of_a_page_of_5(
    practice: Practice, admin: User, agent: User, login: Login, monkeypatch: pytest.MonkeyPatch, query: dict[str, str]
) -> None:
    """Each letter with its own client and owner, sent to the practice and overdue, or unmatched: whatever a row
    shows, nothing is asked of the database a row at a time."""
    owners = [agent, *(User.objects.create_user(username=f"o{n}", practice=practice, role="agent") for n in range(4))]
    for n in range(50):
        client = None if query.get("unmatched") and n % 2 else _client(practice, f"Client {n:02} Pty Ltd")
        letter(practice, client=client, owner=owners[n % 5], title=f"Letter {n:02}", due=TODAY - timedelta(days=1))
    viewer = login(admin)
    viewer.get(reverse("communications:inbox"))  # the session's first request reads the user and the device
    counts = {}
    for size in (5, 50):
        monkeypatch.setattr(views, "PAGE", size)
        with CaptureQueriesContext(connection) as queries:
            response = viewer.get(reverse("communications:inbox"), query)
        assert len(_rows(response)) == (25 if query.get("unmatched") and size == 50 else size)
        counts[size] = len(queries)
    assert counts[5] == counts[50], counts


def test_each_row_says_the_letters_date_type_client_state_owner_and_due_date_and_links_to_it(
    practice: Practice, admin: User, agent: User, login: Login
) -> None:
    """The rows are put together in Python (views.inbox_rows), not by the template: what each cell says is pinned
    here."""
    acme = _client(practice, "Acme Pty Ltd")
    owned = letter(
        practice,
        client=acme,
        owner=agent,
        kind="DEBT",
        title="Final notice",
        account="AS 001",
        issued=date(2026, 3, 4),
        due=TODAY - timedelta(days=1),
        to_practice=True,
    )
    told = letter(
        practice,
        name="STRANGER, Sam",
        kind="XYZ",
        title='Something <b>else</b> & "more"',
        issued=date(2026, 3, 3),
        due=TODAY - timedelta(days=1),
        state=LetterState.DONE,
        to_practice=True,
        told_on=TODAY,
    )
    letter(
        practice,
        client=acme,
        title="Due today",
        issued=date(2026, 3, 2),
        due=TODAY,
        state="in_progress",
        to_practice=False,
    )
    html = login(admin).get(reverse("communications:inbox")).content.decode()
    cells = re.findall(r'<tr data-testid="letter-row">(.*?)</tr>', html, re.S)
    assert len(cells) == 3
    due = f"{(TODAY - timedelta(days=1)).day} {TODAY - timedelta(days=1):%b %Y}"
    first, second, third = cells
    assert "<td>4 Mar 2026</td><td>Debt notice</td>" in first
    assert "<td>Acme Pty Ltd</td>" in first and "Unmatched" not in first
    assert (
        f'<a href="{reverse("communications:letter", args=[owned.pk])}">Final notice</a></td><td>AS 001</td>' in first
    )
    assert '<td>New <span class="badge warn">To pass on</span></td><td>Bob Tester</td>' in first
    assert f'<td>{due} <strong class="bad">overdue</strong></td>' in first
    assert "<td>3 Mar 2026</td><td>Other letter (XYZ)</td>" in second
    assert '<span class="badge warn">Unmatched</span> STRANGER, Sam</td>' in second
    assert (
        f'<a href="{reverse("communications:letter", args=[told.pk])}">'
        "Something &lt;b&gt;else&lt;/b&gt; &amp; &quot;more&quot;</a>" in second
    )
    assert "<td>Done</td><td>Practice admins</td>" in second  # told already: nothing to pass on
    assert f"<td>{due}</td>" in second  # done: not overdue
    assert f"<td>In progress</td><td>Practice admins</td>\n<td>{TODAY.day} {TODAY:%b %Y}</td>" in third  # not yet


def test_the_filter_form_shows_what_was_asked_and_the_staff_as_they_are_now(
    practice: Practice, admin: User, agent: User, login: Login
) -> None:
    """The filter form's HTML is kept between pages (views.filters_html): never the form of other filters, nor
    the staff as they were."""
    viewer = login(admin)
    inbox = reverse("communications:inbox")

    def selected(page: str, name: str) -> list[str]:
        select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
        assert select, name
        return re.findall(r'<option value="([^"]*)"[^>]*selected', select.group(1))

    assert selected(viewer.get(inbox, {"kind": "ASR"}).content.decode(), "kind") == ["ASR"]
    assert selected(viewer.get(inbox, {"kind": "DEBT"}).content.decode(), "kind") == ["DEBT"]
    assert selected(viewer.get(inbox, {"kind": "DEBT", "after": "2026-01-01.1"}).content.decode(), "kind") == ["DEBT"]
    assert selected(viewer.get(inbox).content.decode(), "kind") == [""]
    before = viewer.get(inbox).content.decode()
    assert "Carol Newcomer" not in before
    User.objects.create_user(
        username="carol", practice=practice, role="agent", first_name="Carol", last_name="Newcomer"
    )
    after = viewer.get(inbox).content.decode()
    owner_select = re.search(r'<select name="owner"[^>]*>(.*?)</select>', after, re.S)
    assert owner_select and "Carol Newcomer" in owner_select.group(1)
    errors = viewer.get(inbox, {"issued_from": "not a date"}).content.decode()
    assert "Enter a valid date" in errors and "Enter a valid date" not in after


def test_a_letter_shows_its_pdf_in_the_page_and_every_opening_is_audited(
    inbox: dict[str, Any], agent: User, login: Login
) -> None:
    viewer = login(agent)
    page = viewer.get(reverse("communications:letter", args=[inbox["overdue"].pk])).content.decode()
    pdf_url = reverse("communications:letter_pdf", args=[inbox["overdue"].pk])
    assert f'<iframe src="{pdf_url}"' in page and "overdue" in page
    for _ in range(2):
        response = viewer.get(pdf_url)
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("inline;") and response.content.startswith(b"%PDF-")
    opened = AuditEvent.objects.filter(action="communications.document_opened")
    assert opened.count() == 2 and {e.actor_id for e in opened} == {agent.pk}
    waiting = viewer.get(reverse("communications:letter_pdf", args=[inbox["soon"].pk]))
    assert waiting.status_code == 404  # restricted: not in the agent's groups


def test_restricted_staff_see_only_their_groups_letters(inbox: dict[str, Any], agent: User, login: Login) -> None:
    User.objects.filter(pk=agent.pk).update(restricted_to_groups=True)
    agent.refresh_from_db()
    viewer = login(agent)
    assert _rows(viewer.get(reverse("communications:inbox"))) == ["Final notice: overdue account"]
    for hidden in ("soon", "unmatched"):
        assert viewer.get(reverse("communications:letter", args=[inbox[hidden].pk])).status_code == 404
    assert viewer.get(reverse("communications:client_tab", args=[inbox["zen"].pk])).status_code == 404


def test_read_only_staff_see_but_cannot_change(inbox: dict[str, Any], reader: User, login: Login) -> None:
    viewer = login(reader)
    target = inbox["soon"]
    page = viewer.get(reverse("communications:letter", args=[target.pk])).content.decode()
    assert "Work on it" not in page and "Activity statement reminder" in page
    inbox_page = viewer.get(reverse("communications:inbox")).content.decode()
    assert 'name="letters"' not in inbox_page and "Sync now" not in inbox_page
    change = {"state": "done", "note": "Lodged"}
    assert viewer.post(reverse("communications:letter", args=[target.pk]), change).status_code == 403
    assert viewer.post(reverse("communications:bulk"), {**change, "letters": [target.pk]}).status_code == 403
    assert viewer.post(reverse("communications:sync_start")).status_code == 403
    target.refresh_from_db()
    assert target.state == LetterState.NEW


def test_marking_a_letter_done_needs_a_note(inbox: dict[str, Any], agent: User, login: Login) -> None:
    viewer = login(agent)
    target = inbox["overdue"]
    url = reverse("communications:letter", args=[target.pk])
    refused = viewer.post(url, {"state": "done", "note": " "})
    assert refused.status_code == 200 and "Say what was done in the note" in refused.content.decode()
    target.refresh_from_db()
    assert target.state == LetterState.NEW
    assert viewer.post(url, {"state": "done", "note": "Paid in full on the phone"}).status_code == 302
    target.refresh_from_db()
    assert (target.state, target.note, target.closed_by_id) == ("done", "Paid in full on the phone", agent.pk)
    assert AuditEvent.objects.filter(action="communications.letters_changed", actor=agent).count() == 1


def test_bulk_assign_mark_done_and_no_action_needed(
    inbox: dict[str, Any], admin: User, agent: User, login: Login
) -> None:
    viewer = login(admin)
    chosen = [inbox["soon"].pk, inbox["unmatched"].pk]
    response = viewer.post(
        reverse("communications:bulk"), {"letters": chosen, "owner": str(agent.pk), "back": "due=week"}
    )
    assert response.status_code == 302 and response["Location"] == f"{reverse('communications:inbox')}?due=week"
    assert set(Letter.objects.filter(pk__in=chosen).values_list("owner_id", flat=True)) == {agent.pk}
    viewer.post(reverse("communications:bulk"), {"letters": chosen, "state": "no_action"})
    assert set(Letter.objects.filter(pk__in=chosen).values_list("state", flat=True)) == {"no_action"}
    viewer.post(reverse("communications:bulk"), {"letters": chosen, "state": "done"})  # no note: refused
    assert set(Letter.objects.filter(pk__in=chosen).values_list("state", flat=True)) == {"no_action"}
    viewer.post(reverse("communications:bulk"), {"letters": chosen, "state": "done", "note": "Filed"})
    assert set(Letter.objects.filter(pk__in=chosen).values_list("state", "note")) == {("done", "Filed")}
    viewer.post(reverse("communications:bulk"), {"letters": chosen, "owner": "admins"})
    assert set(Letter.objects.filter(pk__in=chosen).values_list("owner_id", flat=True)) == {None}


def test_a_letter_cannot_be_given_to_read_only_staff_or_another_practice(
    inbox: dict[str, Any], admin: User, reader: User, outsider: User
) -> None:
    for owner in (reader, outsider):
        with pytest.raises(services.LetterError):
            services.letters_change(user=admin, letters=[inbox["soon"]], owner=owner, assign=True)
    assert Letter.objects.get(pk=inbox["soon"].pk).owner_id is None


def test_another_practices_letters_are_not_found(inbox: dict[str, Any], outsider: User, login: Login) -> None:
    viewer = login(outsider)
    assert _rows(viewer.get(reverse("communications:inbox"))) == []
    assert viewer.get(reverse("communications:letter", args=[inbox["overdue"].pk])).status_code == 404
    assert viewer.get(reverse("communications:letter_pdf", args=[inbox["overdue"].pk])).status_code == 404


def test_a_clients_communications_tab_lists_its_letters(inbox: dict[str, Any], admin: User, login: Login) -> None:
    page = login(admin).get(reverse("communications:client_tab", args=[inbox["zen"].pk])).content.decode()
    assert "Activity statement reminder" in page and "Notice of assessment 2026" in page
    assert "Final notice" not in page
    detail = login(admin).get(reverse("clients:detail", args=[inbox["zen"].pk]), {"tab": "communications"})
    assert reverse("communications:client_tab", args=[inbox["zen"].pk]) in detail.content.decode()


def test_the_inbox_is_in_the_navigation(admin: User, login: Login) -> None:
    page = login(admin).get(reverse("portal:dashboard")).content.decode()
    assert f'href="{reverse("communications:inbox")}"' in page


# --- nothing past its date unseen ---


def test_the_dashboard_shows_due_this_week_and_overdue_for_the_user_and_the_practice(
    inbox: dict[str, Any], agent: User, admin: User, login: Login
) -> None:
    figures = services.letters_for_user(agent)
    assert (figures["mine_due"], figures["mine_overdue"]) == (0, 1)
    assert (figures["practice_due"], figures["practice_overdue"]) == (1, 1)
    page = login(agent).get(reverse("portal:dashboard")).content.decode()
    assert "ATO letters" in page and "1 of your letters is overdue." in page
    assert 'data-testid="letters-overdue"' in page and "Final notice: overdue account" in page
    admins = services.letters_for_user(admin)
    assert admins["unowned"] == 2 and admins["escalated"] == 0


def test_the_dashboard_counts_only_the_letters_a_restricted_member_sees(
    inbox: dict[str, Any], agent: User, admin: User
) -> None:
    """Figures are scoped as rows are: the letter due this week is of a client outside the agent's group."""
    User.objects.filter(pk=agent.pk).update(restricted_to_groups=True)
    agent.refresh_from_db()
    figures = services.letters_for_user(agent)
    assert (figures["practice_due"], figures["practice_overdue"]) == (0, 1)
    assert [letter.pk for letter in figures["overdue"]] == [inbox["overdue"].pk]
    letter(agent.tenant, client=inbox["zen"], owner=agent, due=TODAY - timedelta(days=1), issued=TODAY)
    assert services.letters_for_user(agent)["mine_overdue"] == 1  # not the one they own of a client outside
    assert services.letters_for_user(admin)["practice_overdue"] == 2


def test_overdue_letters_escalate_to_the_admins_once(inbox: dict[str, Any], admin: User) -> None:
    assert services.letters_escalate() == 1
    assert services.letters_escalate() == 0
    assert Letter.objects.filter(escalated_at__isnull=False).get().pk == inbox["overdue"].pk
    assert services.letters_for_user(admin)["escalated"] == 1


def test_a_leavers_open_letters_go_back_to_the_admins(inbox: dict[str, Any], admin: User, agent: User) -> None:
    closed = letter(agent.tenant, owner=agent, state=LetterState.DONE, note="x")
    with django_capture_on_commit():
        staff_deactivate(admin=admin, user=agent)
    assert Letter.objects.get(pk=inbox["overdue"].pk).owner_id is None
    assert Letter.objects.get(pk=closed.pk).owner_id == agent.pk  # history keeps who did it
    assert AuditEvent.objects.filter(action="communications.letters_returned").count() == 1


def test_the_daily_digest_emails_each_member_of_staff_with_something_due(
    inbox: dict[str, Any], admin: User, agent: User, reader: User
) -> None:
    User.objects.filter(pk=agent.pk).update(email="agent@example.com")
    User.objects.filter(pk=admin.pk).update(email="admin@example.com")
    User.objects.filter(pk=reader.pk).update(email="reader@example.com")  # nothing of theirs, not an admin
    assert services.digest_send() == 2
    sent = {m.to[0]: m for m in mail.outbox}
    assert set(sent) == {"agent@example.com", "admin@example.com"}
    assert sent["agent@example.com"].subject == "ATO letters: 1 overdue, 0 due this week"
    assert "Final notice: overdue account" in sent["agent@example.com"].body
    assert "Escalated to the admins: 1" in sent["admin@example.com"].body


def django_capture_on_commit() -> Any:
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def test_a_letter_due_today_is_due_this_week_not_overdue(practice: Practice, admin: User, login: Login) -> None:
    letter(practice, title="Due today", due=TODAY, issued=TODAY - timedelta(days=14))
    viewer = login(admin)
    assert _rows(viewer.get(reverse("communications:inbox"), {"due": "overdue"})) == []
    assert _rows(viewer.get(reverse("communications:inbox"), {"due": "week"})) == ["Due today"]


def test_the_progress_that_refreshes_offers_resume_once_a_run_stops(
    practice: Practice, admin: User, agent: User, login: Login
) -> None:
    """The page polls the progress fragment while a run goes; its last refresh, of a run that stopped, must carry the
    Resume button (it did not, and the button came only with a reload). Only to those who operate the gateway."""
    from communications.models import SyncRun, SyncStatus

    run = SyncRun.objects.create(practice=practice, started_by=admin, issued_from=TODAY, issued_to=TODAY)
    progress = reverse("communications:sync_progress", args=[run.pk])
    resume = reverse("communications:sync_resume", args=[run.pk])
    run.status, run.error = SyncStatus.FAILED, "The ATO could not be reached."
    run.save(update_fields=["status", "error"])
    assert resume in login(admin).get(progress).content.decode()
    assert resume in login(admin).get(reverse("communications:sync", args=[run.pk])).content.decode()
    assert resume not in login(agent).get(progress).content.decode()
    run.status = SyncStatus.DONE
    run.save(update_fields=["status"])
    assert resume not in login(admin).get(progress).content.decode()
