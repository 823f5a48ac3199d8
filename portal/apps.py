from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import AppConfig

# Domain apps add a dashboard panel here in their AppConfig.ready(); the portal imports no domain app.
DASHBOARD_PANELS: list[Callable[[Any], dict[str, Any]]] = []
# Site-wide notices (for example "the ATO is not answering"): callables(request) -> list of (level, text).
BANNERS: list[Callable[[Any], list[tuple[str, str]]]] = []
# Periodic jobs, as keyword arguments for rq.cron.register with the function as a dotted path (resolved only
# when the scheduler starts, so that registering imports nothing); portal/cron.py hands them to RQ's scheduler.
CRON_JOBS: list[dict[str, Any]] = []
# What `manage.py sync_ato WHAT --practice ID` brings into line with the ATO besides the relationships (whose
# reconciliation the command runs itself): name -> callable(practice=, write=, inline=, wait=) that runs the same
# sync as the nightly job, printing its progress with write(text); inline sends from this process (no worker).
SYNC_COMMANDS: dict[str, Callable[..., None]] = {}
# Navigation entries of domain apps: (label, URL name, the capability that shows it), after the client register's.
NAV_ITEMS: list[tuple[str, str, str]] = []
# Tabs of a client's page filled by domain apps: tab name -> URL name of an htmx fragment taking the client's pk.
CLIENT_TABS: dict[str, str] = {}
# What staff restricted to groups may see of the audit trail and the gateway console, by object: an audit event's
# object type (a model label) or a gateway message's subject type -> callable(user) giving a queryset of the ids
# (as text) of such objects the user may see. Events and messages about anything not listed are not shown to them.
RESTRICTED_VISIBLE: dict[str, Callable[[Any], Any]] = {}


def restricted_visible(user: Any, *, type_field: str, id_field: str) -> Any:
    """A Q that keeps, for a user restricted to groups, the rows (audit events, gateway messages) whose object is
    one RESTRICTED_VISIBLE says they may see."""
    from django.db.models import Q

    allowed = Q(pk__in=[])
    for object_type, visible in RESTRICTED_VISIBLE.items():
        allowed |= Q(**{type_field: object_type, f"{id_field}__in": visible(user)})
    return allowed


def _session_started(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Where a session's absolute lifetime starts (SessionIdleTimeoutMiddleware ends it SESSION_COOKIE_AGE later)."""
    import time

    if request is not None and hasattr(request, "session"):
        request.session["signed_in_at"] = int(time.time())


def background_paused_banner(request: Any) -> list[tuple[str, str]]:
    """While Redis is down the pages still work (portal/cache.py), but nothing runs in the background: no job is
    queued or taken. Said once, on every page, so that nobody waits on a progress bar that cannot move."""
    from portal.cache import redis_unreachable

    if not redis_unreachable():
        return []
    return [
        (
            "warning",
            "Background work is paused: the portal cannot reach its job queue. Pages work as usual, and what you "
            "ask of the ATO is kept and sent once the queue is back; imports, syncs and progress bars wait until then.",
        )
    ]


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Practice portal"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(_session_started, dispatch_uid="portal.session_started")
        BANNERS.append(background_paused_banner)
        CRON_JOBS.append({"func": "portal.jobs.verify_audit_chains", "queue_name": "low", "cron": "15 2 * * *"})
