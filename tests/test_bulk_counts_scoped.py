"""A bulk change's progress page tells a member of staff restricted to client groups only of their groups' clients:
the rows and every count beside them (changed, refused, could not be completed, the "Try again for N clients"
button), not how many clients of other groups the change holds. Rows are made by hand: no ATO is asked."""

from __future__ import annotations

from typing import Any

from clients.models import Client, ClientGroup
from communications.models import PreferenceBulk, PreferenceChange, PreferenceChangeStatus
from demographics.models import AddressBulk, AddressChange, AddressChangeStatus
from portal.capabilities import Role
from portal.models import Practice, User
from tests.conftest import add_clients, make_user

ACCEPTED, REFUSED, FAILED = "accepted", "refused", "failed"
# Theirs: 1 accepted, 2 failed. Others': 3 accepted, 4 refused, 5 failed.
THEIRS = [ACCEPTED] + [FAILED] * 2
OTHERS = [ACCEPTED] * 3 + [REFUSED] * 4 + [FAILED] * 5


def _split(practice: Practice, restricted: User) -> tuple[list[Client], list[Client]]:
    clients = add_clients(practice, len(THEIRS) + len(OTHERS))
    theirs = ClientGroup.objects.create(practice=practice, name="Payroll")
    theirs.clients.add(*clients[: len(THEIRS)])
    theirs.staff.add(restricted)
    ClientGroup.objects.create(practice=practice, name="Trusts").clients.add(*clients[len(THEIRS) :])
    return clients[: len(THEIRS)], clients[len(THEIRS) :]


def _restricted(practice: Practice) -> User:
    user = make_user(practice, "rory", Role.AGENT)
    user.restricted_to_groups = True
    user.save(update_fields=["restricted_to_groups"])
    return user


def test_a_restricted_member_counts_only_their_groups_clients_of_a_preference_change(
    practice: Practice, admin: User, login: Any
) -> None:
    restricted = _restricted(practice)
    theirs, others = _split(practice, restricted)
    bulk = PreferenceBulk.objects.create(practice=practice, created_by=admin, channel="ELS")
    for client, status in [*zip(theirs, THEIRS, strict=True), *zip(others, OTHERS, strict=True)]:
        PreferenceChange.objects.create(practice=practice, bulk=bulk, client=client, status=status)
    PreferenceChange.objects.create(practice=practice, bulk=bulk, client=None, status=PreferenceChangeStatus.ACCEPTED)

    assert bulk.counts(restricted) == {**dict.fromkeys(PreferenceChangeStatus.values, 0), ACCEPTED: 2, FAILED: 2}
    assert bulk.counts(admin)[FAILED] == 7 and bulk.counts()[REFUSED] == 4
    page = login(restricted).get(f"/communications/preferences/bulk/{bulk.pk}/").content.decode()
    assert "2 changed · 0 refused · 2 could not be completed" in page
    assert "Try again for 2 clients" in page and "of 4 clients done" in page
    for client in others:
        assert client.display_name not in page
    page = login(admin).get(f"/communications/preferences/bulk/{bulk.pk}/").content.decode()
    assert "5 changed · 4 refused · 7 could not be completed" in page and "Try again for 7 clients" in page


def test_a_restricted_member_counts_only_their_groups_clients_of_an_address_change(
    practice: Practice, admin: User, login: Any
) -> None:
    restricted = _restricted(practice)
    theirs, others = _split(practice, restricted)
    address = {"line1": "1 Harbour St", "locality": "SYDNEY", "state": "NSW", "postcode": "2000"}
    bulk = AddressBulk.objects.create(practice=practice, created_by=admin, **address)
    for client, status in [*zip(theirs, THEIRS, strict=True), *zip(others, OTHERS, strict=True)]:
        AddressChange.objects.create(
            practice=practice, bulk=bulk, client=client, created_by=admin, status=status, **address
        )

    assert bulk.counts(restricted) == {**dict.fromkeys(AddressChangeStatus.values, 0), ACCEPTED: 1, FAILED: 2}
    page = login(restricted).get(f"/demographics/address-changes/bulk/{bulk.pk}/").content.decode()
    assert "3 of 3 clients done" in page and "1 changed · 0 refused · 2 could not be completed" in page
    assert "of 15 clients" not in page
    for client in others:
        assert client.display_name not in page
