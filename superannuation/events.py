"""The real-time events of a member account, recorded pending until a report sends them."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from superannuation.models import Member, ReportKind, SuperFund, Transaction


def new_transaction_id() -> str:
    """The MAAS TransactionId: unique across every fund, and never reused (a resubmission takes a new one)."""
    return f"S{uuid.uuid4().hex}"


def foundation_built(fund: SuperFund) -> bool:
    """Whether the fund's foundation data load has put every account in a batch. Before that, a new account is
    reported by the load itself (it takes members in key order, and a new one comes after its cursor); after it,
    the account is a real-time OPENED event. Callers hold the fund's row lock, which the load takes for each batch,
    so the two never miss an account between them."""
    return fund.reports.filter(kind=ReportKind.FOUNDATION, built_at__isnull=False).exists()


def pending_event(member: Member, event: str, on: date, *, holder: dict[str, Any] | None = None) -> Transaction:
    """An unsaved pending transaction (the caller saves it, alone or in bulk)."""
    return Transaction(
        member=member,
        transaction_id=new_transaction_id(),
        event=event,
        event_on=on,
        tfn_given=bool(member.tfn_ciphertext) and not holder,
        holder=holder or {},
    )
