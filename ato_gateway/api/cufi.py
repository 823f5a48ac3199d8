"""CUFI: a client's financial institution (bank) accounts. Each function records one request; the answer goes to
the handler registered for the action (``ato_gateway.handlers``), which reads it with ``base.read`` (or, for the
list, ``base.stream`` page by page while the response carries a continuation).

Every action works at client level, or with ``account`` for one of the client's ATO accounts (an activity
statement account's own refund account). ``validate`` and ``submit`` take the same arguments; run ``validate``
first and show its warnings before ``submit``."""

from __future__ import annotations

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import cufi
from ato_gateway.wire.documents.common import Account, ClientIdentifier
from portal.models import Practice, User

from . import base

LIST = cufi.ListRequest.SERVICE_ACTION
VALIDATE = cufi.ValidateRequest.SERVICE_ACTION
SUBMIT = cufi.SubmitRequest.SERVICE_ACTION


def list_accounts(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    account: Account | None = None,
    include_history: bool = False,
    continuation: str | None = None,
    page_size: int | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """The bank accounts in use (with ``include_history``, also those used before), a page at a time: pass the
    previous page's continuation to get the next."""
    document = cufi.ListRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        account=account,
        include_history=True if include_history else None,
        continuation=continuation or None,
        page_size=page_size,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def _replacement(
    cls: type[cufi.ValidateRequest] | type[cufi.SubmitRequest],
    *,
    tfn: str | None,
    abn: str | None,
    wpn: str | None,
    account: Account | None,
    bsb: str,
    number: str,
    account_name: str,
) -> cufi.ValidateRequest | cufi.SubmitRequest:
    return cls(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        account=account,
        # The BSB's usual NNN-NNN form goes on the wire as six digits.
        bank_account=cufi.FinancialInstitutionAccount(bsb=bsb.replace("-", ""), number=number, name=account_name),
    )


def validate(
    *,
    practice: Practice,
    bsb: str,
    number: str,
    account_name: str,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    account: Account | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Check a replacement of the account refunds are paid into, without making it: the answer carries the new
    account's period and the day the old one would end, with the errors and warnings ``submit`` would give."""
    document = _replacement(
        cufi.ValidateRequest,
        tfn=tfn,
        abn=abn,
        wpn=wpn,
        account=account,
        bsb=bsb,
        number=number,
        account_name=account_name,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def submit(
    *,
    practice: Practice,
    bsb: str,
    number: str,
    account_name: str,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    account: Account | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Replace the account refunds are paid into: the new one from today, the old one ending the day before."""
    document = _replacement(
        cufi.SubmitRequest,
        tfn=tfn,
        abn=abn,
        wpn=wpn,
        account=account,
        bsb=bsb,
        number=number,
        account_name=account_name,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)
