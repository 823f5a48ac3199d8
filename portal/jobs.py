"""RQ jobs of the portal core: thin, each calls a service."""

from __future__ import annotations

import logging

from django.db import transaction

from portal.audit import audit_record, audit_verify_chains
from portal.models import Practice

log = logging.getLogger(__name__)


def verify_audit_chains() -> int:
    """Nightly: recompute every chain. A break is itself recorded, in the chain of the practice concerned."""
    breaks = list(audit_verify_chains())
    with transaction.atomic():
        for b in breaks:
            log.error("audit chain %s broken at seq %s: %s", b.chain, b.seq, b.problem)
            practice = Practice.objects.filter(pk=b.chain).first()
            audit_record(
                "audit.chain_broken",
                practice=practice,
                details={"seq": b.seq, "event": b.event_id, "problem": b.problem},
            )
        audit_record("audit.verified", details={"breaks": len(breaks)})
    return len(breaks)
