"""CUASSOC documents (schemas/cuassoc.xsd)."""

from __future__ import annotations
