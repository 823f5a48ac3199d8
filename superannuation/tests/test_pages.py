"""The superannuation pages, without a browser: each renders for an agent with what a person reads, another
practice's objects are 404, read-only staff see no change button and get 403 on every POST, the empty states say
what to do, and the worklist's queries do not grow with its page. Rows are written straight into the database:
the services that make them are tested with the real stand-in ATO in their own modules."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from itertools import count
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.models import Practice, User
from portal.sealing import seal
from superannuation import item_views
from superannuation.models import (
    Batch,
    BatchState,
    Meaning,
    Member,
    MemberImport,
    Report,
    ReportKind,
    SuperFund,
    Transaction,
    WorkItem,
)

pytestmark = pytest.mark.django_db
Login = Callable[[User], HttpClient]
_ids = count(1)


def fund_of(practice: Practice, name: str = "Harbour Super", usi: str = "53004085616001") -> SuperFund:
    return SuperFund.objects.create(practice=practice, name=name, abn=usi[:11], usi=usi)


def member_of(fund: SuperFund, family: str, **fields: Any) -> Member:
    member = Member(
        fund=fund,
        member_number=f"M{next(_ids):06}",
        family_name=family,
        given_names="Jane",
        date_of_birth=date(1980, 4, 1),
        opened_on=date(2020, 7, 1),
        **fields,
    )
    member.set_tfn("123456782")
    member.save()
    return member


def answered(batch: Batch, member: Member, meaning: Meaning, *, processed: bool = True, **fields: Any) -> Transaction:
    return Transaction.objects.create(
        member=member,
        batch=batch,
        transaction_id=f"T{next(_ids)}",
        event="opened",
        event_on=date(2020, 7, 1),
        tfn_given=True,
        processed=processed,
        meaning=meaning,
        answered_at=timezone.now(),
        **fields,
    )


def item_for(t: Transaction, *, days_ago: int = 3) -> WorkItem:
    aware = timezone.now() - timedelta(days=days_ago)
    return WorkItem.objects.create(
        fund=t.member.fund,
        member=t.member,
        transaction=t,
        meaning=t.meaning,
        aware_at=aware,
        due_on=WorkItem.due_from(aware),
    )


def world_of(practice: Practice, user: User) -> dict[str, Any]:
    """A fund after its foundation load: a batch of four answered (matched, corrected, a validation error, 096604),
    the three that need action on the worklist, and an import with a bad row."""
    fund = fund_of(practice)
    members = [member_of(fund, name) for name in ("ADAMS", "BROWN", "CLARKE", "DAVIS")]
    now = timezone.now()
    report = Report.objects.create(fund=fund, kind=ReportKind.FOUNDATION, total=4, built_at=now, finished_at=now)
    batch = Batch.objects.create(
        fund=fund,
        kind=ReportKind.FOUNDATION,
        report=report,
        state=BatchState.ANSWERED,
        size=4,
        receipt_at=now,
        pulled_at=now,
    )
    matched = answered(batch, members[0], Meaning.MATCHED)
    corrected = answered(batch, members[1], Meaning.CORRECTED, corrected_tfn=seal("876543210"))
    failed = answered(
        batch,
        members[2],
        Meaning.VALIDATION_ERROR,
        processed=False,
        items=[{"code": "CMN.ATO.SPRMBRINFO.000001", "severity": "Error", "text": "The date of birth is invalid."}],
    )
    other = answered(batch, members[3], Meaning.OTHER_HOLDER, processed=False)
    job = MemberImport.objects.create(
        fund=fund,
        uploaded_by=user,
        filename="members.csv",
        total_rows=5,
        done_rows=5,
        added=4,
        finished_at=now,
        errors=[{"row": 6, "member_number": "M9", "messages": ["The TFN is not valid."]}],
    )
    return {
        "fund": fund,
        "member": members[1],
        "report": report,
        "batch": batch,
        "matched": matched,
        "failed": failed,
        "corrected_item": item_for(corrected),
        "failed_item": item_for(failed, days_ago=40),
        "other_item": item_for(other),
        "import": job,
    }


@pytest.fixture
def world(practice: Practice, agent: User) -> dict[str, Any]:
    return world_of(practice, agent)


def pages(w: dict[str, Any]) -> dict[str, str]:
    fund = w["fund"].pk
    fund_url = reverse("superannuation:fund", args=[fund])
    return {
        "funds": reverse("superannuation:funds"),
        "members": fund_url,
        "import": f"{fund_url}?tab=import",
        "reporting": f"{fund_url}?tab=reporting",
        "worklist": f"{fund_url}?tab=worklist",
        "reports": f"{fund_url}?tab=reports",
        "import_detail": reverse("superannuation:import", args=[w["import"].pk]),
        "import_progress": reverse("superannuation:import_progress", args=[w["import"].pk]),
        "member": reverse("superannuation:member", args=[w["member"].pk]),
        "member_edit": reverse("superannuation:member_edit", args=[w["member"].pk]),
        "fund_edit": reverse("superannuation:fund_edit", args=[fund]),
        "member_add": reverse("superannuation:member_add", args=[fund]),
        "report": reverse("superannuation:report", args=[w["report"].pk]),
        "report_progress": reverse("superannuation:report_progress", args=[w["report"].pk]),
        "batch": reverse("superannuation:batch", args=[w["batch"].pk]),
        "practice_worklist": reverse("superannuation:worklist"),
        "corrected_item": reverse("superannuation:item", args=[w["corrected_item"].pk]),
        "other_item": reverse("superannuation:item", args=[w["other_item"].pk]),
        "failed_item": reverse("superannuation:item", args=[w["failed_item"].pk]),
    }


def posts(w: dict[str, Any]) -> list[str]:
    fund, member, item = w["fund"].pk, w["member"].pk, w["corrected_item"].pk
    return [
        reverse("superannuation:fund_add"),
        reverse("superannuation:import_upload", args=[fund]),
        reverse("superannuation:foundation", args=[fund]),
        reverse("superannuation:realtime", args=[fund]),
        reverse("superannuation:fund_edit", args=[fund]),
        reverse("superannuation:member_add", args=[fund]),
        reverse("superannuation:member_edit", args=[member]),
        reverse("superannuation:member_status", args=[member]),
        reverse("superannuation:reveal_tfn", args=[member]),
        reverse("superannuation:batch_resubmit", args=[w["batch"].pk]),
        *(reverse(f"superannuation:item_{action}", args=[item]) for action in ACTIONS),
    ]


ACTIONS = ("apply", "step", "extension", "remediation", "resolve")
FORM = {"contact": "x", "found": "x", "resolution": "x", "on": "2026-01-01", "family_name": "X", "transactions": "1"}


def test_every_page_renders_for_an_agent_with_what_a_person_reads(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    http = login(agent)
    bodies = {}
    for name, url in pages(world).items():
        response = http.get(url)
        assert response.status_code == 200, f"{name}: {response.status_code}"
        bodies[name] = response.content.decode()
    assert "Harbour Super" in bodies["funds"] and ">4<" in bodies["funds"]  # its members
    assert "1 overdue" in bodies["funds"]
    assert "BROWN" in bodies["members"] and "*** *** 782" in bodies["members"] and "123456782" not in bodies["members"]
    assert "Download the template" in bodies["import"] and "The TFN is not valid." in bodies["import_detail"]
    assert (
        "1 matched" in bodies["report"] and "1 corrected" in bodies["report"] and "2 not processed" in bodies["report"]
    )
    assert "Overdue by 10 days" in bodies["worklist"] and "27 days left" in bodies["worklist"]
    assert bodies["worklist"].index("Overdue by 10 days") < bodies["worklist"].index("27 days left")
    assert "Update your records with the TFN supplied." in bodies["corrected_item"]
    assert "Yes, apply it" in bodies["corrected_item"] and "must not be given to employers" in bodies["corrected_item"]
    assert (
        "different account holder" in bodies["other_item"] and 'data-testid="resubmit-disabled"' in bodies["other_item"]
    )
    assert "cannot be resubmitted until one of the two" in bodies["other_item"]
    assert "will not be processed" in bodies["failed_item"]
    assert "Report 4 accounts" not in bodies["reporting"]  # the foundation load is done: no second start
    assert "Super funds" in http.get(reverse("portal:dashboard")).content.decode()


def test_the_batch_offers_only_the_failed_transactions_and_holds_back_an_unremediated_096604(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    html = login(agent).get(reverse("superannuation:batch", args=[world["batch"].pk])).content.decode()
    assert f'name="transactions" value="{world["failed"].pk}"' in html
    assert f'value="{world["matched"].pk}"' not in html  # processed: cannot be chosen
    other = world["other_item"].transaction
    assert f'id="resend-{other.pk}" aria-describedby="why-{other.pk}"' in html
    assert f'name="transactions" value="{other.pk}"' not in html
    WorkItem.objects.filter(pk=world["other_item"].pk).update(remediation=WorkItem.Remediation.IDENTITY_CONFIRMED)
    html = login(agent).get(reverse("superannuation:batch", args=[world["batch"].pk])).content.decode()
    assert f'name="transactions" value="{other.pk}"' in html


def test_another_practice_gets_404_for_every_object(world: dict[str, Any], outsider: User, login: Login) -> None:
    http = login(outsider)
    for name, url in pages(world).items():
        if name in ("funds", "practice_worklist"):
            assert (
                "Harbour Super" not in http.get(url).content.decode() and "BROWN" not in http.get(url).content.decode()
            )
            continue
        assert http.get(url).status_code == 404, name
    for url in posts(world)[1:]:
        assert http.post(url, FORM).status_code == 404, url
    assert not WorkItem.objects.filter(state="resolved").exists() and world["fund"].reports.count() == 1


def test_read_only_staff_see_but_get_no_change_buttons_and_403_on_every_post(
    world: dict[str, Any], reader: User, login: Login
) -> None:
    http = login(reader)
    for name, url in pages(world).items():
        if name in ("member_edit", "fund_edit", "member_add"):
            assert http.get(url).status_code == 403, name
            continue
        html = http.get(url).content.decode()
        for button in (
            "Add a fund",
            "Yes, apply it",
            "Record the step",
            "Resubmit the chosen",
            "Send the pending",
            "Start the foundation",
            'type="checkbox"',
            "Reveal",
            ">Edit<",
            "Close the account",
        ):
            assert button not in html, f"{name} offers {button!r}"
    for url in posts(world):
        assert http.post(url, FORM).status_code == 403, url
    assert not WorkItem.objects.filter(state="resolved").exists() and not Transaction.objects.pending().exists()


def test_empty_states_say_what_to_do(practice: Practice, agent: User, login: Login) -> None:
    http = login(agent)
    html = http.get(reverse("superannuation:funds")).content.decode()
    assert "No super funds yet." in html and "Add a fund" in html
    fund = fund_of(practice)
    html = http.get(reverse("superannuation:fund", args=[fund.pk])).content.decode()
    assert "This fund has no members yet." in html and "Import them from a CSV" in html
    html = http.get(reverse("superannuation:fund", args=[fund.pk]) + "?tab=reporting").content.decode()
    assert "Import the members, then start the foundation data load." in html
    html = http.get(reverse("superannuation:worklist")).content.decode()
    assert 'data-testid="no-items"' in html and "Nothing to do" in html
    member_of(fund, "ZED")
    html = http.get(reverse("superannuation:fund", args=[fund.pk]), {"q": "nobody"}).content.decode()
    assert "No member matches" in html


def test_members_are_searched_and_paged_by_name(
    practice: Practice, agent: User, login: Login, monkeypatch: Any
) -> None:
    from superannuation import views

    monkeypatch.setattr(views, "PAGE", 2)
    fund = fund_of(practice)
    for name in ("EVANS", "ADAMS", "DAVIS", "BROWN", "CLARKE"):
        member_of(fund, name)
    http = login(agent)
    url, seen = reverse("superannuation:fund", args=[fund.pk]), []
    query = ""
    for _ in range(5):
        response = http.get(f"{url}?{query}")
        seen += [m.family_name for m in response.context["members"]]
        query = response.context["next_query"]
        if not query:
            break
    assert seen == ["ADAMS", "BROWN", "CLARKE", "DAVIS", "EVANS"]
    found = http.get(url, {"q": "cla"}).context["members"]
    assert [m.family_name for m in found] == ["CLARKE"]


def test_the_worklist_query_count_does_not_grow_with_its_page(
    practice: Practice, agent: User, login: Login, monkeypatch: Any
) -> None:
    world = world_of(practice, agent)
    http = login(agent)
    url = reverse("superannuation:worklist")
    http.get(url)  # the session's first request reads more of it than the rest
    counts = []
    for size in (1, 3):
        monkeypatch.setattr(item_views, "PAGE", size)
        with CaptureQueriesContext(connection) as queries:
            response = http.get(url)
        assert len(response.context["items"]) == size
        counts.append(len(queries))
    batch = world["batch"]
    for name in ("ELLIS", "FORD", "GRANT", "HALL"):
        item_for(answered(batch, member_of(world["fund"], name), Meaning.PLEASE_RESOLVE))
    monkeypatch.setattr(item_views, "PAGE", 7)
    with CaptureQueriesContext(connection) as queries:
        response = http.get(url)
    assert len(response.context["items"]) == 7
    counts.append(len(queries))
    assert len(set(counts)) == 1, counts


def test_the_worklist_s_rows_say_the_days_left_the_due_date_and_the_response_and_link_each_item(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    """The rows are put together in Python (item_views.worklist_rows), not by the template: the words of each
    number of days, the date, the label and the link are pinned here."""
    from superannuation.models import ReasonableStep

    today = timezone.localdate()
    batch, fund = world["batch"], world["fund"]
    WorkItem.objects.all().delete()
    rows = {}
    for name, left in (("ELLIS", -1), ("FORD", 0), ("GRANT", 1), ("HALL", 2)):
        item = item_for(answered(batch, member_of(fund, name), Meaning.PLEASE_RESOLVE))
        WorkItem.objects.filter(pk=item.pk).update(due_on=today + timedelta(days=left))
        rows[name] = item
    ReasonableStep.objects.create(item=rows["HALL"], contact="The member, by phone", found="Nothing yet")
    html = login(agent).get(reverse("superannuation:worklist")).content.decode()
    cells = re.findall(r'<tr data-testid="item-row">(.*?)</tr>', html, re.S)
    assert len(cells) == 4
    words = ["Overdue by 1 day", "Due today", "1 day left", "2 days left"]
    for cell, (name, item), said in zip(cells, rows.items(), words, strict=True):
        assert f"<td>{said}</td>" in cell or f'<strong class="bad">{said}</strong>' in cell, cell
        assert (f'<strong class="bad">{said}</strong>' in cell) == (said in ("Overdue by 1 day", "Due today"))
        due = today + timedelta(days=words.index(said) - 1)
        assert f"<td>{due.day} {due:%b %Y}</td>" in cell, cell
        assert f'<a href="{reverse("superannuation:item", args=[item.pk])}">Jane {name}</a>' in cell, cell
        assert "<td>Harbour Super</td>" in cell and "Please resolve (unmatched, TFN given)" in cell
        assert ("Steps recorded" in cell) == (name == "HALL") and ("None yet" in cell) == (name != "HALL")


def test_staff_restricted_to_groups_reach_only_the_funds_of_their_groups_clients(
    practice: Practice, agent: User, login: Login
) -> None:
    from clients.models import Client, ClientGroup

    client = Client.objects.create(practice=practice, kind="company", organisation_name="Harbour Super Pty Ltd")
    group = ClientGroup.objects.create(practice=practice, name="Super")
    group.clients.add(client)
    group.staff.add(agent)
    agent.restricted_to_groups = True
    agent.save(update_fields=["restricted_to_groups"])
    theirs = fund_of(practice)
    SuperFund.objects.filter(pk=theirs.pk).update(client=client)
    hidden = fund_of(practice, "Hidden Super", "51824753556001")
    http = login(agent)
    listed = http.get(reverse("superannuation:funds")).content.decode()
    assert "Harbour Super" in listed and "Hidden Super" not in listed
    assert http.get(reverse("superannuation:fund", args=[theirs.pk])).status_code == 200
    assert http.get(reverse("superannuation:fund", args=[hidden.pk])).status_code == 404
    member = member_of(hidden, "HIDDEN")
    assert http.get(reverse("superannuation:member", args=[member.pk])).status_code == 404


def test_the_dashboard_shows_what_is_due_this_week_and_overdue(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    WorkItem.objects.filter(pk=world["other_item"].pk).update(due_on=timezone.localdate() + timedelta(days=2))
    html = login(agent).get(reverse("portal:dashboard")).content.decode()
    panel = html[html.index("Super funds: TFN responses") :]
    assert "1 due this week" in panel and "1 overdue" in panel and "3 open in all" in panel
    assert "1 item overdue: the 30 days to act have passed." in panel


def test_an_item_s_forms_record_through_the_services_and_say_what_is_wrong(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    http = login(agent)
    item = world["failed_item"]
    url = reverse("superannuation:item", args=[item.pk])
    step = http.post(
        reverse("superannuation:item_step", args=[item.pk]), {"contact": "The member, by email", "found": "Typo"}
    )
    assert step.status_code == 302 and item.steps.get().found == "Typo"
    earlier = (item.due_on - timedelta(days=1)).isoformat()
    refused = http.post(
        reverse("superannuation:item_extension", args=[item.pk]),
        {
            "requested_on": timezone.localdate().isoformat(),
            "requested_of": "SuperCRT@ato.gov.au",
            "new_due_on": earlier,
        },
    )
    assert refused.status_code == 400 and "must be after the current due date" in refused.content.decode()
    later = timezone.localdate() + timedelta(days=20)
    http.post(
        reverse("superannuation:item_extension", args=[item.pk]),
        {"requested_on": timezone.localdate().isoformat(), "requested_of": "SuperCRT@ato.gov.au", "new_due_on": later},
    )
    item.refresh_from_db()
    assert item.due_on == later and "20 days left" in http.get(url).content.decode()
    other = world["other_item"]
    missing = http.post(
        reverse("superannuation:item_remediation", args=[other.pk]), {"remediation": "identity_confirmed"}
    )
    assert missing.status_code == 400 and "Say whom at the ATO confirmed the identity" in missing.content.decode()
    http.post(
        reverse("superannuation:item_remediation", args=[other.pk]),
        {"remediation": "identity_confirmed", "note": "Confirmed by the ATO's super line on 1 Dec, ref 42"},
    )
    other.refresh_from_db()
    assert (
        other.may_resubmit
        and 'data-testid="remediation-done"'
        in http.get(reverse("superannuation:item", args=[other.pk])).content.decode()
    )
    http.post(reverse("superannuation:item_resolve", args=[item.pk]), {"resolution": "Corrected and resubmitted"})
    item.refresh_from_db()
    assert item.state == "resolved" and item.resolution == "Corrected and resubmitted"
    assert 'name="resolution"' not in http.get(url).content.decode()  # nothing more to do on a resolved item


def test_a_fund_the_services_refuse_is_shown_on_its_field(practice: Practice, agent: User, login: Login) -> None:
    http = login(agent)
    form = {"name": "Harbour Super", "abn": "53004085616", "usi": "51824753556001"}
    response = http.post(reverse("superannuation:fund_add"), form)
    assert response.status_code == 400 and not SuperFund.objects.exists()
    assert "begins with the fund" in response.content.decode() and 'href="#id_usi"' in response.content.decode()
    added = http.post(reverse("superannuation:fund_add"), {**form, "usi": "53004085616001"})
    fund = SuperFund.objects.get()
    assert added.status_code == 302 and added["Location"].endswith(f"/super/{fund.pk}/?tab=import")


def test_exports_are_masked_and_a_reveal_is_audited_without_the_tfn(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    from portal.models import AuditEvent

    http = login(agent)
    fund = world["fund"]
    export = http.get(reverse("superannuation:export", args=[fund.pk]))
    body = export.getvalue().decode()
    assert export["Content-Type"].startswith("text/csv") and "BROWN" in body and "782" in body
    assert "123456782" not in body
    report = http.get(reverse("superannuation:report_csv", args=[fund.pk])).getvalue().decode()
    assert "Matched and corrected (s299TA notice),1" in report
    template = http.get(reverse("superannuation:import_template")).content.decode()
    assert template.startswith("member_number,family_name,")
    member = world["member"]
    page = http.get(reverse("superannuation:member", args=[member.pk])).content.decode()
    assert "The TFN provided is incorrect" in page  # the response in plain words
    revealed = http.post(reverse("superannuation:reveal_tfn", args=[member.pk])).content.decode()
    assert "123 456 782" in revealed and "data-announce" in revealed
    event = AuditEvent.objects.get(action="superannuation.tfn_revealed")
    assert event.object_id == str(member.pk) and "123456782" not in str(event.details) + event.object_repr


def test_a_fund_added_with_its_client_is_linked_to_the_client_with_its_abn(
    practice: Practice, agent: User, login: Login
) -> None:
    from clients.models import Client

    http = login(agent)
    form = {"name": "Harbour Super", "abn": "53004085616", "usi": "53004085616001", "link_client": "on"}
    missing = http.post(reverse("superannuation:fund_add"), form)
    assert missing.status_code == 400 and "No client of the register" in missing.content.decode()
    assert not SuperFund.objects.exists()
    client = Client.objects.create(
        practice=practice, kind="trust", organisation_name="Harbour Super", abn="53004085616"
    )
    http.post(reverse("superannuation:fund_add"), form)
    assert SuperFund.objects.get().client == client
    assert (
        f'href="{reverse("clients:detail", args=[client.pk])}"'
        in http.get(reverse("superannuation:funds")).content.decode()
    )


def test_every_item_says_what_its_response_means_and_what_to_do_in_seed_003_s_words(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    from django.utils.html import escape

    from superannuation.models import NEEDS_ACTION

    http = login(agent)
    for meaning in NEEDS_ACTION:
        t = answered(world["batch"], member_of(world["fund"], "EVERY"), meaning, processed=False)
        html = http.get(reverse("superannuation:item", args=[item_for(t).pk])).content.decode()
        means, to_do = item_views.WORDS[meaning]
        assert escape(means) in html and escape(to_do) in html, meaning
    assert "more recent member account request has already been processed" in item_views.WORDS[Meaning.MORE_RECENT][0]
    assert item_views.WORDS[Meaning.UNMATCHED_FOUNDATION][1] == (
        "During the foundation data load you are not required to take any action."
    )


def test_a_batch_refused_whole_says_why_and_offers_every_transaction_again(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    fund = world["fund"]
    report = Report.objects.create(fund=fund, kind=ReportKind.REALTIME, total=2, built_at=timezone.now())
    refused = Batch.objects.create(
        fund=fund,
        kind=ReportKind.REALTIME,
        report=report,
        state=BatchState.REFUSED,
        size=2,
        refusal=["The ATO does not know this fund's USI."],
    )
    sent = [
        Transaction.objects.create(
            member=member_of(fund, name), batch=refused, transaction_id=f"R{next(_ids)}", event="changed",
            event_on=date(2026, 11, 1), tfn_given=True,
        )
        for name in ("REFUSED", "AGAIN")
    ]  # fmt: skip
    html = login(agent).get(reverse("superannuation:batch", args=[refused.pk])).content.decode()
    assert "The ATO refused the whole batch" in html and "does not know this fund" in html
    assert all(f'name="transactions" value="{t.pk}"' in html for t in sent)
    # An unanswered transaction of a batch still waiting for its answer is not offered.
    Batch.objects.filter(pk=refused.pk).update(state=BatchState.AWAITING, refusal=[])
    html = login(agent).get(reverse("superannuation:batch", args=[refused.pk])).content.decode()
    assert 'name="transactions"' not in html


def test_a_client_that_is_a_fund_has_a_super_tab_with_its_counts_and_links(
    world: dict[str, Any], practice: Practice, agent: User, login: Login
) -> None:
    from clients.models import Client

    fund = world["fund"]
    client = Client.objects.create(practice=practice, kind="trust", organisation_name="Harbour Super", abn=fund.abn)
    SuperFund.objects.filter(pk=fund.pk).update(client=client)
    http = login(agent)
    page = http.get(reverse("clients:detail", args=[client.pk]), {"tab": "super"}).content.decode()
    tab_url = reverse("superannuation:client_tab", args=[client.pk])
    assert '<a href="?tab=super" aria-current="page">Super</a>' in page and f'hx-get="{tab_url}"' in page
    tabs = re.findall(r'href="\?tab=(\w+)"', page)
    assert tabs[:2] == ["overview", "relationships"] and tabs[-1] == "super"
    html = http.get(tab_url).content.decode()
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", html)]
    assert cells[:5] == ["Harbour Super", fund.usi, "4", "3", "1 overdue"]  # members, open items, overdue
    fund_url = reverse("superannuation:fund", args=[fund.pk])
    assert f'href="{fund_url}?tab=worklist"' in html and f'href="{fund_url}?tab=reports"' in html
    assert 'data-testid="no-super"' not in html


def test_a_client_that_is_no_fund_says_how_to_add_it_and_the_form_starts_from_the_client(
    world: dict[str, Any], practice: Practice, agent: User, reader: User, outsider: User, login: Login
) -> None:
    from clients.models import Client

    client = Client.objects.create(
        practice=practice, kind="trust", organisation_name="Bayside Super", abn="53004085616"
    )
    html = login(agent).get(reverse("superannuation:client_tab", args=[client.pk])).content.decode()
    add_url = f"{reverse('superannuation:fund_add')}?client={client.pk}"
    assert "Bayside Super is not a super fund the practice administers." in html and f'href="{add_url}"' in html
    assert "Harbour Super" not in html  # the practice's other fund is not this client's
    form = login(agent).get(add_url).content.decode()
    assert 'value="Bayside Super"' in form and 'value="53004085616"' in form
    assert re.search(r'name="link_client"[^>]*checked', form)
    read_only = login(reader).get(reverse("superannuation:client_tab", args=[client.pk])).content.decode()
    assert "someone who manages super funds adds it" in read_only and add_url not in read_only
    assert login(outsider).get(reverse("superannuation:client_tab", args=[client.pk])).status_code == 404
    assert 'name="name"' in login(outsider).get(add_url).content.decode()  # another practice's client: no values
    assert "Bayside" not in login(outsider).get(add_url).content.decode()


def test_a_fund_is_edited_from_its_page_through_the_service(world: dict[str, Any], agent: User, login: Login) -> None:
    from portal.models import AuditEvent

    fund = world["fund"]
    http = login(agent)
    edit_url = reverse("superannuation:fund_edit", args=[fund.pk])
    assert f'href="{edit_url}"' in http.get(reverse("superannuation:fund", args=[fund.pk])).content.decode()
    form = {"name": "Harbour Super", "abn": fund.abn, "usi": f"{fund.abn}01"}  # 13 digits
    refused = http.post(edit_url, form)
    assert refused.status_code == 400 and "14 digits in all" in refused.content.decode()
    response = http.post(edit_url, {**form, "name": "Harbour Members Super", "usi": f"{fund.abn}002"})
    assert response.status_code == 302 and response["Location"] == reverse("superannuation:fund", args=[fund.pk])
    fund.refresh_from_db()
    assert (fund.name, fund.usi) == ("Harbour Members Super", f"{fund.abn}002")
    event = AuditEvent.objects.get(action="superannuation.fund_updated")
    assert sorted(event.details["changed"]) == ["name", "usi"]


def test_a_member_added_from_the_fund_s_page_is_reported_as_opened(
    world: dict[str, Any], agent: User, login: Login
) -> None:
    fund = world["fund"]
    http = login(agent)
    add_url = reverse("superannuation:member_add", args=[fund.pk])
    assert f'href="{add_url}"' in http.get(reverse("superannuation:fund", args=[fund.pk])).content.decode()
    assert re.search(r'name="contributions_accepted"[^>]*checked', http.get(add_url).content.decode())
    form = {
        "member_number": "NEW1",
        "opened_on": "2026-11-02",
        "family_name": "EVANS",
        "given_names": "Kim",
        "date_of_birth": "1990-02-03",
        "tfn": "123 456 782",
        "phase": "accumulation",
        "lost_status": "not_lost",
        "contributions_accepted": "on",
    }
    bad = http.post(add_url, {**form, "tfn": "123456789"})
    assert bad.status_code == 400 and not fund.members.filter(member_number="NEW1").exists()
    response = http.post(add_url, form)
    member = fund.members.get(member_number="NEW1")
    assert response.status_code == 302 and response["Location"] == reverse("superannuation:member", args=[member.pk])
    assert member.masked_tfn.endswith("782") and member.opened_on == date(2026, 11, 2)
    assert list(member.transactions.values_list("event", "event_on")) == [("opened", date(2026, 11, 2))]
    again = http.post(add_url, form)
    assert again.status_code == 400 and "already in this fund" in again.content.decode()


def test_a_step_s_evidence_downloads_as_an_attachment_audited_without_the_tfn(
    world: dict[str, Any], agent: User, reader: User, outsider: User, login: Login
) -> None:
    from portal.models import AuditEvent
    from superannuation.models import ReasonableStep

    item = world["failed_item"]
    letter = b"%PDF-1.4 The member confirmed TFN 123456782 by letter."
    http = login(agent)
    http.post(
        reverse("superannuation:item_step", args=[item.pk]),
        {"contact": "The member, by letter", "found": "The TFN was mistyped.", "evidence": _upload(letter)},
    )
    step = ReasonableStep.objects.get(item=item)
    assert b"123456782" not in step.evidence.encode() and step.evidence  # sealed at rest
    url = reverse("superannuation:step_evidence", args=[step.pk])
    assert "123456782" not in url
    assert f'href="{url}"' in http.get(reverse("superannuation:item", args=[item.pk])).content.decode()
    response = http.get(url)
    assert response.status_code == 200 and response.content == letter
    assert response["Content-Disposition"] == 'attachment; filename="letter-123.pdf"'
    assert response["Content-Type"] == "application/octet-stream"
    event = AuditEvent.objects.get(action="superannuation.evidence_downloaded")
    assert event.object_id == str(item.pk) and event.details == {"step": step.pk, "bytes": len(letter)}
    assert "123456782" not in str(event.details) + event.object_repr
    assert login(reader).get(url).status_code == 403 and login(outsider).get(url).status_code == 404
    bare = ReasonableStep.objects.create(item=item, contact="x", found="x")
    assert http.get(reverse("superannuation:step_evidence", args=[bare.pk])).status_code == 404
    assert AuditEvent.objects.filter(action="superannuation.evidence_downloaded").count() == 1


def _upload(content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("letter-123.pdf", content, content_type="application/pdf")
