from __future__ import annotations

from typing import Any

from django import template

from portal.audit_words import event_in_words
from portal.paths import path_of

register = template.Library()


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)


@register.filter
def event_words(action: str) -> str:
    """An audit event's code in words (portal/audit_words.py)."""
    return event_in_words(action)


@register.simple_tag
def path(name: str) -> str:
    """`{% path 'clients:list' %}`: what `{% url 'clients:list' %}` gives for a URL without arguments, without
    reversing it on every page (portal/paths.py says why)."""
    return path_of(name)
