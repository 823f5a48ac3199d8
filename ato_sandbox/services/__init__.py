"""The stand-in ATO's business actions, one module per service; importing this package registers them all."""

from . import cc, commpref, cuaddr, cuassoc, cuauthcntct, cudtl, cufi, curel, maas  # noqa: F401 - registration
from .base import HANDLERS, Context, Failure, handles

__all__ = ["HANDLERS", "Context", "Failure", "handles"]
