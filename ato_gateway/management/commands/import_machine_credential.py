from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.models import Practice


class Command(BaseCommand):
    help = (
        "Import an ATO machine credential (keystore.xml or PKCS#12) for a practice. The password is read from "
        "a prompt or from --password-file, never from the command line, where it would sit in shell history "
        "and the process list."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--practice", type=int, required=True, help="The practice's id.")
        parser.add_argument("--password-file", type=Path, help="A file whose first line is the password.")

    def handle(self, *args: Any, file: Path, practice: int, password_file: Path | None, **options: Any) -> None:
        from ato_gateway.services import CredentialProblem, credential_import

        owner = Practice.objects.filter(pk=practice).first()
        if owner is None:
            raise CommandError(f"There is no practice with id {practice}.")
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file} cannot be read: {exc.strerror}.") from exc
        if password_file is not None:
            try:
                password = password_file.read_text().splitlines()[0]
            except (OSError, IndexError) as exc:
                raise CommandError(f"{password_file} cannot be read or is empty.") from exc
        elif sys.stdin.isatty():
            password = getpass.getpass(f"Password for {file.name}: ")
        else:
            raise CommandError("No terminal to ask for the password: use --password-file.")
        try:
            imported = credential_import(practice=owner, data=data, filename=file.name, password=password, actor=None)
        except CredentialProblem as exc:
            raise CommandError(str(exc)) from exc
        for c in imported:
            state = "EXPIRED" if c.is_expired else ("selected" if c.is_selected else "valid")
            self.stdout.write(
                f"{c.legal_name}  ABN {c.abn}  serial {c.serial_number}  "
                f"{c.not_before:%Y-%m-%d} to {c.not_after:%Y-%m-%d}  {state}"
            )
