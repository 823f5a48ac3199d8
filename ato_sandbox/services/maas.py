"""The stand-in ATO's MAAS actions."""

from __future__ import annotations
