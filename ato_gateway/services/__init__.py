"""The gateway's services, by what they do: ``credentials`` (machine credentials), ``sending`` (the outbox, its
batches and their outcomes), ``pulling`` (the responses to pushed messages) and ``operations`` (the connection test,
resend, the sweeper, health). The names other modules use are re-exported here."""

from ato_gateway.services.credentials import (
    CredentialProblem,
    credential_for_signing,
    credential_import,
    credential_select,
)
from ato_gateway.services.operations import (
    PING_ACTION,
    PING_SERVICE,
    Health,
    gateway_health,
    gateway_ping,
    outbox_resend,
    outbox_sweep,
)
from ato_gateway.services.pulling import outbox_deliver_pulled, outbox_pull
from ato_gateway.services.sending import (
    Decision,
    Subject,
    backoff,
    endpoint_url,
    outbox_dispatch,
    outbox_enqueue,
    outbox_enqueue_many,
    outbox_send_batch,
    outbox_send_one,
)

__all__ = [
    "PING_ACTION",
    "PING_SERVICE",
    "CredentialProblem",
    "Decision",
    "Health",
    "Subject",
    "backoff",
    "credential_for_signing",
    "credential_import",
    "credential_select",
    "endpoint_url",
    "gateway_health",
    "gateway_ping",
    "outbox_deliver_pulled",
    "outbox_dispatch",
    "outbox_enqueue",
    "outbox_enqueue_many",
    "outbox_pull",
    "outbox_resend",
    "outbox_send_batch",
    "outbox_send_one",
    "outbox_sweep",
]
