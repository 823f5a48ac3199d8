"""What the pages send for accessibility, without a browser: form ids that Django's aria-describedby names, a title
of its own on every main page, the message page's poll that carries only what changed, and the session's
keep-alive behind the warning before the idle sign-out. (The browser side is tests/test_browser_a11y.py.)"""

from __future__ import annotations

import re
import time
from typing import Any

from django.db import transaction
from django.test import Client as HttpClient
from django.urls import reverse

from ato_gateway import services as gateway_services
from ato_gateway.models import OutboxMessage
from clients.models import Client
from portal.models import User

PING = '<PingRequest xmlns="http://www.sbr.gov.au/ato/ping"><Text>x</Text></PingRequest>'


def _message(admin: User) -> OutboxMessage:
    assert admin.practice is not None
    with transaction.atomic():
        return gateway_services.outbox_enqueue(
            practice=admin.practice, service="PING", action="Ping.001.00", documents=[("PingRequest", PING)]
        )


def _described_by(html: str, field_id: str) -> list[str]:
    tag = re.search(rf'<[^>]+\bid="{field_id}"[^>]*>', html)
    assert tag, field_id
    found = re.search(r'aria-describedby="([^"]*)"', tag.group(0))
    return found.group(1).split() if found else []


def test_field_errors_and_help_texts_have_the_ids_their_fields_name(db: Any) -> None:
    html = HttpClient().post(reverse("portal:login"), {"username": "", "password": ""}).content.decode()
    assert _described_by(html, "id_username") == ["id_username_error"]
    assert 'id="id_username_error"' in html
    assert "data-error-summary" in html and 'href="#id_username"' in html


def test_choice_groups_are_fieldsets_with_the_question_as_legend(agent: User, login: Any) -> None:
    html = login(agent).get(reverse("relationships:add")).content.decode()
    group = re.search(r"<fieldset[^>]*>\s*<legend>The client is</legend>.*?</fieldset>", html, re.DOTALL)
    assert group and 'type="radio"' in group.group(0)
    # Help texts are tied to their fields as Django names them.
    assert _described_by(html, "id_identifier") == ["id_identifier_helptext"]
    assert 'id="id_identifier_helptext"' in html


def test_every_main_page_has_a_title_of_its_own(admin: User, login: Any, clients_of: list[Client]) -> None:
    http = login(admin)
    client = clients_of[0]
    pages = [
        reverse("portal:dashboard"),
        reverse("clients:list"),
        reverse("clients:detail", args=[client.pk]),
        reverse("clients:detail", args=[client.pk]) + "?tab=relationships",
        reverse("clients:groups"),
        reverse("clients:import_upload"),
        reverse("relationships:home"),
        reverse("relationships:add"),
        reverse("portal:staff_list"),
        reverse("portal:staff_detail", args=[admin.pk]),
        reverse("portal:access_review"),
        reverse("portal:audit_search"),
        reverse("ato_gateway:console"),
        reverse("portal:account"),
        reverse("superannuation:funds"),
        reverse("superannuation:fund_add"),
        reverse("superannuation:worklist"),
        reverse("communications:inbox"),
        reverse("communications:preferences"),
    ]
    titles = {}
    for path in pages:
        html = http.get(path).content.decode()
        [title] = re.findall(r"<title>(.*?)</title>", html, re.DOTALL)
        assert re.fullmatch(r"\S.* — Practice Portal", title), (path, title)
        titles[path] = title
    assert len(set(titles.values())) == len(pages), titles


def test_the_message_page_polls_its_status_alone(admin: User, login: Any) -> None:
    message = _message(admin)
    http = login(admin)
    url = reverse("ato_gateway:message", args=[message.pk])
    page = http.get(url).content.decode()
    assert page.count("hx-trigger") == 1 and 'id="message-progress"' in page and "hx-select" not in page

    poll = {"HTTP_HX_REQUEST": "true", "HTTP_X_POLL": "1"}
    same = http.get(url, {"attempts": "0"}, **poll).content.decode()
    assert 'id="message-progress"' in same
    assert "Sent documents" not in same and "message-attempts" not in same and "hx-swap-oob" not in same
    changed = http.get(url, {"attempts": "3"}, **poll).content.decode()
    assert 'id="message-attempts" hx-swap-oob="true"' in changed and 'id="message-answer" hx-swap-oob="true"' in changed


def test_stay_signed_in_refreshes_the_idle_session(agent: User, login: Any, settings: Any) -> None:
    http = login(agent)
    page = http.get(reverse("portal:dashboard"))
    assert 0 < int(page["X-Session-Idle-Remaining"]) <= settings.SESSION_IDLE_TIMEOUT_SECONDS
    assert f'data-idle-warning="{settings.SESSION_IDLE_WARNING_SECONDS}"' in page.content.decode()

    session = http.session
    session["last_seen"] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT_SECONDS + 30
    session.save()
    polled = http.get(reverse("portal:dashboard"), HTTP_X_POLL="1")
    assert int(polled["X-Session-Idle-Remaining"]) <= 30
    assert http.get(reverse("portal:keep_alive")).status_code == 405
    kept = http.post(reverse("portal:keep_alive"))
    assert kept.status_code == 204
    assert int(kept["X-Session-Idle-Remaining"]) >= settings.SESSION_IDLE_TIMEOUT_SECONDS - 1
    assert http.session["last_seen"] >= int(time.time()) - 1

    # Within the minute in which the middleware does not rewrite the time, the keep-alive still grants it all.
    session = http.session
    session["last_seen"] = int(time.time()) - 30
    session.save()
    kept = http.post(reverse("portal:keep_alive"))
    assert int(kept["X-Session-Idle-Remaining"]) >= settings.SESSION_IDLE_TIMEOUT_SECONDS - 1


def test_keep_alive_does_not_revive_an_ended_session(agent: User, login: Any, settings: Any) -> None:
    http = login(agent)
    session = http.session
    session["last_seen"] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT_SECONDS - 5
    session.save()
    response = http.post(reverse("portal:keep_alive"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))
