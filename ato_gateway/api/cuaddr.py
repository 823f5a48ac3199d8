"""CUADDR: a client's addresses. Each function records one request; the answer goes to the handler registered for
the action (``ato_gateway.handlers``), which reads it with ``base.read`` (or ``base.stream`` for a long list)."""

from __future__ import annotations

from collections.abc import Sequence

from ato_gateway.models import OutboxMessage
from ato_gateway.services import Subject
from ato_gateway.wire.documents import cuaddr
from ato_gateway.wire.documents.common import Account, ClientIdentifier
from portal.models import Practice, User

from . import base

LIST = cuaddr.ListRequest.SERVICE_ACTION
VALIDATE = cuaddr.ValidateRequest.SERVICE_ACTION
SUBMIT = cuaddr.SubmitRequest.SERVICE_ACTION
MAX_ACCOUNTS = cuaddr.MAX_ACCOUNTS


def list_addresses(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    account: Account | None = None,
    include_history: bool = False,
    usages: Sequence[str] = (),
    continuation: str | None = None,
    page_size: int | None = None,
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """One page of the client-level addresses, or of one account's; the handler asks for the next page with the
    response's ``continuation`` until there is none."""
    document = cuaddr.ListRequest(
        client=ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn),
        account=account,
        include_history=include_history,
        usages=list(usages),
        continuation=continuation,
        page_size=page_size,
    )
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def _update(
    cls: type[cuaddr.ValidateRequest] | type[cuaddr.SubmitRequest],
    client: ClientIdentifier,
    accounts: Sequence[Account],
    addresses: Sequence[cuaddr.AddressUpdate],
) -> cuaddr.ValidateRequest | cuaddr.SubmitRequest:
    if len(accounts) > MAX_ACCOUNTS:
        # The ATO refuses the message; refusing here keeps our own bug out of the outbox (use submit_batches).
        raise ValueError(f"{len(accounts)} accounts in one request: at most {MAX_ACCOUNTS}")
    if not addresses:
        raise ValueError("give at least one address")
    return cls(client=client, accounts=list(accounts), addresses=list(addresses))


def validate(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    accounts: Sequence[Account] = (),
    addresses: Sequence[cuaddr.AddressUpdate],
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """What Submit would do with the same request, and its warnings and errors; nothing changes at the ATO."""
    client = ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn)
    document = _update(cuaddr.ValidateRequest, client, accounts, addresses)
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def submit(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    accounts: Sequence[Account] = (),
    addresses: Sequence[cuaddr.AddressUpdate],
    created_by: User | None = None,
    subject: Subject | None = None,
) -> OutboxMessage:
    """Make each address the current one of its usage, at client level (no accounts) or for each account (at most
    ``MAX_ACCOUNTS``); the address it replaces ends the day before the new one starts."""
    client = ClientIdentifier.of(tfn=tfn, abn=abn, wpn=wpn)
    document = _update(cuaddr.SubmitRequest, client, accounts, addresses)
    return base.send(document, practice=practice, created_by=created_by, subject=subject)


def batches(accounts: Sequence[Account]) -> list[list[Account]]:
    """The accounts in groups the ATO accepts in one message, in their order; no accounts is one message at client
    level (not none at all)."""
    return [list(accounts[i : i + MAX_ACCOUNTS]) for i in range(0, len(accounts), MAX_ACCOUNTS)] or [[]]


def submit_batches(
    *,
    practice: Practice,
    tfn: str | None = None,
    abn: str | None = None,
    wpn: str | None = None,
    accounts: Sequence[Account],
    addresses: Sequence[cuaddr.AddressUpdate],
    created_by: User | None = None,
    subject: Subject | None = None,
) -> list[OutboxMessage]:
    """The same addresses for any number of accounts, one message per ``MAX_ACCOUNTS`` of them, so the user never
    meets the ATO's limit. Each message is applied on its own: validate every batch first, as one batch can fail
    while another succeeds."""
    return [
        submit(
            practice=practice,
            tfn=tfn,
            abn=abn,
            wpn=wpn,
            accounts=batch,
            addresses=addresses,
            created_by=created_by,
            subject=subject,
        )
        for batch in batches(accounts)
    ]
