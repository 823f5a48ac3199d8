"""The TFN filter sits on every handler, not only the root console's: Django's own `django` logger and
`mail_admins` (whose mail carries the request and the traceback's frame locals) print or send nothing unmasked."""

from __future__ import annotations

import io
import logging

import pytest
from django.core import mail
from django.test import RequestFactory, override_settings

from portal.logging import ClientErrorWithoutTracebackFilter, RedactingAdminEmailHandler, RedactTFNFilter, redact_tfns

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
    # The stream swapped by hand, not by setStream(), which flushes the old one: under a runner that has closed
    # the process's stderr (make mutate's), that flush raises before anything is logged.
    old = [h.stream for h in streams]
    for handler in streams:
        handler.stream = printed
    try:
        logging.getLogger("django.request").warning("Bad Request: /clients/?q=%s", TFN)
    finally:
        for handler, stream in zip(streams, old, strict=True):
            handler.stream = stream
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


@override_settings(ADMINS=[("Ops", "ops@example.com")], EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_the_admins_mail_is_masked_in_its_subject_its_text_and_its_html():
    mail.outbox.clear()
    RedactingAdminEmailHandler(include_html=True).send_mail(
        f"Error on /clients/?q={TFN}", f"The request asked for {TFN}", html_message=f"<p>asked for {TFN}</p>"
    )
    (sent,) = mail.outbox
    (html, kind), *_ = sent.alternatives  # type: ignore[attr-defined]
    assert kind == "text/html" and html == "<p>asked for [TFN REDACTED]</p>"
    assert sent.subject.endswith("Error on /clients/?q=[TFN REDACTED]")
    assert sent.body == "The request asked for [TFN REDACTED]"


def test_a_tfn_written_in_groups_is_masked_as_a_whole():
    assert redact_tfns(f"TFN {TFN[:3]} {TFN[3:6]} {TFN[6:]} quoted") == "TFN [TFN REDACTED] quoted"


@pytest.mark.parametrize(("status", "kept"), [(403, False), (404, False), (499, False), (500, True), (None, True)])
def test_a_refusal_is_logged_without_its_traceback_and_a_fault_with_it(status, kept):
    try:
        raise PermissionError("refused")
    except PermissionError:
        import sys

        record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden", None, sys.exc_info())
    record.exc_text = "a traceback"
    if status is not None:
        record.status_code = status
    assert ClientErrorWithoutTracebackFilter().filter(record) is True
    assert (record.exc_info is not None, record.exc_text == "a traceback") == (kept, kept)
