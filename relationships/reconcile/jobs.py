"""RQ jobs of the reconciliation: thin, each calls a service."""

from __future__ import annotations

from relationships.reconcile import services as reconcile


def reconcile_nightly() -> list[int]:
    """The scheduler's nightly run for every practice that can speak to the ATO; the pages then run as the
    gateway's messages, each page's answer asking for the next."""
    return reconcile.reconcile_nightly()
