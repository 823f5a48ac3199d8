"""The typed answer a domain app gets (defined beside the gateway's answer handling, which builds it)."""

from ato_gateway.replies import Item, Reply

__all__ = ["Item", "Reply"]
