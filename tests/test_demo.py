"""The demo data `make run` sets up: the stand-in ATO's register generated with the demo agent, its clients
exported in the import format, and the demo practice seeded from them, so the two registers start out agreeing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from clients.models import Client
from portal.models import Practice, User

pytestmark = pytest.mark.django_db


def test_demo_practice_starts_with_the_agents_clients_at_the_stand_in_ato(tmp_path: Path, settings) -> None:
    settings.DEBUG = True  # seed_demo refuses to create known passwords otherwise
    data_dir, csv_path = tmp_path / "sandbox", tmp_path / "clients.csv"
    data_dir.mkdir()
    call_command(
        "ato_sandbox_register", "--data-dir", str(data_dir), "--taxpayers", "600", "--agent",
        "12345678:53004085616:TAX:40:Demo Practice",
    )  # fmt: skip
    call_command(
        "ato_sandbox_export_clients", "--data-dir", str(data_dir), "--tan", "12345678", "--unlinked", "10",
        "--out", str(csv_path),
    )  # fmt: skip
    call_command("seed_demo", "--clients-csv", str(csv_path))
    practice = Practice.objects.get(name="Demo Practice")
    clients = Client.objects.filter(practice=practice)
    assert 45 <= clients.count() <= 50  # 40 linked (a few may have died in the register) and 10 others
    assert clients.exclude(tfn_hash="").count() == clients.count()
    assert set(User.objects.filter(practice=practice).values_list("username", flat=True)) == {
        "admin",
        "agent",
        "readonly",
    }
    call_command("seed_demo", "--clients-csv", str(csv_path))  # a second start adds nothing
    assert Client.objects.filter(practice=practice).count() == clients.count()
