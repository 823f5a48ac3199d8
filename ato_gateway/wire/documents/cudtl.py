"""CUDTL documents (schemas/cudtl.xsd)."""

from __future__ import annotations
