"""The stand-in ATO's COMMPREF actions."""

from __future__ import annotations
