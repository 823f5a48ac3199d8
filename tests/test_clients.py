"""The client register: identifiers checked, TFNs encrypted/masked/audited, search and keyset pagination."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from clients.models import AccountRole, Client, ClientAccount
from clients.tfn import decrypt_tfn
from portal.models import AuditEvent
from tests.conftest import add_clients

pytestmark = pytest.mark.django_db

VALID = {
    "kind": "individual",
    "family_name": "Citizen",
    "given_names": "Jane",
    "date_of_birth": "01/02/1980",
    "tfn": "123 456 782",
    "abn": "",
    "wpn": "",
    "organisation_name": "",
}


def test_add_client_stores_tfn_encrypted_and_shows_it_masked(agent, login):
    http = login(agent)
    response = http.post(reverse("clients:add"), VALID)
    client = Client.objects.get(family_name="Citizen")
    assert response["Location"] == reverse("clients:detail", args=[client.pk])
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM clients_client WHERE id = %s", [client.pk])
        raw_row = " ".join(str(v) for v in cur.fetchone())
    assert "123456782" not in raw_row
    assert decrypt_tfn(client.tfn_ciphertext) == "123456782"
    page = http.get(reverse("clients:detail", args=[client.pk])).content.decode()
    assert "*** *** 782" in page and "123456782" not in page and "123 456 782" not in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tfn", "123456789", "fails the TFN check"),
        ("tfn", "12345", "8 or 9 digits"),
        ("abn", "53004085617", "fails the ABN check"),
        ("abn", "5300408561", "11 digits"),
        ("wpn", "123", "11 digits"),
        ("date_of_birth", "31/31/1980", "YYYY-MM-DD or DD/MM/YYYY"),
    ],
)
def test_bad_identifiers_are_explained_beside_the_field_and_nothing_is_saved(agent, login, field, value, message):
    response = login(agent).post(reverse("clients:add"), {**VALID, field: value})
    assert response.status_code == 200
    assert any(message in e for e in response.context["form"].errors[field])
    assert not Client.objects.exists()


def test_duplicate_tfn_is_refused(agent, login):
    http = login(agent)
    http.post(reverse("clients:add"), VALID)
    again = http.post(reverse("clients:add"), {**VALID, "family_name": "Other"})
    assert "already in the register" in again.context["form"].errors["tfn"][0]
    assert Client.objects.count() == 1


def test_reveal_is_audited_and_needs_the_capability(agent, reader, login):
    login(agent).post(reverse("clients:add"), VALID)
    client = Client.objects.get()
    reader_response = login(reader).post(reverse("clients:reveal_tfn", args=[client.pk]))
    assert reader_response.status_code == 403
    assert AuditEvent.objects.filter(action="client.tfn_reveal_refused", actor=reader).exists()
    response = login(agent).post(reverse("clients:reveal_tfn", args=[client.pk]))
    assert "123 456 782" in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")
    event = AuditEvent.objects.get(action="client.tfn_revealed")
    assert event.actor == agent and event.object_id == str(client.pk)
    assert login(agent).get(reverse("clients:reveal_tfn", args=[client.pk])).status_code == 405


def test_search_by_name_tfn_and_abn(practice, agent, login):
    clients = add_clients(practice, 40)
    target = clients[7]
    http = login(agent)
    by_tfn = http.post(reverse("clients:list"), {"q": target.reveal_tfn()})  # the search form posts
    assert [c.pk for c in by_tfn.context["clients"]] == [target.pk]
    assert by_tfn.context["tfn_search"] == target.masked_tfn
    by_abn = http.get(reverse("clients:list"), {"q": target.abn})
    assert [c.pk for c in by_abn.context["clients"]] == [target.pk]
    fragment = target.display_name.split(",")[0][:5].lower()
    by_name = http.get(reverse("clients:list"), {"q": fragment})
    names = [c.display_name.lower() for c in by_name.context["clients"]]
    assert target.display_name.lower() in names and all(fragment in n for n in names)
    nothing = http.get(reverse("clients:list"), {"q": "123456789"})  # fails the TFN check: matches nothing
    assert list(nothing.context["clients"]) == []
    assert "No client matches" in nothing.content.decode()


@override_settings(CLIENT_LIST_PAGE_SIZE=7)
def test_keyset_pages_cover_every_client_once_in_order(practice, agent, login):
    add_clients(practice, 30)
    http = login(agent)
    seen: list[Client] = []
    params: dict[str, str] = {}
    for _ in range(10):
        response = http.get(reverse("clients:list"), params)
        seen += response.context["clients"]
        if not response.context["next_cursor"]:
            break
        params = {"after": response.context["next_cursor"]}
    assert len(seen) == 30 and len({c.pk for c in seen}) == 30
    assert [(c.sort_name, c.pk) for c in seen] == sorted((c.sort_name, c.pk) for c in seen)


def test_a_garbled_cursor_is_ignored_not_an_error(practice, agent, login):
    add_clients(practice, 3)
    assert login(agent).get(reverse("clients:list"), {"after": "%%%not-base64"}).status_code == 200


def test_activity_statement_account_with_roles(practice, agent, login):
    client = add_clients(practice, 1)[0]
    http = login(agent)
    http.post(
        reverse("clients:account_add", args=[client.pk]),
        {"kind": "activity_statement", "branch": "002", "roles": ["GST", "PAYGW"]},
    )
    account = ClientAccount.objects.get(client=client)
    assert str(account) == f"Activity statement {client.abn} 002"
    assert set(AccountRole.objects.filter(account=account).values_list("role", flat=True)) == {"GST", "PAYGW"}
    http.post(reverse("clients:account_roles", args=[client.pk, account.pk]), {"roles": ["FTC"]})
    assert list(account.roles.values_list("role", flat=True)) == ["FTC"]
    bad = http.post(reverse("clients:account_add", args=[client.pk]), {"kind": "income_tax", "roles": ["GST"]})
    assert bad.status_code == 400 and "activity statement accounts only" in bad.content.decode()


def test_key_rotation_reencrypts_under_the_new_key(practice, settings):
    clients = add_clients(practice, 5)
    tfns = {c.pk: c.reveal_tfn() for c in clients}
    old_key = settings.TFN_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.TFN_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_tfn_key")
    settings.TFN_ENCRYPTION_KEYS = [new_key]  # the old key is retired
    for client in Client.objects.filter(practice=practice):
        assert client.reveal_tfn() == tfns[client.pk]


def test_export_masks_tfns_and_is_audited(practice, agent, login):
    clients = add_clients(practice, 5)
    response = login(agent).get(reverse("clients:export"))
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].startswith("kind,family_name")
    assert len(body.strip().splitlines()) == 6
    for client in clients:
        assert client.reveal_tfn() not in body and client.masked_tfn in body
    assert AuditEvent.objects.filter(action="clients.exported", actor=agent).exists()


def test_export_cannot_carry_a_spreadsheet_formula(practice, agent, login):
    client = add_clients(practice, 1)[0]
    Client.objects.filter(pk=client.pk).update(organisation_name="=HYPERLINK(1)", family_name="@SUM(A1)")
    body = b"".join(login(agent).get(reverse("clients:export")).streaming_content).decode()
    assert "'=HYPERLINK(1)" in body or "'@SUM(A1)" in body
    assert ",=HYPERLINK" not in body and ",@SUM" not in body


def test_empty_register_says_what_to_do(agent, login):
    page = login(agent).get(reverse("clients:list")).content.decode()
    assert "No clients yet" in page and reverse("clients:import_upload") in page


def test_buttons_follow_capabilities(practice, agent, reader, login):
    client = add_clients(practice, 1)[0]
    url = reverse("clients:detail", args=[client.pk])
    agent_page = login(agent).get(url).content.decode()
    reader_page = login(reader).get(url).content.decode()
    assert "Reveal" in agent_page and ">Edit<" in agent_page and "Add an account" in agent_page
    assert "Reveal" not in reader_page and ">Edit<" not in reader_page and "Add an account" not in reader_page
    assert "Add client" in login(agent).get(reverse("clients:list")).content.decode()
    assert "Add client" not in login(reader).get(reverse("clients:list")).content.decode()


def test_the_hand_rendered_list_escapes_everything(practice, agent, login):
    """The client list's rows and group options are written out in Python for speed: markup in a name or a group
    must arrive as text."""
    from clients.models import ClientGroup

    client = add_clients(practice, 1)[0]
    Client.objects.filter(pk=client.pk).update(display_name='<script>alert("x")</script>', sort_name="a")
    group = ClientGroup.objects.create(practice=practice, name='"><img src=x onerror=alert(1)>')
    group.clients.add(client)
    page = login(agent).get(reverse("clients:list")).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
