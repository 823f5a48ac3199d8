"""The stand-in ATO's CUASSOC actions."""

from __future__ import annotations
