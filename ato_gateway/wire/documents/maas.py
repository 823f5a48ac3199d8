"""MAAS documents (schemas/maas.xsd)."""

from __future__ import annotations
