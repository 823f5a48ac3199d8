from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.management.rotation import check_key_ring, rotate_key_ring
from portal.sealing import CREDENTIAL_KEYS


class Command(BaseCommand):
    help = (
        "Re-encrypt every value sealed under CREDENTIAL_ENCRYPTION_KEYS (machine credentials' private keys) under "
        "the ring's first key. Put the new key first, run this, then remove the old key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")
        parser.add_argument(
            "--check", action="store_true", help="rewrite nothing; fail if any value still needs an older key"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            check_key_ring(self, CREDENTIAL_KEYS)
            return
        rotate_key_ring(self, CREDENTIAL_KEYS, batch_size=options["batch_size"], audit_action="credential.key_rotated")
