from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.cache import cache
from django.utils import timezone


def health_banner(request: Any) -> list[tuple[str, str]]:
    """Shown to a practice's staff while its own exchanges with the ATO are failing, so nobody wonders why their
    requests are pending. It gives no figures: those are on the console, for those who operate the gateway."""
    from ato_gateway.services import gateway_health

    user = request.user
    if not user.is_authenticated or user.practice_id is None:
        return []
    key = f"gateway-health-{user.practice_id}"
    health = cache.get(key)
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


def credential_banner(request: Any) -> list[tuple[str, str]]:
    from ato_gateway.models import MachineCredential
    from portal.capabilities import Capability

    user = request.user
    if not user.is_authenticated or not user.has_capability(Capability.MANAGE_CREDENTIALS):
        return []
    key = f"credential-banner-{user.practice_id}"
    cached: list[tuple[str, str]] | None = cache.get(key)
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

        BANNERS.extend([health_banner, credential_banner])
        CRON_JOBS.append({"func": "ato_gateway.jobs.sweep", "queue_name": "high", "interval": 10})
