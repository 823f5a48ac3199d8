"""Where the superannuation pages appear in the portal: the main navigation, the dashboard's panel and the fund's
tab on its client's page."""

from __future__ import annotations


def register() -> None:
    """Called once from the app's ready()."""
