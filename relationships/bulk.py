"""Bulk linking from a CSV of identifiers: every row validated first, then the chosen rows submitted."""

from __future__ import annotations

from relationships.models import AtoRequest


def on_request_settled(req: AtoRequest) -> None:
    """Called in the handler's transaction when a request of a bulk row has its answer."""
