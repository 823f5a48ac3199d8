"""Where TFNs could still get through: a wire excerpt cut through a TFN, the ATO's error text on the console, and
the console's filters written raw into the audit trail (where a NUL also failed the page)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ato_gateway.models import MessageAttempt, OutboxMessage
from ato_gateway.services.sending import EXCERPT_LIMIT, _excerpt
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

TFN = "876543210"  # passes the TFN check digit


@pytest.mark.parametrize("inside", range(1, len(TFN)))
def test_a_tfn_cut_by_the_excerpt_limit_is_masked_whole(inside):
    body = b"<x>" + b"a" * (EXCERPT_LIMIT - 3 - inside) + TFN.encode() + b"</x>" + b"b" * 100
    excerpt = _excerpt(body)
    # The cut now falls inside the mask (or just after it), never inside the digits.
    assert not any(ch.isdigit() for ch in excerpt), excerpt[-30:]
    assert excerpt[-inside:] in "[TFN REDACTED]" or excerpt.endswith("[TFN REDACTED]")
    assert len(excerpt) == EXCERPT_LIMIT


def test_multibyte_text_before_the_cut_does_not_bring_a_fragment_back():
    # Three-byte characters: the limit in bytes falls far earlier in characters than the window's end, and a digit
    # run the wider window itself cuts short must stay beyond the cut.
    lead = "€" * ((EXCERPT_LIMIT - 2) // 3)
    body = lead.encode() + b"xy" + b"a" * 11 + TFN.encode()  # the window ends 7 digits in: no TFN shape
    excerpt = _excerpt(body)
    assert not any(ch.isdigit() for ch in excerpt)
    assert excerpt.encode()[:EXCERPT_LIMIT] == body[:EXCERPT_LIMIT]


def test_the_ato_s_error_text_is_masked_on_the_message_page(admin, login, practice):
    message = OutboxMessage(
        practice=practice, service="PING", action="Ping.001.00", message_id="e@test", conversation_id="c"
    )
    message.set_payloads([("PingRequest", "<PingRequest/>")])
    message.status = "failed"
    message.error_text = f"CMN.ATO.GEN.XML03: the value {TFN} is not valid"
    message.save()
    MessageAttempt.objects.create(
        message=message,
        number=1,
        started_at=message.created_at,
        outcome="permanent",
        error_text=f"Rejected: {TFN[:3]} {TFN[3:6]} {TFN[6:]}",
    )
    page = login(admin).get(reverse("ato_gateway:message", args=[message.pk])).content.decode()
    assert TFN not in page and f"{TFN[:3]} {TFN[3:6]} {TFN[6:]}" not in page
    assert page.count("[TFN REDACTED]") >= 2
    message.refresh_from_db()
    assert TFN in message.error_text  # the page masks; the row is not rewritten by viewing it


def test_console_filters_reach_the_audit_trail_masked_and_a_nul_is_no_500(admin, login):
    http = login(admin)
    shown = http.get(reverse("ato_gateway:console"), {"client": f"{TFN[:3]} {TFN[3:6]} {TFN[6:]}", "status": "dead"})
    assert shown.status_code == 200
    event = AuditEvent.objects.filter(action="gateway.console_viewed").first()
    assert event.details == {"filters": {"client": "[TFN REDACTED]", "status": "dead"}}
    assert TFN[:3] + " " + TFN[3:6] not in str(event.details)
    nul = http.get(reverse("ato_gateway:console") + "?client=ab%00cd&service=x%00")
    assert nul.status_code == 200
    assert AuditEvent.objects.filter(action="gateway.console_viewed").first().details == {
        "filters": {"refused": "client,service"}
    }
