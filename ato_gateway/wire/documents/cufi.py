"""CUFI documents (schemas/cufi.xsd)."""

from __future__ import annotations
