from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.cache import cache
from django.utils import timezone


def gateway_banners(request: Any) -> list[tuple[str, str]]:
    """The gateway's banners on every page: its health, and the machine credential's for those who manage it. Both
    are kept in the cache, read in one round trip to Redis (every page of the portal asks)."""
    from portal.capabilities import Capability

    user = request.user
    if not user.is_authenticated:
        return []
    health_key = f"gateway-health-{user.practice_id}" if user.practice_id is not None else None
    credential_key = (
        f"credential-banner-{user.practice_id}" if user.has_capability(Capability.MANAGE_CREDENTIALS) else None
    )
    keys = [key for key in (health_key, credential_key) if key is not None]
    found = cache.get_many(keys) if keys else {}
    banners = _health_banner(user, health_key, found.get(health_key)) if health_key else []
    if credential_key:
        banners += _credential_banner(user, credential_key, found.get(credential_key))
    return banners


def _health_banner(user: Any, key: str, health: Any) -> list[tuple[str, str]]:
    """Shown to a practice's staff while its own exchanges with the ATO are failing, so nobody wonders why their
    requests are pending. It gives no figures: those are on the console, for those who operate the gateway."""
    from ato_gateway.services import gateway_health

    if health is None:
        health = gateway_health(practice=user.practice)
        cache.set(key, health, 15)
    if not health.failing:
        return []
    since = f" Last successful exchange: {health.last_success:%d %b %H:%M}." if health.last_success else ""
    return [
        (
            "error",
            f"The ATO is not answering reliably. Your requests are kept and will be retried automatically.{since}",
        )
    ]


def _credential_banner(user: Any, key: str, cached: list[tuple[str, str]] | None) -> list[tuple[str, str]]:
    from ato_gateway.models import MachineCredential

    if cached is None:
        cached = _credential_notices(MachineCredential.objects.filter(practice=user.practice, is_selected=True).first())
        cache.set(key, cached, 300)
    return cached


def _credential_notices(selected: Any) -> list[tuple[str, str]]:
    if selected is None:
        return [
            (
                "warning",
                "No machine credential is selected: nothing can be sent to the ATO. "
                "Import one under Gateway → Machine credentials.",
            )
        ]
    until = f"{timezone.localtime(selected.not_after):%d %B %Y}"
    if selected.is_expired:
        return [
            (
                "error",
                f"The machine credential expired on {until}; nothing can be sent to the ATO until a "
                "renewed one is imported.",
            )
        ]
    if selected.expires_soon:
        return [
            (
                "warning",
                f"The machine credential expires in {selected.days_left} days ({until}). Renew it in "
                "the ATO's Relationship Authorisation Manager and import the new keystore.",
            )
        ]
    return []


class AtoGatewayConfig(AppConfig):
    name = "ato_gateway"
    verbose_name = "ATO gateway"

    def ready(self) -> None:
        from portal.apps import BANNERS, CRON_JOBS

        BANNERS.append(gateway_banners)
        CRON_JOBS.append({"func": "ato_gateway.jobs.sweep", "queue_name": "high", "interval": 10})
