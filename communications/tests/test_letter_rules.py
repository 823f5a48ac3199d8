"""A letter's due date and its owner, decided without the stand-in ATO: the date the letter's text says to act by
(else the rule for its kind), and the member of staff who looks after its client (else the admins). A wrong due
date or owner is a deadline missed with nobody told."""

from __future__ import annotations

from datetime import date

import pytest

from clients.models import ClientGroup
from communications import services
from communications.models import Letter
from portal.capabilities import Role
from portal.models import Practice
from tests.conftest import add_clients, make_user


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("Due date: 21 December 2026", date(2026, 12, 21)),
        ("Amount payable. DUE DATE 3 March 2027.", date(2027, 3, 3)),
        ("Please pay by 21/12/2026 to avoid interest", date(2026, 12, 21)),
        ("payable by 1/2/2027", date(2027, 2, 1)),  # day first, as the ATO writes it
        ("You must respond by\n  14 July\n 2026.", date(2026, 7, 14)),  # folded over lines in the PDF's text
        ("lodge by 30 June 2026", date(2026, 6, 30)),
        ("reply by 2 May 2026", date(2026, 5, 2)),
        ("due on 5 May 2026", date(2026, 5, 5)),
        ("due by 6 May 2026", date(2026, 5, 6)),
        ("Pay in full by the date: 7 May 2026", date(2026, 5, 7)),
        ("Issued 1 March 2026. Due date: 9 April 2026. Reminder: pay by 1 May 2026", date(2026, 4, 9)),
    ],
)
def test_the_date_a_letter_says_to_act_by(text: str, due: date) -> None:
    assert services.due_in_text(text) == due


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Issued 21 December 2026",  # a date, but not one to act by
        "Due date: 31 February 2026",  # no such day
        "pay by 31/02/2026",
        "Due date: 21 Decembre 2026",
        "Due date: soon",
    ],
)
def test_a_letter_that_states_no_date_to_act_by_has_none(text: str) -> None:
    assert services.due_in_text(text) is None


def test_without_a_date_in_the_letter_its_kind_sets_the_due_date() -> None:
    issued = date(2026, 3, 1)
    assert services.due_by_rule("NOA", issued) == date(2026, 3, 22)
    assert services.due_by_rule("DEBT", issued) == date(2026, 3, 15)
    assert services.due_by_rule("ASR", issued) == date(2026, 3, 29)
    assert services.due_by_rule("SOMETHING-NEW", issued) == date(2026, 3, 29)  # the default: 28 days


# --- owners ---


def letter(practice: Practice, ato_id: str, client_id: int | None, **fields: object) -> Letter:
    return Letter.objects.create(
        practice=practice,
        ato_id=ato_id,
        name="CITIZEN, Jo",
        client_id=client_id,
        kind="NOA",
        title="Notice",
        issued=date(2026, 3, 1),
        **fields,
    )


@pytest.mark.django_db
def test_a_letter_goes_to_whoever_looks_after_its_client(practice: Practice) -> None:
    """The first active member of staff (not read-only) of the client's groups, in the order staff were added; a
    letter with no such person, or no client, stays the admins' (owner None); a letter already owned keeps its
    owner."""
    reader = make_user(practice, "reader2", Role.READ_ONLY)  # added first, but may not own a letter
    first = make_user(practice, "first", Role.AGENT)
    second = make_user(practice, "second", Role.AGENT)
    leaver = make_user(practice, "leaver", Role.AGENT)
    leaver.is_active = False
    leaver.save()
    lonely, shared, kept, inactive_only = add_clients(practice, 4)
    for name, clients, staff in (
        ("A", [shared, kept], [reader, second]),
        ("B", [shared], [first]),
        ("C", [inactive_only], [leaver, reader]),
        ("D", [], [first]),
    ):
        group = ClientGroup.objects.create(practice=practice, name=name)
        group.clients.set(clients)
        group.staff.set(staff)
    letters = [
        letter(practice, "1", shared.pk),
        letter(practice, "2", kept.pk, owner=first),
        letter(practice, "3", lonely.pk),
        letter(practice, "4", None),
        letter(practice, "5", inactive_only.pk),
        letter(practice, "6", kept.pk),
    ]
    assert services._looked_after_by([]) == {}
    assert services._looked_after_by([shared.pk, kept.pk, lonely.pk, inactive_only.pk]) == {
        shared.pk: first.pk,  # in groups A and B: the first of both groups' keepers
        kept.pk: second.pk,
    }
    services._assign_owners(practice, letters)
    owners = dict(Letter.objects.filter(practice=practice).values_list("ato_id", "owner_id"))
    assert owners == {"1": first.pk, "2": first.pk, "3": None, "4": None, "5": None, "6": second.pk}


@pytest.mark.django_db
def test_owners_are_given_only_within_the_letters_practice(practice: Practice, other_practice: Practice) -> None:
    keeper = make_user(practice, "keeper", Role.AGENT)
    [client] = add_clients(practice, 1)
    group = ClientGroup.objects.create(practice=practice, name="A")
    group.clients.set([client])
    group.staff.set([keeper])
    ours = letter(practice, "1", client.pk)
    services._assign_owners(other_practice, [ours])  # the wrong practice named: nothing of ours changes
    ours.refresh_from_db()
    assert ours.owner_id is None
    services._assign_owners(practice, [ours])
    ours.refresh_from_db()
    assert ours.owner_id == keeper.pk


@pytest.mark.django_db
def test_a_letter_given_an_owner_meanwhile_keeps_that_owner(practice: Practice) -> None:
    """The letters in hand may be stale: one that someone assigned since it was read is not taken from them."""
    keeper = make_user(practice, "keeper", Role.AGENT)
    chosen = make_user(practice, "chosen", Role.AGENT)
    [client] = add_clients(practice, 1)
    group = ClientGroup.objects.create(practice=practice, name="A")
    group.clients.set([client])
    group.staff.set([keeper])
    stale = letter(practice, "1", client.pk)
    Letter.objects.filter(pk=stale.pk).update(owner=chosen)
    services._assign_owners(practice, [stale])
    assert Letter.objects.get(pk=stale.pk).owner_id == chosen.pk
