"""The services without the ATO: funds and their checks, the member file's bad input, the export and the TFN
reveal, the work items' steps, extensions, remediation and resolution, the worklist's paging and figures, the
reminders and escalations, and who may see and change what. Work items are written straight into the database
here (the reporting tests make them the whole way)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients.models import Client, ClientGroup
from portal.capabilities import Capability, Role
from portal.models import AuditEvent, Practice, User
from portal.sealing import unseal_bytes
from superannuation import importing, services
from superannuation.importing import TEMPLATE
from superannuation.models import (
    Batch,
    BatchState,
    ItemState,
    Meaning,
    Member,
    MemberImport,
    Report,
    ReportKind,
    SuperFund,
    Transaction,
    WorkItem,
)
from tests.conftest import run_worker_burst

from .support import member_file

# In a test's transaction (fast), except where the worker must see committed rows: the member file's tests.
pytestmark = pytest.mark.django_db
committed = pytest.mark.django_db(transaction=True)

ABN = "53004085616"
USI = f"{ABN}001"
TFN = "123456782"  # passes the TFN check


@pytest.fixture
def fund(admin: User) -> SuperFund:
    return services.fund_create(user=admin, name="Harbour Members Super", abn=ABN, usi=USI)


def add_member(fund: SuperFund, number: str = "M-1", tfn: str = TFN) -> Member:
    member = Member(fund=fund, member_number=number, family_name="Citizen", given_names="Jane",
                    date_of_birth=date(1980, 4, 1), opened_on=date(2015, 7, 1))  # fmt: skip
    member.set_tfn(tfn)
    member.save()
    return member


def add_item(fund: SuperFund, member: Member, meaning: str, *, aware_days_ago: int = 0, **fields: Any) -> WorkItem:
    """A work item as the answer handler leaves it, for a transaction of a real-time batch answered."""
    aware = timezone.now() - timedelta(days=aware_days_ago)
    report = Report.objects.create(fund=fund, kind=ReportKind.REALTIME, built_at=aware, finished_at=aware)
    batch = Batch.objects.create(fund=fund, kind=ReportKind.REALTIME, report=report, state=BatchState.ANSWERED,
                                 size=1, receipt_at=aware, pulled_at=aware)  # fmt: skip
    t = Transaction.objects.create(member=member, batch=batch, transaction_id=f"T{WorkItem.objects.count()}{member.pk}",
                                   event="changed", event_on=date.today(), tfn_given=True, processed=False,
                                   meaning=meaning, answered_at=aware, **fields)  # fmt: skip
    return WorkItem.objects.create(fund=fund, member=member, transaction=t, meaning=meaning, aware_at=aware,
                                   due_on=WorkItem.due_from(aware))  # fmt: skip


# --- funds ---


@pytest.mark.parametrize(
    ("abn", "usi", "field", "words"),
    [
        ("53004085617", "53004085617001", "abn", "fails the ABN check"),
        (ABN, "5300408561", "usi", "ABN followed by 3 digits"),
        (ABN, "51824753556001", "usi", "begins with the fund's ABN"),
        (ABN, "", "usi", "Give the fund's USI"),
    ],
)
def test_a_fund_needs_a_valid_abn_and_its_usi_is_the_abn_and_three_digits(
    admin: User, abn: str, usi: str, field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        services.fund_create(user=admin, name="A fund", abn=abn, usi=usi)
    assert words in " ".join(raised.value.message_dict[field])
    assert not SuperFund.objects.exists()


def test_a_duplicate_usi_in_the_practice_is_refused_clearly(admin: User, fund: SuperFund, outsider: User) -> None:
    with pytest.raises(ValidationError) as raised:
        services.fund_create(user=admin, name="Again", abn=ABN, usi=f"{ABN} 001")
    assert raised.value.message_dict["usi"] == [
        "The practice already administers a fund with this USI: Harbour Members Super."
    ]
    # Another practice may administer a fund with the same USI.
    assert services.fund_create(user=outsider, name="Theirs", abn=ABN, usi=USI).practice == outsider.practice


@pytest.mark.django_db(databases=[])
def test_the_capability_is_granted_to_admins_and_agents_not_read_only() -> None:
    from portal.capabilities import ROLE_CAPABILITIES

    assert Capability.MANAGE_SUPER_FUNDS.label == "Manage super funds"
    assert [r for r in Role if Capability.MANAGE_SUPER_FUNDS in ROLE_CAPABILITIES[r]] == [
        Role.PRACTICE_ADMIN,
        Role.AGENT,
    ]


# --- who sees and changes what ---


def test_read_only_staff_see_but_cannot_change(fund: SuperFund, reader: User) -> None:
    member = add_member(fund)
    item = add_item(fund, member, Meaning.UNMATCHED)
    assert services.worklist(user=reader).items == [item]
    changes: list[Callable[[], object]] = [
        lambda: services.fund_create(user=reader, name="x", abn=ABN, usi="53004085616002"),
        lambda: services.fund_update(user=reader, fund=fund, name="x"),
        lambda: services.member_import_start(user=reader, fund=fund, filename="m.csv", content=b""),
        lambda: services.member_change(user=reader, member=member, insurance=True),
        lambda: services.member_close(user=reader, member=member, on=date.today()),
        lambda: services.foundation_load_start(user=reader, fund=fund),
        lambda: services.step_record(user=reader, item=item, contact="Member", found="x"),
        lambda: services.item_resolve(user=reader, item=item, resolution="x"),
        lambda: services.member_reveal_tfn(user=reader, member=member),
    ]
    for change in changes:
        with pytest.raises(PermissionDenied):
            change()
    assert AuditEvent.objects.filter(action="superannuation.tfn_reveal_refused").count() == 1
    item.refresh_from_db()
    assert item.state == ItemState.OPEN and not item.steps.exists()


def test_another_practice_and_restricted_staff_see_none_of_it(
    practice: Practice, fund: SuperFund, outsider: User, agent: User
) -> None:
    member = add_member(fund)
    item = add_item(fund, member, Meaning.UNMATCHED)
    agent.restricted_to_groups = True
    agent.save(update_fields=["restricted_to_groups"])
    for user in (outsider, agent):
        assert services.worklist(user=user).items == []
        assert services.worklist_counts(user=user) == {"due_week": 0, "overdue": 0, "open": 0}
        assert not SuperFund.objects.visible_to(user).exists()
        for look in (
            lambda u=user: services.fund_report(user=u, fund=fund),
            lambda u=user: services.members_export_csv(user=u, fund=fund),
            lambda u=user: services.member_change(user=u, member=member, insurance=True),
            lambda u=user: services.tfn_correction_apply(user=u, item=item),
            lambda u=user: services.worklist(user=u, fund=fund),
        ):
            with pytest.raises(Http404):
                look()
    # The fund's client in one of the agent's groups: now the agent sees it.
    client = Client.objects.create(practice=practice, kind="company", organisation_name="Harbour Super Pty Ltd")
    group = ClientGroup.objects.create(practice=practice, name="Super")
    group.clients.add(client)
    group.staff.add(agent)
    services.fund_update(user=User.objects.get(username="alice"), fund=fund, client=client)
    assert services.worklist(user=agent).items == [item]


def test_a_revealed_tfn_is_audited_without_the_tfn(fund: SuperFund, agent: User) -> None:
    member = add_member(fund)
    assert services.member_reveal_tfn(user=agent, member=member) == "123 456 782"
    event = AuditEvent.objects.get(action="superannuation.tfn_revealed")
    assert event.actor == agent and TFN not in json.dumps(event.details) + event.object_repr


# --- the member file ---


@committed
def test_a_file_that_is_not_csv_or_lacks_the_columns_fails_whole_and_loses_nothing(
    admin: User, fund: SuperFund
) -> None:
    existing = add_member(fund)
    for content, words in [
        (b"%PDF-1.4\x00\x01binary", "binary data"),
        (b"name,birthday\nJane,1980-01-01\n", "member_number, family_name, date_of_birth is missing"),
        (b"", "empty"),
    ]:
        job = services.member_import_start(user=admin, fund=fund, filename="members.csv", content=content)
        run_worker_burst()
        job.refresh_from_db()
        assert words in job.failure and job.finished_at is not None and job.content == ""
    assert list(Member.objects.all()) == [existing]


@committed
def test_an_existing_member_is_updated_only_when_the_file_says_so(admin: User, fund: SuperFund) -> None:
    member = add_member(fund)
    base = {"member_number": "M-1", "family_name": "Citizen-Smith", "date_of_birth": "1980-04-01"}
    job = services.member_import_start(user=admin, fund=fund, filename="m.csv", content=member_file([base]))
    run_worker_burst()
    job.refresh_from_db()
    assert (job.added, job.updated) == (0, 0) and "write yes in the update column" in job.errors[0]["messages"][0]
    job = services.member_import_start(
        user=admin, fund=fund, filename="m.csv", content=member_file([{**base, "update": "yes", "insurance": "yes"}])
    )
    run_worker_burst()
    job.refresh_from_db()
    member.refresh_from_db()
    assert (job.added, job.updated, job.errors) == (0, 1, [])
    assert (member.family_name, member.insurance, member.reveal_tfn()) == ("Citizen-Smith", True, TFN)
    # Before the foundation load is built the load reports the account as it is: no event is pending.
    assert not Transaction.objects.exists()


@committed
def test_unknown_codes_and_bad_values_are_named_per_row(admin: User, fund: SuperFund) -> None:
    rows = [
        {"member_number": "A", "family_name": "A", "date_of_birth": "1980-01-01", "phase": "pension-ish"},
        {"member_number": "B", "family_name": "B", "date_of_birth": "31/02/1980"},
        {"member_number": "C", "family_name": "C", "date_of_birth": "1980-01-01", "insurance": "maybe"},
        {"member_number": "D", "family_name": "D", "date_of_birth": "1980-01-01", "state": "XYZ"},
        {"member_number": "E", "family_name": "E", "date_of_birth": "1980-01-01", "phase": "retirement"},
    ]
    job = services.member_import_start(user=admin, fund=fund, filename="m.csv", content=member_file(rows))
    run_worker_burst()
    job.refresh_from_db()
    messages = {e["member_number"]: " ".join(e["messages"]) for e in job.errors}
    assert "phase" in messages["A"] and "accumulation, retirement" in messages["A"]
    assert "YYYY-MM-DD" in messages["B"]
    assert "insurance: write yes or no" in messages["C"]
    assert "state" in messages["D"]
    assert job.added == 1 and Member.objects.get(member_number="E").phase == "retirement"


@committed
def test_a_file_is_written_in_chunks_and_an_interrupted_import_resumes_after_the_last_chunk(
    admin: User, fund: SuperFund, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "CHUNK", 2)
    rows = [{"member_number": f"N-{n}", "family_name": "F", "date_of_birth": "1980-01-01"} for n in range(5)]
    rows.append({"member_number": "N-0", "family_name": "Again", "date_of_birth": "1980-01-01"})
    job = services.member_import_start(user=admin, fund=fund, filename="m.csv", content=member_file(rows))
    # As a worker killed after its first chunk leaves it: two rows written with their progress.
    add_member(fund, "N-0")
    add_member(fund, "N-1")
    MemberImport.objects.filter(pk=job.pk).update(done_rows=2, added=2)
    run_worker_burst()
    job.refresh_from_db()
    assert (job.added, job.done_rows, job.total_rows) == (5, 6, 6)
    assert [(e["row"], e["member_number"]) for e in job.errors] == [(7, "N-0")]
    assert "appears earlier in this file" in job.errors[0]["messages"][0]
    assert sorted(Member.objects.values_list("member_number", flat=True)) == [f"N-{n}" for n in range(5)]


@committed
def test_the_template_imports_as_it_stands(admin: User, fund: SuperFund) -> None:
    job = services.member_import_start(user=admin, fund=fund, filename="t.csv", content=TEMPLATE.encode())
    run_worker_burst()
    job.refresh_from_db()
    assert (job.added, job.errors, job.failure) == (1, [], "")


def test_the_export_masks_every_tfn(admin: User, fund: SuperFund) -> None:
    add_member(fund)
    text = "".join(services.members_export_csv(user=admin, fund=fund))
    assert TFN not in text and "*** *** 782" in text
    assert text.splitlines()[0].startswith("member_number,family_name")
    assert AuditEvent.objects.filter(action="superannuation.members_exported").count() == 1


# --- work items ---


def test_a_step_keeps_its_evidence_sealed(admin: User, fund: SuperFund) -> None:
    item = add_item(fund, add_member(fund), Meaning.UNMATCHED)
    with pytest.raises(ValidationError) as raised:
        services.step_record(user=admin, item=item, contact="", found="")
    assert set(raised.value.message_dict) == {"contact", "found"}
    step = services.step_record(
        user=admin, item=item, contact="Member by phone", found="Name misspelt", evidence_name="call.txt",
        evidence=b"TFN 123456782 confirmed",
    )  # fmt: skip
    assert b"123456782" not in step.evidence.encode() and unseal_bytes(step.evidence) == b"TFN 123456782 confirmed"


def test_an_extension_moves_the_clock_and_an_earlier_date_is_refused(admin: User, fund: SuperFund) -> None:
    item = add_item(fund, add_member(fund), Meaning.PLEASE_RESOLVE)
    due = item.due_on
    with pytest.raises(ValidationError, match="after the current due date"):
        services.extension_record(
            user=admin, item=item, requested_on=date.today(), requested_of="SuperCRT", new_due_on=due - timedelta(1)
        )
    services.extension_record(
        user=admin, item=item, requested_on=date.today(), requested_of="SuperCRT@ato.gov.au",
        new_due_on=due + timedelta(days=14),
    )  # fmt: skip
    item.refresh_from_db()
    assert item.due_on == due + timedelta(days=14) and item.extensions.count() == 1


def test_identity_confirmed_needs_the_note_and_lets_096604_be_resubmitted(admin: User, fund: SuperFund) -> None:
    item = add_item(fund, add_member(fund), Meaning.OTHER_HOLDER)
    with pytest.raises(ValidationError):
        services.transactions_resubmit(user=admin, fund=fund, transactions=[item.transaction])
    with pytest.raises(ValidationError) as raised:
        services.remediation_record(user=admin, item=item, remediation="identity_confirmed", note=" ")
    assert "note" in raised.value.message_dict
    services.remediation_record(
        user=admin, item=item, remediation="identity_confirmed", note="SuperCRT, 1 Dec: the member is the holder"
    )
    report = services.transactions_resubmit(user=admin, fund=fund, transactions=[item.transaction])
    assert report.transactions.get().resubmission_of == item.transaction
    with pytest.raises(ValidationError, match="Only a 096604"):
        services.remediation_record(
            user=admin, item=add_item(fund, item.member, Meaning.UNMATCHED), remediation="identity_confirmed", note="x"
        )


def test_an_item_resolved_twice_is_refused(admin: User, fund: SuperFund) -> None:
    item = add_item(fund, add_member(fund), Meaning.MORE_RECENT)
    services.item_resolve(user=admin, item=item, resolution="The later event was the right one.")
    with pytest.raises(ValidationError, match="already resolved"):
        services.item_resolve(user=admin, item=item, resolution="again")


# --- the worklist and the figures ---


def test_the_worklist_pages_by_days_left_in_a_fixed_number_of_queries(admin: User, fund: SuperFund) -> None:
    member = add_member(fund)
    items = [add_item(fund, member, Meaning.UNMATCHED, aware_days_ago=n % 7) for n in range(12)]
    expected = sorted(items, key=lambda i: (i.due_on, i.pk))
    seen: list[WorkItem] = []
    after = None
    counts = []
    while True:
        with CaptureQueriesContext(connection) as queries:
            page = services.worklist(user=admin, after=after, limit=5)
            [(i.member.display_name, i.fund.name, i.transaction.transaction_id) for i in page.items]
        counts.append(len(queries))
        seen += page.items
        if page.after is None:
            break
        after = page.after
    assert [i.pk for i in seen] == [i.pk for i in expected]
    assert len(set(counts)) == 1, counts
    assert services.worklist(user=admin, after="not-a-cursor", limit=3).items == expected[:3]


def test_the_dashboard_figures_and_the_fund_report(admin: User, fund: SuperFund) -> None:
    member = add_member(fund)
    add_item(fund, member, Meaning.UNMATCHED, aware_days_ago=2)  # due in 28 days
    add_item(fund, member, Meaning.UNMATCHED, aware_days_ago=25)  # due in 5 days
    add_item(fund, member, Meaning.UNMATCHED, aware_days_ago=40)  # overdue
    done = add_item(fund, member, Meaning.CORRECTED, aware_days_ago=10)
    services.item_resolve(user=admin, item=done, resolution="Recorded")
    assert services.worklist_counts(user=admin) == {"due_week": 1, "overdue": 1, "open": 3}
    figures = services.fund_report(user=admin, fund=fund)
    assert figures["open_by_age"] == {"0-7": 1, "8-14": 0, "15-30": 1, "over 30": 1}
    assert figures["responses"][Meaning.UNMATCHED] == 3 and figures["responses"][Meaning.CORRECTED] == 1
    assert (figures["resolved"], figures["resolved_within_30"], figures["resolved_within_30_share"]) == (1, 1, 1.0)
    text = "".join(services.fund_report_csv(user=admin, fund=fund))
    assert "Unmatched during real-time reporting,3" in text and "share within 30 days,100%" in text


def test_reminders_at_seven_days_left_and_escalation_when_overdue_are_sent_once(
    practice: Practice, admin: User, fund: SuperFund, agent: User
) -> None:
    admin.email, agent.email = "alice@example.com", "bob@example.com"
    admin.save(update_fields=["email"])
    agent.save(update_fields=["email"])
    client = Client.objects.create(practice=practice, kind="company", organisation_name="Harbour Super Pty Ltd")
    group = ClientGroup.objects.create(practice=practice, name="Super")
    group.clients.add(client)
    group.staff.add(agent)
    services.fund_update(user=admin, fund=fund, client=client)
    member = add_member(fund)
    soon = add_item(fund, member, Meaning.UNMATCHED, aware_days_ago=23)  # 7 days left
    late = add_item(fund, member, Meaning.PLEASE_RESOLVE, aware_days_ago=31)
    add_item(fund, member, Meaning.UNMATCHED, aware_days_ago=1)  # not yet
    assert services.items_remind_daily() == 2
    sent = {m.to[0]: m for m in mail.outbox}
    assert set(sent) == {"bob@example.com", "alice@example.com"}
    assert "due within a week" in sent["bob@example.com"].subject and str(member) in sent["bob@example.com"].body
    assert "overdue" in sent["alice@example.com"].subject
    soon.refresh_from_db()
    late.refresh_from_db()
    assert soon.reminded_at is not None and late.escalated_at is not None
    assert services.items_remind_daily() == 0
