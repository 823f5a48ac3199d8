from __future__ import annotations

import csv
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from clients.csv_io import validate_row
from clients.models import AccountKind, AccountRole, Client, ClientAccount, ClientGroup
from clients.services import _client_from_row
from clients.testdata import make_client_rows
from portal.capabilities import Role
from portal.models import Practice, User
from portal.services import mfa_replace_backup_codes, practice_create

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - demo data, refused unless DEBUG
DEMO_STAFF = [
    ("admin", "Alex", "Admin", Role.PRACTICE_ADMIN),
    ("agent", "Sam", "Agent", Role.AGENT),
    ("readonly", "Robin", "Reader", Role.READ_ONLY),
]


class Command(BaseCommand):
    help = "Create the demo practice, one staff member per role, and 200 clients (development only)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--clients", type=int, default=200)
        parser.add_argument(
            "--clients-csv",
            default="",
            help="take the clients from this client-import CSV (for example the stand-in ATO's own clients of the "
            "demo agent) instead of generating them",
        )
        parser.add_argument("--force", action="store_true", help="Allow when DEBUG is off (never in production).")

    def handle(self, *args: Any, clients: int, clients_csv: str, force: bool, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates known passwords; it runs only with DJANGO_DEBUG=1 (or --force).")
        practice = Practice.objects.filter(name="Demo Practice").first()
        if practice is None:
            practice = practice_create(
                name="Demo Practice",
                abn="53004085616",
                agent_number="12345678",
                contact_email="office@demo-practice.example",
            )
        for username, first, last, role in DEMO_STAFF:
            user = User.objects.in_practice(practice).filter(username=username).first()
            if user is None:
                user = User.objects.create_user(
                    username=username,
                    password=DEMO_PASSWORD,
                    first_name=first,
                    last_name=last,
                    email=f"{username}@demo-practice.example",
                    practice=practice,
                    role=role,
                )
                TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
                mfa_replace_backup_codes(user=user)
        if not Client.objects.filter(practice=practice).exists():
            self._clients(practice, clients, clients_csv)
        self.stdout.write(
            self.style.SUCCESS(f"Demo Practice ready: {Client.objects.filter(practice=practice).count()} clients.")
        )

    @transaction.atomic
    def _clients(self, practice: Practice, count: int, csv_path: str) -> None:
        groups = [ClientGroup.objects.create(practice=practice, name=n) for n in ("Sydney office", "Payroll clients")]
        built = []
        raws = make_client_rows(count, seed=2026)
        if csv_path:
            with open(csv_path, newline="", encoding="utf-8") as handle:
                raws = list(csv.DictReader(handle))
        for i, raw in enumerate(raws):
            row, errors = validate_row(i + 2, raw)
            assert row is not None, errors
            built.append(_client_from_row(practice, row, None))
        Client.objects.bulk_create(built)
        for i, client in enumerate(built):
            if i % 3:  # two clients in three belong to a group
                groups[i % 2].clients.add(client)
            ClientAccount.objects.create(client=client, kind=AccountKind.INCOME_TAX)
            if not client.is_individual and i % 2 == 0:
                account = ClientAccount.objects.create(client=client, kind=AccountKind.ACTIVITY_STATEMENT, branch="001")
                AccountRole.objects.bulk_create([AccountRole(account=account, role=r) for r in ("GST", "PAYGW")])
