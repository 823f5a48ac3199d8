from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from clients.models import Client
from clients.tfn import rotate_ciphertext
from portal.audit import audit_record


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored TFN under the first key of TFN_ENCRYPTION_KEYS. Put the new key first, run "
        "this, then remove the old key from the list."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = 0
        ids = list(Client.objects.exclude(tfn_ciphertext="").values_list("pk", flat=True))
        for start in range(0, len(ids), 1000):
            with transaction.atomic():
                batch = list(Client.objects.select_for_update().filter(pk__in=ids[start : start + 1000]))
                for client in batch:
                    client.tfn_ciphertext = rotate_ciphertext(client.tfn_ciphertext)
                Client.objects.bulk_update(batch, ["tfn_ciphertext"])
                done += len(batch)
        with transaction.atomic():
            audit_record("tfn.key_rotated", details={"clients": done})
        self.stdout.write(self.style.SUCCESS(f"{done} TFNs re-encrypted under the current key."))
