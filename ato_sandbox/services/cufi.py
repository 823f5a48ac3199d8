"""The stand-in ATO's CUFI actions."""

from __future__ import annotations
