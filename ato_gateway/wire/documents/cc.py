"""CC documents (schemas/cc.xsd)."""

from __future__ import annotations
