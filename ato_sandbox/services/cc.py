"""The stand-in ATO's CC actions."""

from __future__ import annotations
