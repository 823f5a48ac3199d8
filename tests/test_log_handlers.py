"""The TFN filter sits on every handler, not only the root console's: Django's own `django` logger and
`mail_admins` (whose mail carries the request and the traceback's frame locals) print or send nothing unmasked."""

from __future__ import annotations

import io
import logging

import pytest
from django.core import mail
from django.test import RequestFactory, override_settings

from portal.logging import RedactTFNFilter

TFN = "876543210"  # passes the TFN check digit


def _handlers(logger: logging.Logger) -> list[logging.Handler]:
    """Every handler a record to `logger` reaches, following propagation as logging does."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        # pytest's own capture handlers are the test run's, not the application's.
        found += [h for h in current.handlers if not type(h).__module__.startswith("_pytest")]
        current = current.parent if current.propagate else None  # type: ignore[assignment]
    return found


@pytest.mark.parametrize(
    "name", ["", "django", "django.request", "django.server", "django.security.csrf", "rq.worker", "portal"]
)
def test_every_handler_a_record_reaches_masks_tfns(name):
    handlers = _handlers(logging.getLogger(name))
    assert handlers
    for handler in handlers:
        assert any(isinstance(f, RedactTFNFilter) for f in handler.filters), f"{name}: {handler!r} does not redact"


def test_the_django_logger_prints_only_masked_copies():
    printed = io.StringIO()
    streams = [h for h in _handlers(logging.getLogger("django.request")) if isinstance(h, logging.StreamHandler)]
    old = [h.setStream(printed) for h in streams]
    try:
        logging.getLogger("django.request").warning("Bad Request: /clients/?q=%s", TFN)
    finally:
        for handler, stream in zip(streams, old, strict=True):
            if stream is not None:
                handler.setStream(stream)
    assert "[TFN REDACTED]" in printed.getvalue() and TFN not in printed.getvalue()


@override_settings(ADMINS=[("Ops", "ops@example.com")], DEBUG=False)
def test_mail_to_the_admins_masks_the_message_the_request_and_frame_locals():
    request = RequestFactory().get("/clients/", {"q": TFN})

    def fails(tfn: str) -> None:
        typed = tfn  # a frame local holding a TFN
        raise ValueError(f"cannot parse {typed}")

    try:
        fails(TFN)
    except ValueError:
        logging.getLogger("django.request").error(
            "Internal Server Error: %s", request.path, exc_info=True, extra={"status_code": 500, "request": request}
        )
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    bodies = [sent.subject, sent.body] + [content for content, _type in getattr(sent, "alternatives", [])]
    assert all(TFN not in body for body in bodies)
    assert "[TFN REDACTED]" in sent.body
