"""The stand-in ATO's CUADDR actions."""

from __future__ import annotations
