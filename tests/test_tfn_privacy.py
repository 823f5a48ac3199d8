"""No full TFN in any log line or rendered page, except the audited reveal."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from clients.models import Client, ImportJob
from clients.testdata import make_client_rows, rows_to_csv
from portal.logging import RedactTFNFilter, mask_tfn_candidates, redact_tfns
from tests.conftest import add_clients, run_worker_burst

pytestmark = pytest.mark.django_db(transaction=True)


def spaced(tfn: str) -> str:
    return f"{tfn[:3]} {tfn[3:6]} {tfn[6:]}"


def test_the_log_filter_redacts_tfns_but_not_other_numbers():
    assert redact_tfns("tfn 123456782 and 123 456 782") == "tfn [TFN REDACTED] and [TFN REDACTED]"
    assert redact_tfns("abn 53004085616, phone 0298765432, ref 123456789") == (
        "abn 53004085616, phone 0298765432, ref 123456789"
    )
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "lookup %s", ("123456782",), None)
    RedactTFNFilter().filter(record)
    assert record.getMessage() == "lookup [TFN REDACTED]"


def test_redaction_finds_the_same_tfns_as_a_scan_of_the_whole_text():
    """The redactor looks for TFNs only inside runs of digits, spaces and hyphens, which is cheaper. On random
    text built from TFNs, near-misses, separators and letters it masks exactly what a scan of the whole text
    masks."""
    import random

    rng = random.Random(20261201)
    pieces = ["123456782", "123 456 782", "123-456-782", "12345678", "876543210", "53004085616", " ", "-", "x", "<a>"]
    masked = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces + [str(rng.randrange(10))] * 4) for _ in range(rng.randrange(1, 12)))
        assert redact_tfns(text) == mask_tfn_candidates(text), text
        masked += "[TFN REDACTED]" in redact_tfns(text)
    assert masked > 300  # the cases include many real TFNs, not only numbers that pass through


def test_a_number_that_fails_the_check_does_not_hide_a_tfn_it_overlaps():
    # 666-876543 is TFN-shaped but fails the check; the TFN 876543210 starts inside it, after the hyphen.
    assert redact_tfns("ref 1666-876543210.") == "ref 1666-[TFN REDACTED]."
    # "111 876 543" fails the check; "876 543 210", which overlaps it, passes.
    assert redact_tfns("111 876 543 210 x") == "111 [TFN REDACTED] x"


def test_no_full_tfn_in_logs_or_pages(practice, agent, admin, login, caplog):
    caplog.set_level(logging.DEBUG)
    clients = add_clients(practice, 5)
    tfns = [c.reveal_tfn() for c in clients]
    http = login(agent)
    pages: dict[str, str] = {}

    def visit(label: str, response) -> None:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        pages[label] = body.decode()

    visit("list", http.get(reverse("clients:list")))
    for tfn in tfns:  # a search by TFN must not echo it back
        visit(f"search {tfn[-3:]}", http.post(reverse("clients:list"), {"q": tfn}))
        visit(f"search {tfn[-3:]} by link", http.get(reverse("clients:list"), {"q": spaced(tfn)}))
    for client in clients:
        visit(f"detail {client.pk}", http.get(reverse("clients:detail", args=[client.pk])))
        visit(f"edit {client.pk}", http.get(reverse("clients:edit", args=[client.pk])))
    visit("export", http.get(reverse("clients:export")))

    rows = make_client_rows(6, seed=99)
    rows[2]["tfn"] = rows[2]["tfn"][:-1] + str((int(rows[2]["tfn"][-1]) + 1) % 10)  # a bad one, in the errors
    tfns += [r["tfn"] for r in rows]
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = http.post(
        reverse("clients:import_upload"), {"file": SimpleUploadedFile("c.csv", rows_to_csv(rows).encode(), "text/csv")}
    )
    visit("preview", http.get(upload["Location"]))
    job = ImportJob.objects.get()
    http.post(reverse("clients:import_start", args=[job.pk]))
    run_worker_burst()
    visit("import result", http.get(reverse("clients:import_detail", args=[job.pk])))
    visit("audit", login(admin).get(reverse("portal:audit_search")))

    # A client form re-displayed after an error must not echo the TFN typed in.
    bad = http.post(reverse("clients:add"), {"kind": "individual", "family_name": "", "tfn": tfns[0]})
    visit("form error", bad)

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for tfn in tfns:
        for form in (tfn, spaced(tfn)):
            assert form not in logged
            for label, body in pages.items():
                assert form not in body, f"full TFN on the {label} page"

    # The one exception: the audited reveal.
    reveal = http.post(reverse("clients:reveal_tfn", args=[clients[0].pk]))
    assert spaced(tfns[0]) in reveal.content.decode()
    assert Client.objects.count() == 5 + 6 - 1


def test_eight_digit_tfns_and_tracebacks_are_redacted():
    from stdnum.au import tfn as tfn_check

    eight = next(f"{n:08d}" for n in range(10000000, 10001000) if tfn_check.is_valid(f"{n:08d}"))
    assert redact_tfns(f"<TFN>{eight}</TFN>") == "<TFN>[TFN REDACTED]</TFN>"
    try:
        raise ValueError(f"bad member {eight}")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactTFNFilter().filter(record)
    assert eight not in logging.Formatter().format(record)
