"""Reading a reasonable step's evidence back: the file is sealed at rest because a member's letter or a note can
carry their TFN, so each download is for someone who may change the fund's items, and is audited (the step and
its item, never the file's name or content, either of which may quote the TFN)."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404

from portal.audit import audit_record
from portal.models import User
from portal.sealing import unseal_bytes
from superannuation.access import require_manage
from superannuation.models import ReasonableStep, WorkItem


def step_evidence_read(*, user: User, step_id: int) -> tuple[str, bytes]:
    """The step's evidence as (file name, content); a step of a fund the user cannot see, or one without evidence,
    is a 404."""
    require_manage(user)
    step = (
        ReasonableStep.objects.filter(pk=step_id, item__in=WorkItem.objects.visible_to(user))
        .exclude(evidence="")
        .select_related("item")
        .first()
    )
    if step is None:
        raise Http404("No such evidence.")
    content = unseal_bytes(step.evidence)
    with transaction.atomic(durable=True):
        audit_record(
            "superannuation.evidence_downloaded",
            actor=user,
            target=step.item,
            details={"step": step.pk, "bytes": len(content)},
        )
    return step.evidence_name or "evidence", content
