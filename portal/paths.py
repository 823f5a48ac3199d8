"""The path of a URL that takes no arguments, remembered instead of reversed on every page.

reverse() walks the URL resolver each time: ~0.13M instructions a call (callgrind), and a page's header, navigation
and forms name ~15 such URLs. The path depends only on the URL name, the URLconf and the script prefix, and
reverse() reads the current URLconf and prefix itself, so those two are the cache key along with the name. Only for
names without arguments in a namespace with one instance (every namespace in this project), where reverse() has
no current application to choose between."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse


@functools.lru_cache(maxsize=256)
def _path(name: str, urlconf: Any, script_prefix: str) -> str:
    return reverse(name, urlconf=urlconf)


def path_of(name: str) -> str:
    """reverse(name), for a URL name that takes no arguments."""
    return _path(name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
