"""RQ jobs of the inbox: thin, each calls a service."""

from __future__ import annotations

from communications import preferences, services
from portal.models import Practice


def sync_nightly() -> list[int]:
    return services.sync_nightly()


def sync_page_store(page_id: int, sealed: str = "") -> bool:
    return services.sync_page_store(page_id=page_id, sealed=sealed)


def letters_rematch() -> int:
    """Letters left unmatched, matched to clients an import has added since (imports write without signals)."""
    return services.letters_rematch()


def documents_ask(practice_id: int) -> int:
    return services.documents_ask(practice=Practice.objects.get(pk=practice_id))


def documents_ask_all() -> int:
    return services.documents_ask_all()


def digest_daily() -> int:
    return services.digest_send()


def preference_bulk_submit(bulk_id: int) -> int:
    return preferences.preference_bulk_submit(bulk_id=bulk_id)
