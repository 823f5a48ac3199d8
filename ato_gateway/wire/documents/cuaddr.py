"""CUADDR documents (schemas/cuaddr.xsd)."""

from __future__ import annotations
