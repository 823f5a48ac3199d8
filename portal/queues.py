"""The project's RQ queues under names of their own: "high", "default" and "low" are what every app on a Redis
calls its queues, so another app's worker (or a second checkout's) listening there took the portal's jobs. The code
keeps asking for django_rq.get_queue("high"); the queue it gets is named RQ_QUEUE_PREFIX + "high" in Redis, and so
are its registries (started, scheduled, failed), since RQ derives them from the name."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_rq.queues import DjangoRQ, get_result_ttl


def queue_name(name: str) -> str:
    """The name in Redis of the queue settings.RQ_QUEUES calls `name` (idempotent)."""
    prefix: str = settings.RQ_QUEUE_PREFIX
    return name if name.startswith(prefix) else prefix + name


class PrefixedQueue(DjangoRQ):
    """settings.RQ's QUEUE_CLASS. RQ rebuilds a queue from a job's origin (the prefixed name), hence idempotent."""

    def __init__(self, name: str = "default", *args: Any, **kwargs: Any) -> None:
        super().__init__(queue_name(name), *args, **kwargs)

    @property
    def setting_name(self) -> str:
        """The queue's key in settings.RQ_QUEUES."""
        return self.name.removeprefix(settings.RQ_QUEUE_PREFIX)

    def original_enqueue_call(self, *args: Any, **kwargs: Any) -> Any:
        # DjangoRQ's own looks the result TTL up in RQ_QUEUES by the queue's name, which is unprefixed there; this is
        # that method with the setting's name.
        kwargs.setdefault("result_ttl", get_result_ttl(self.setting_name))
        return super(DjangoRQ, self).enqueue_call(*args, **kwargs)
