"""The stand-in ATO's CUAUTHCNTCT actions."""

from __future__ import annotations
