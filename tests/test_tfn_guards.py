"""TFN safety through the parts production uses: the keyed look-up hash and the configured log handler (issue 18,
items 4 and 5). Each test was seen to fail with the behaviour it names broken."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging

import pytest
from django.conf import settings
from django.test import override_settings

from clients.models import Client
from clients.tfn import format_tfn, looks_like_tfn, mask_tfn
from portal.logging import redact_tfns
from tests.conftest import add_clients

pytestmark = pytest.mark.django_db

TFN = "123456782"


def test_the_tfn_look_up_hash_is_keyed_with_tfn_hash_key_and_outlives_a_secret_key_change(practice):
    client = add_clients(practice, 1)[0]
    client.set_tfn(TFN)
    client.save()
    expected = hmac.new(settings.TFN_HASH_KEY.encode(), TFN.encode(), hashlib.sha256).hexdigest()
    assert Client.objects.get(pk=client.pk).tfn_hash == expected
    # A rotated SECRET_KEY (sessions, signing) must not lose every client's TFN look-up.
    with override_settings(SECRET_KEY="a-rotated-secret-key-that-shares-nothing-with-the-old-one-0123456789"):
        assert list(Client.objects.filter(practice=practice).search("123 456 782")) == [client]


def test_the_configured_console_handler_masks_a_tfn_logged_through_the_root_logger():
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(console, logging.StreamHandler)
    stream = io.StringIO()
    # Swapped by hand rather than with setStream(), which flushes the old stream: in a process that has run pytest
    # before (mutmut), that is an earlier session's captured stderr, already closed.
    previous, console.stream = console.stream, stream
    try:
        logging.getLogger("clients.lookup").warning("looked up %s for the client", TFN)
    finally:
        console.stream = previous
    written = stream.getvalue()
    assert "looked up [TFN REDACTED] for the client" in written
    assert TFN not in written


def test_tfn_shapes_masks_and_redaction_of_spaced_or_hyphenated_tfns():
    assert redact_tfns("tfn 123-456-782, or 123 456 782") == "tfn [TFN REDACTED], or [TFN REDACTED]"
    assert redact_tfns("ref 123 456 789") == "ref 123 456 789"  # TFN-shaped, failing the check digit: kept
    assert (mask_tfn("782"), mask_tfn("")) == ("*** *** 782", "")
    assert (format_tfn(TFN), format_tfn("12345678")) == ("123 456 782", "12345678")
    assert looks_like_tfn("123-456-782") and looks_like_tfn("123 456 78") and looks_like_tfn("12345678")
    assert not looks_like_tfn("abcdefghi") and not looks_like_tfn("1234567") and not looks_like_tfn("1234567890")
