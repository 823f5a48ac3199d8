"""What the key rotation commands share: rotate one key ring, report per model, and audit it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.audit import audit_record
from portal.sealing import SealedValueUnreadable, sealed_not_under_first_key, sealed_rotate


def check_key_ring(command: BaseCommand, keyring: str) -> None:
    """Before dropping the older keys: fail, with the count per model, if any value still needs one of them."""
    left = sealed_not_under_first_key(keyring)
    for label, count in left.items():
        command.stdout.write(f"{label}: {count} value{'s' if count != 1 else ''} not under the first key")
    if any(left.values()):
        raise CommandError(f"Some values still need an older key of {keyring}: rotate again before dropping it.")
    command.stdout.write(command.style.SUCCESS(f"Every value opens with the first key of {keyring} alone."))


def rotate_key_ring(command: BaseCommand, keyring: str, *, batch_size: int, audit_action: str) -> dict[str, int]:
    if batch_size < 1:
        raise CommandError("--batch-size must be at least 1.")
    try:
        done = sealed_rotate(keyring, batch_size=batch_size)
    except SealedValueUnreadable as problem:
        # Batches before it are committed under the new key; nothing of the unreadable value is shown.
        raise CommandError(f"{problem}. Nothing after it was rotated; fix it and run the command again.") from None
    with transaction.atomic():
        audit_record(audit_action, details={"keyring": keyring, "rows": done})
    for label, count in done.items():
        command.stdout.write(f"{label}: {count} row{'s' if count != 1 else ''} re-encrypted")
    command.stdout.write(
        command.style.SUCCESS(f"{sum(done.values())} rows re-encrypted under the first key of {keyring}.")
    )
    return done
