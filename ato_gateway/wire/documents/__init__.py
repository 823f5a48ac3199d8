"""The business documents of every service (see docs/business-services.md). Importing this package registers
every document class, so that ``codec.decode_any`` knows each root element."""

from . import cc, commpref, cuaddr, cuassoc, cuauthcntct, cudtl, cufi, curel, maas  # noqa: F401 - registration
from .codec import Document, DocumentError, Stream, decode, decode_any, encode, stream, xml

__all__ = ["Document", "DocumentError", "Stream", "decode", "decode_any", "encode", "stream", "xml"]
