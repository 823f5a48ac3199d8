"""CUAUTHCNTCT documents (schemas/cuauthcntct.xsd)."""

from __future__ import annotations
