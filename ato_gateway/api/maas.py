"""MAAS: a super fund reports its member accounts. ``submit`` records one push; the ATO's receipt comes back at
once and the per-transaction results are pulled later, then handed to the handler registered for the action
(``ato_gateway.handlers``), which reads them with ``base.read`` (or ``base.stream(..., "results")`` for a large
batch).

The practice here is the fund's administrator: the message is sent under the machine credential of the fund's
ABN, with no agent number."""

from __future__ import annotations

from collections.abc import Sequence

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import maas
from ato_gateway.wire.documents.maas import AccountEvent, MemberTransaction
from portal.models import Practice, User

from . import base

SUBMIT = maas.SubmitRequest.SERVICE_ACTION

__all__ = ["SUBMIT", "AccountEvent", "MemberTransaction", "submit"]


def submit(
    *,
    practice: Practice,
    transactions: Sequence[MemberTransaction],
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Report member account transactions in one bulk message. Each transaction is validated on its own: the
    valid ones are processed even when others fail, and the results say which failed and why."""
    document = maas.SubmitRequest(transactions=list(transactions))
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
