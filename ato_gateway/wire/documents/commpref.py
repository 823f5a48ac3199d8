"""COMMPREF documents (schemas/commpref.xsd)."""

from __future__ import annotations
