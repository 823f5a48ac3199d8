"""The one scoping rule of each kind of row, asked directly (`visible_to`): the practice's rows, narrowed for staff
restricted to client groups to the clients of THEIR groups (not of any group), and nothing for another practice or
for an account of no practice. The walks in test_tenancy.py and test_restricted_staff.py go through pages, where a
rule that leaks only in one direction (a colleague's group, an unrestricted member's view) can hide behind what a
page happens to list; these pin each rule with rows of every kind on both sides of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.utils import timezone

from clients.models import Client, ClientGroup, ImportJob
from communications.models import Letter
from demographics.models import BankChange
from portal.capabilities import Role
from portal.models import Practice, User
from relationships.models import AtoRequest, BulkJob, BulkRow
from superannuation.models import Member, SuperFund, Transaction, WorkItem
from tests.conftest import add_clients, make_user

pytestmark = pytest.mark.django_db


@dataclass
class World:
    admin: User
    restricted: User
    colleague: User  # restricted too, to the other group
    outsider: User
    nobody: User  # an account of no practice
    mine: Client  # in the restricted member's group
    theirs: Client  # in the colleague's group only
    loose: Client  # in no group
    elsewhere: Client  # another practice's
    groups: dict[str, ClientGroup]


@pytest.fixture
def world(practice: Practice, other_practice: Practice) -> World:
    mine, theirs, loose = add_clients(practice, 3)
    (elsewhere,) = add_clients(other_practice, 1, seed=11)
    admin = make_user(practice, "alice", Role.PRACTICE_ADMIN)
    restricted = make_user(practice, "rhea", Role.AGENT)
    colleague = make_user(practice, "colin", Role.AGENT)
    User.objects.filter(pk__in=[restricted.pk, colleague.pk]).update(restricted_to_groups=True)
    restricted.refresh_from_db()
    colleague.refresh_from_db()
    payroll = ClientGroup.objects.create(practice=practice, name="Payroll")
    audit = ClientGroup.objects.create(practice=practice, name="Audit")
    far = ClientGroup.objects.create(practice=other_practice, name="Payroll")
    payroll.clients.add(mine)
    payroll.staff.add(restricted)
    audit.clients.add(theirs)
    audit.staff.add(colleague)
    far.clients.add(elsewhere)
    outsider = make_user(other_practice, "oscar", Role.PRACTICE_ADMIN)
    nobody = User.objects.create_user(username="nobody", password="x" * 20, role=Role.AGENT)
    groups = {"payroll": payroll, "audit": audit, "far": far}
    return World(admin, restricted, colleague, outsider, nobody, mine, theirs, loose, elsewhere, groups)


def test_clients_the_practices_narrowed_to_the_members_own_groups(world: World):
    seen = lambda user: set(Client.objects.visible_to(user))  # noqa: E731
    assert seen(world.admin) == {world.mine, world.theirs, world.loose}
    assert seen(world.restricted) == {world.mine}
    assert seen(world.colleague) == {world.theirs}
    assert seen(world.outsider) == {world.elsewhere}
    assert seen(world.nobody) == set()


def test_groups_the_practices_and_for_restricted_staff_only_their_own(world: World):
    g = world.groups
    seen = lambda user: set(ClientGroup.objects.visible_to(user))  # noqa: E731
    assert seen(world.admin) == {g["payroll"], g["audit"]}
    assert seen(world.restricted) == {g["payroll"]}
    assert seen(world.outsider) == {g["far"]}
    assert seen(world.nobody) == set()
    # The client list's filter: the same rule in one statement, in name order.
    assert ClientGroup.objects.choices_for(world.admin) == [(g["audit"].pk, "Audit"), (g["payroll"].pk, "Payroll")]
    assert ClientGroup.objects.choices_for(world.restricted) == [(g["payroll"].pk, "Payroll")]
    assert ClientGroup.objects.choices_for(world.colleague) == [(g["audit"].pk, "Audit")]
    assert ClientGroup.objects.choices_for(world.outsider) == [(g["far"].pk, "Payroll")]
    assert ClientGroup.objects.choices_for(world.nobody) == []


def test_imports_restricted_staff_see_only_their_own_uploads(world: World, practice: Practice):
    own = ImportJob.objects.create(practice=practice, created_by=world.restricted, filename="mine.csv")
    other = ImportJob.objects.create(practice=practice, created_by=world.admin, filename="admins.csv")
    far = ImportJob.objects.create(practice=world.elsewhere.practice, created_by=world.outsider, filename="far.csv")
    seen = lambda user: set(ImportJob.objects.visible_to(user))  # noqa: E731
    assert seen(world.admin) == {own, other}
    assert seen(world.restricted) == {own}
    assert seen(world.outsider) == {far}
    assert seen(world.nobody) == set()


def test_letters_of_the_members_groups_clients_and_unmatched_ones_only_for_unrestricted_staff(
    world: World, practice: Practice
):
    def letter(client: Client | None, n: int, of: Practice = practice) -> Letter:
        return Letter.objects.create(
            practice=of, ato_id=f"C{n}", client=client, kind="NOA", title="t", issued=date.today()
        )

    mine, theirs, loose, unmatched = (letter(c, n) for n, c in enumerate([world.mine, world.theirs, world.loose, None]))
    far = letter(world.elsewhere, 9, world.elsewhere.practice)
    seen = lambda user: set(Letter.objects.visible_to(user))  # noqa: E731
    assert seen(world.admin) == {mine, theirs, loose, unmatched}
    assert seen(world.restricted) == {mine}
    assert seen(world.colleague) == {theirs}
    assert seen(world.outsider) == {far}
    assert seen(world.nobody) == set()


def test_bank_changes_follow_their_clients(world: World, practice: Practice):
    def change(client: Client) -> BankChange:
        now = timezone.now()
        return BankChange.objects.create(
            practice=client.practice,
            client=client,
            bsb="062000",
            number="12345678",
            account_name="x",
            proposed_by=world.admin if client.practice_id == practice.pk else world.outsider,
            proposed_at=now,
            expires_at=now + timedelta(days=7),
        )

    mine, theirs, far = change(world.mine), change(world.theirs), change(world.elsewhere)
    seen = lambda user: set(BankChange.objects.visible_to(user))  # noqa: E731
    assert seen(world.admin) == {mine, theirs}
    assert seen(world.restricted) == {mine}
    assert seen(world.outsider) == {far}


def test_ato_requests_of_one_client_pages_about_the_groups_clients_or_the_members_own(world: World, practice: Practice):
    def request(client: Client | None, by: User, *, of: Practice = practice, bulk: BulkRow | None = None) -> AtoRequest:
        return AtoRequest.objects.create(
            practice=of,
            client=client,
            created_by=by,
            kind="validate",
            identifier_kind="TFN",
            identifier_sealed="x",
            identifier_last3="123",
            bulk_row=bulk,
        )

    job = BulkJob.objects.create(practice=practice, created_by=world.admin, filename="links.csv")
    row = BulkRow.objects.create(job=job, row_number=1, label="A bulk row")
    mine = request(world.mine, world.admin)
    theirs = request(world.theirs, world.admin)
    own_search = request(None, world.restricted)  # someone the register does not hold yet, searched by rhea
    colleagues_search = request(None, world.admin)
    bulk = request(world.mine, world.admin, bulk=row)  # reached through its bulk link only
    far = request(world.elsewhere, world.outsider, of=world.elsewhere.practice)
    seen = lambda user: set(AtoRequest.objects.visible_to(user))  # noqa: E731
    assert seen(world.admin) == {mine, theirs, own_search, colleagues_search}
    assert bulk not in seen(world.admin)
    assert seen(world.restricted) == {mine, own_search}
    assert seen(world.outsider) == {far}
    assert seen(world.nobody) == set()


def test_funds_members_events_and_work_items_follow_the_funds_register_client(world: World, practice: Practice):
    def fund(client: Client | None, n: int, of: Practice = practice) -> tuple[SuperFund, Member, Transaction, WorkItem]:
        f = SuperFund.objects.create(
            practice=of, client=client, name=f"Fund {n}", abn="53004085616", usi=f"5300408561600{n}"
        )
        m = Member.objects.create(
            fund=f,
            member_number="M1",
            family_name="Citizen",
            date_of_birth=date(1980, 1, 1),
            opened_on=date(2020, 1, 1),
        )
        t = Transaction.objects.create(
            member=m, transaction_id=f"T{f.pk}", event="new", event_on=date(2026, 1, 1), tfn_given=True
        )
        w = WorkItem.objects.create(
            fund=f, member=m, transaction=t, meaning="unmatched", aware_at=timezone.now(), due_on=date(2026, 2, 1)
        )
        return f, m, t, w

    mine, theirs, lone = fund(world.mine, 1), fund(world.theirs, 2), fund(None, 3)
    far = fund(world.elsewhere, 4, world.elsewhere.practice)
    managers = [SuperFund.objects, Member.objects, Transaction.objects, WorkItem.objects]
    for position, manager in enumerate(managers):
        seen = lambda user: set(manager.visible_to(user))  # type: ignore[attr-defined]  # noqa: B023, E731
        assert seen(world.admin) == {mine[position], theirs[position], lone[position]}, manager
        assert seen(world.restricted) == {mine[position]}, manager
        assert seen(world.outsider) == {far[position]}, manager
        assert seen(world.nobody) == set(), manager
