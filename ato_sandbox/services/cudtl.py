"""The stand-in ATO's CUDTL actions."""

from __future__ import annotations
