from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit import audit_verify_chains
from portal.models import AuditEvent


class Command(BaseCommand):
    help = "Recompute every audit hash chain and report any break. Exits non-zero if one is found."

    def handle(self, *args: Any, **options: Any) -> None:
        breaks = list(audit_verify_chains())
        for b in breaks:
            self.stderr.write(f"BREAK chain={b.chain} seq={b.seq} event={b.event_id}: {b.problem}")
        if breaks:
            raise CommandError(f"{len(breaks)} break(s) in the audit trail.")
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {AuditEvent.objects.count()} events verified."))
