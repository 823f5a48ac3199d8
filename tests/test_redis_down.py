"""With Redis down every page still renders, with a notice that background work is paused, and a question asked of
the ATO is still recorded, to be sent once Redis is back. Redis is "down" the real way: the cache and the queues
point at a port on this machine where nothing listens, so every connection is refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import django_rq
import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from django_rq import settings as rq_settings

from ato_gateway.models import MessageStatus, OutboxMessage
from ato_gateway.services import outbox_sweep
from clients.models import Client
from portal import cache as portal_cache
from portal.models import User
from tests.conftest import add_clients, verified_client

NOTICE = "Background work is paused"
PAGES = [
    "portal:dashboard",
    "clients:list",
    "clients:groups",
    "clients:import_upload",
    "portal:staff_list",
    "portal:access_review",
    "portal:audit_search",
    "portal:account",
    "ato_gateway:console",
    "relationships:home",
    "communications:inbox",
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on leaving: connections to it are refused


@pytest.fixture
def redis_down(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": dead}}
    for name, config in rq_settings.QUEUES.items():
        monkeypatch.setitem(rq_settings.QUEUES, name, {**config, "URL": dead})
    yield dead
    portal_cache._unreachable_until = 0.0  # the next test starts with Redis up


@pytest.mark.django_db
def test_every_page_renders_without_redis(redis_down: str, admin: User) -> None:
    client = add_clients(admin.tenant, 3)[0]
    http = verified_client(admin)  # the session is written, and then read, with Redis down
    for name in PAGES:
        response = http.get(reverse(name))
        assert response.status_code == 200, name
        assert NOTICE in response.content.decode(), name
    detail = http.get(reverse("clients:detail", args=[client.pk]))
    assert detail.status_code == 200 and NOTICE in detail.content.decode()
    assert HttpClient().get(reverse("portal:login")).status_code == 200


@pytest.mark.django_db
def test_no_notice_while_redis_is_up(admin: User) -> None:
    assert NOTICE not in verified_client(admin).get(reverse("portal:dashboard")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_question_asked_without_redis_is_kept_and_sent_when_it_is_back(
    redis_down: str, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = verified_client(admin)
    response = http.post(reverse("ato_gateway:ping"))
    assert response.status_code == 302
    message = OutboxMessage.objects.get(practice=admin.practice)
    assert message.status == MessageStatus.PENDING
    page = http.get(response["Location"])
    assert page.status_code == 200 and NOTICE in page.content.decode()

    # Redis is back; the sweeper's next pass, once the lost push is old enough to be presumed lost, queues it.
    monkeypatch.undo()
    portal_cache._unreachable_until = 0.0
    earlier = timezone.now() - timedelta(minutes=1)
    OutboxMessage.objects.filter(pk=message.pk).update(enqueued_at=earlier, next_attempt_at=earlier)
    assert outbox_sweep() == 1
    assert django_rq.get_queue("high").count == 1
    assert Client.objects.count() == 0  # nothing else happened on the way
