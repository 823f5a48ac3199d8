"""Bulk linking from a CSV through the real gateway and the stand-in ATO: rows refused before asking, every good
row validated, a review with warnings and the ATO's refusals, the chosen rows linked, the outcome report."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date
from typing import Any

import django_rq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django.urls import reverse

from ato_gateway.api import in_plain_words
from ato_gateway.models import OutboxMessage
from clients.models import Client
from clients.tfn import tfn_lookup_hash
from portal.models import AuditEvent, User
from relationships.bulk import services as bulk
from relationships.models import AtoRequest, BulkJob, BulkRow, BulkStatus, Link, RequestKind
from tests.ato_fixtures import AGENT_TAN, OTHER_AGENT_TAN, Ato
from tests.gateway_fixtures import pump

HEADER = ["tfn", "abn", "family_name", "given_name", "date_of_birth", "organisation_name", "level"]
UNKNOWN_TFN = "123456782"  # passes the TFN check; no such taxpayer in the register
NOBODY = "NOT EXISTS (SELECT 1 FROM reg_links l WHERE l.taxpayer_id = t.id AND l.end_date IS NULL)"
ONLY_OTHERS = (
    "NOT EXISTS (SELECT 1 FROM reg_links l JOIN reg_agents g ON g.id = l.agent_id WHERE l.taxpayer_id = t.id "
    "AND l.end_date IS NULL AND g.tan <> ?) AND EXISTS (SELECT 1 FROM reg_links l WHERE l.taxpayer_id = t.id "
    "AND l.end_date IS NULL AND l.level = 'CLIENT')"
)


def to_csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(http: HttpClient, content: bytes, name: str = "links.csv") -> Any:
    return http.post(reverse("relationships:bulk_upload"), {"file": SimpleUploadedFile(name, content, "text/csv")})


def person(t: dict[str, Any], **change: str) -> list[str]:
    row = {"tfn": t["tfn"], "family_name": t["family_name"], "given_name": t["given_name"] or ""}
    row |= {"date_of_birth": t["birth_date"], **change}
    return [row.get(c, "") for c in HEADER]


def organisation(t: dict[str, Any]) -> list[str]:
    return ["", t["abn"], "", "", "", t["organisation_name"], "client"]


def bad_check_digit(tfn: str) -> str:
    return tfn[:-1] + str((int(tfn[-1]) + 1) % 10)


def settle_all() -> None:
    pump(lambda: not AtoRequest.objects.waiting().exists(), timeout=120)


def spaced(tfn: str) -> str:
    return f"{tfn[:3]} {tfn[3:6]} {tfn[6:]}"


# --- through the gateway ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_bulk_link_with_bad_rows_review_choose_link_and_report(ato: Ato, agent: User, login: Any, caplog: Any):
    caplog.set_level(logging.DEBUG)
    free = ato.query(
        f"SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND {NOBODY} "  # noqa: S608
        "ORDER BY t.id LIMIT 5"
    )
    taken = ato.query(
        f"SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND {ONLY_OTHERS} "  # noqa: S608
        "ORDER BY t.id LIMIT 1",
        OTHER_AGENT_TAN,
    )[0]
    company = ato.query(
        f"SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'COY' AND t.abn IS NOT NULL AND {NOBODY} "  # noqa: S608
        "ORDER BY t.id LIMIT 1"
    )[0]
    a, wrong_name, unchosen, no_name, bad_digit = free
    rows = [
        person(a),  # row 2: ok
        person(taken),  # row 3: a warning, it ends the other agent's link
        organisation(company),  # row 4: ok, an organisation by its ABN
        person(wrong_name, family_name="Nobody-Matches"),  # row 5: the ATO refuses it
        person(unchosen),  # row 6: ok, but left unticked
        [no_name["tfn"], "", "", "", "", "", ""],  # row 7: refused before asking
        person(bad_digit, tfn=bad_check_digit(bad_digit["tfn"])),  # row 8: refused before asking
        person(a, tfn=UNKNOWN_TFN),  # row 9: not in the register
    ]
    tfns = [t["tfn"] for t in free] + [taken["tfn"], UNKNOWN_TFN, bad_check_digit(bad_digit["tfn"])]
    http = login(agent)

    response = upload(http, to_csv(rows))
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("relationships:bulk_detail", args=[job.pk])
    problems = dict(job.rows.exclude(problem="").values_list("row_number", "problem"))
    assert set(problems) == {7, 8}
    assert "family name" in problems[7] and "TFN check" in problems[8]
    asked = AtoRequest.objects.filter(bulk_row__job=job)
    assert asked.count() == 6 and {r.kind for r in asked} == {RequestKind.VALIDATE}
    assert all(r.question_id for r in asked) and OutboxMessage.objects.count() == 6
    # Recorded together: one send job for the batch, not one a message.
    assert django_rq.get_queue("high").count == 1
    assert AuditEvent.objects.filter(action="relationships.bulk_uploaded", actor=agent).count() == 1

    settle_all()
    page = http.get(reverse("relationships:bulk_detail", args=[job.pk])).content.decode()
    job.refresh_from_db()
    assert job.status == BulkStatus.REVIEW
    outcomes = {o.row.row_number: o for o in bulk.row_outcomes(job)}
    assert {n: o.state for n, o in outcomes.items()} == {
        2: "ok",
        3: "warning",
        4: "ok",
        5: "error",
        6: "ok",
        7: "error",
        8: "error",
        9: "error",
    }
    assert f"This will end Other Agents ({OTHER_AGENT_TAN})'s link for the whole client." in outcomes[3].words
    assert "does not match" in outcomes[5].words[0] and outcomes[9].words[0] == in_plain_words("CMN.ATO.CUREL.SRCH01")
    chosen = dict(job.rows.values_list("row_number", "chosen"))
    assert chosen[2] and chosen[4] and chosen[6] and not chosen[3] and not chosen[5]
    assert f'value="{outcomes[2].row.pk}" checked' in page and f'value="{outcomes[3].row.pk}" aria-label' in page
    assert f'value="{outcomes[5].row.pk}"' not in page  # an error cannot be chosen

    # Untick row 6, tick the warning of row 3; the refused row 5 is ignored even if posted.
    pick = [outcomes[n].row.pk for n in (2, 3, 4, 5)]
    http.post(reverse("relationships:bulk_submit", args=[job.pk]), {"rows": pick})
    again = http.post(reverse("relationships:bulk_submit", args=[job.pk]), {"rows": pick}, follow=True)
    assert "already been sent" in again.content.decode()
    submits = AtoRequest.objects.filter(bulk_row__job=job, kind=RequestKind.SUBMIT)
    assert sorted(submits.values_list("bulk_row__row_number", flat=True)) == [2, 3, 4]
    settle_all()
    page = http.get(reverse("relationships:bulk_detail", args=[job.pk])).content.decode()
    job.refresh_from_db()
    assert job.status == BulkStatus.DONE
    states = {o.row.row_number: o.state for o in bulk.row_outcomes(job)}
    assert [states[n] for n in (2, 3, 4, 5, 6)] == ["linked", "linked", "linked", "error", "not_chosen"]
    assert "Download the outcome report" in page

    # The register: clients created (or found) with their links, and the other agent's link ended at the ATO.
    practice = ato.practice
    linked = Client.objects.get(practice=practice, tfn_hash=tfn_lookup_hash(a["tfn"]))
    assert linked.family_name == a["family_name"] and linked.date_of_birth == date.fromisoformat(a["birth_date"])
    assert Client.objects.filter(practice=practice, abn=company["abn"]).exists()
    assert not Client.objects.filter(practice=practice, tfn_hash=tfn_lookup_hash(unchosen["tfn"])).exists()
    assert Link.objects.current().filter(practice=practice).count() == 3
    mine = ato.query(
        "SELECT t.tfn, g.tan FROM reg_links l JOIN reg_taxpayers t ON t.id = l.taxpayer_id JOIN reg_agents g "
        "ON g.id = l.agent_id WHERE l.end_date IS NULL AND t.tfn IN (?, ?)",
        a["tfn"],
        taken["tfn"],
    )
    assert sorted(m["tan"] for m in mine) == [AGENT_TAN, AGENT_TAN]  # the other agent's link has ended

    report = http.get(reverse("relationships:bulk_report", args=[job.pk]))
    text = b"".join(report.streaming_content).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["row", "name", "identifier", "outcome", "message"]
    by_row = {line[0]: line for line in lines[1:]}
    assert by_row["2"][2] == f"TFN *** *** {a['tfn'][-3:]}" and by_row["2"][3] == "Linked"
    assert by_row["4"][2] == f"ABN {company['abn']}"
    assert by_row["5"][3] == "Error" and "does not match" in by_row["5"][4]
    assert by_row["6"][3] == "Not chosen" and by_row["8"][3] == "Error"
    for action in ("bulk_uploaded", "bulk_submitted", "bulk_report_downloaded"):
        assert AuditEvent.objects.filter(action=f"relationships.{action}", actor=agent).count() == 1

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for tfn in tfns:
        for form in (tfn, spaced(tfn)):
            assert form not in page and form not in text and form not in logged


@pytest.mark.django_db(transaction=True)
def test_the_ato_down_is_said_plainly_and_the_rows_can_be_checked_again(
    ato: Ato, agent: User, login: Any, settings: Any
):
    settings.GATEWAY_MAX_ATTEMPTS = 2
    [t] = ato.query(
        f"SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.death_date IS NULL AND {NOBODY} "  # noqa: S608
        "ORDER BY t.id LIMIT 1"
    )
    http = login(agent)
    ato.sandbox.faults(outage_seconds=300)
    upload(http, to_csv([person(t)]))
    job = BulkJob.objects.get()
    settle_all()
    page = http.get(reverse("relationships:bulk_detail", args=[job.pk])).content.decode()
    [outcome] = bulk.row_outcomes(job)
    assert outcome.state == "error" and outcome.unsent
    assert "The ATO could not be reached" in outcome.words[0]
    assert "Check it again" in page
    assert not Client.objects.filter(practice=ato.practice).exists()

    ato.sandbox.clear_faults()
    http.post(reverse("relationships:bulk_check_again", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == BulkStatus.VALIDATING
    settle_all()
    http.get(reverse("relationships:bulk_progress", args=[job.pk]))
    job.refresh_from_db()
    [outcome] = bulk.row_outcomes(job)
    assert job.status == BulkStatus.REVIEW and outcome.state == "ok" and outcome.row.chosen
    assert AuditEvent.objects.filter(action="relationships.bulk_checked_again").count() == 1


# --- without the ATO ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_read_only_staff_see_a_bulk_link_but_cannot_act(agent: User, reader: User, login: Any):
    upload(login(agent), to_csv([["", "", "Nobody", "", "", "", ""]]))
    job = BulkJob.objects.get()
    assert job.status == BulkStatus.REVIEW  # nothing could be asked
    http = login(reader)
    listing = http.get(reverse("relationships:bulk_list")).content.decode()
    assert "links.csv" in listing and "Upload and check" not in listing
    detail = http.get(reverse("relationships:bulk_detail", args=[job.pk])).content.decode()
    assert "The row needs a TFN, an ABN or a WPN." in detail and "Link the chosen rows" not in detail
    row = job.rows.get()
    assert http.post(reverse("relationships:bulk_submit", args=[job.pk]), {"rows": [row.pk]}).status_code == 403
    assert http.post(reverse("relationships:bulk_check_again", args=[job.pk])).status_code == 403
    assert upload(http, to_csv([["", "", "Nobody", "", "", "", ""]])).status_code == 403
    assert BulkJob.objects.count() == 1


@pytest.mark.django_db
def test_a_bad_file_is_refused_whole_and_nothing_is_stored(agent: User, login: Any, monkeypatch: Any):
    http = login(agent)
    monkeypatch.setattr(bulk, "MAX_ROWS", 2)
    cases = {
        b"tfn,family_name\x00\n": "binary data",
        b"name,phone\nSmith,0298765432\n": "Needed: at least one of tfn, abn or wpn",
        b"": "The submitted file is empty.",
        to_csv([["", "", "A", "", "", "", ""]] * 3): "more than 2 rows",
        b'tfn,family_name\n"123,Smith\n': "not valid CSV",
        to_csv([]): "no rows",
    }
    for content, message in cases.items():
        response = upload(http, content)
        assert response.status_code == 200
        assert message in response.content.decode(), (content, response.content.decode())
    monkeypatch.setattr(bulk, "MAX_BYTES", 100)
    assert "the limit is 0 KB" in upload(http, to_csv([["", "", "Smith", "", "", "", ""]] * 5)).content.decode()
    assert not BulkJob.objects.exists() and not BulkRow.objects.exists()


def test_rows_are_checked_before_asking():
    text = to_csv(
        [
            ["123456782", "", "Smith", "Ann", "1980-02-03", "", "PAYGW on AS 002; ITX"],
            ["123456782", "", "Smith", "Ann", "03/02/1980", "", ""],  # the same TFN again
            ["", "53004085616", "", "", "", "Harbour Pty Ltd", "AS"],
            ["", "53004085617", "", "", "", "Harbour Pty Ltd", ""],
            ["123456782", "", "Smith", "", "", "", ""],
            ["", "", "", "", "", "Acme", "ITX 001"],
            ["", "53004085616", "Smith", "", "1980-02-03", "Acme", "GST on FBT"],
        ]
    ).decode()
    rows = bulk.read_rows(text)
    assert [r.row_number for r in rows] == [2, 3, 4, 5, 6, 7, 8]
    first = rows[0]
    assert (first.identifier_kind, first.identifier, first.birth_date) == ("TFN", "123456782", date(1980, 2, 3))
    assert first.links == [("ROLE", "AS", "002", "PAYGW"), ("ACCOUNT", "ITX", "", "")] and not first.problems
    assert first.label == "SMITH, Ann"
    assert rows[1].problems == ["The same TFN as row 2: one row a client."]
    assert rows[2].links == [("ACCOUNT", "AS", "001", "")] and rows[2].identifier_kind == "ABN" and not rows[2].problems
    assert "ABN check" in rows[3].problem and rows[3].identifier_last3 == "617"
    assert "needs a date of birth" in rows[4].problem
    assert "needs a TFN, an ABN or a WPN" in rows[5].problem and "only an activity statement" in rows[5].problem
    assert "not both" in rows[6].problem and "not a level" in rows[6].problem
    assert bulk.parse_levels("") == [("CLIENT", "", "", "")]
    assert bulk.parse_levels("client; gst on as 001") == [("CLIENT", "", "", ""), ("ROLE", "AS", "001", "GST")]
    with pytest.raises(ValueError, match="the role must be one of"):
        bulk.parse_levels("XYZ on AS 001")


@pytest.mark.django_db
def test_read_only_staff_reach_the_bulk_links_and_reconciliation_from_relationships(reader: User, login: Any):
    home = login(reader).get(reverse("relationships:home")).content.decode()
    assert reverse("relationships:bulk_list") in home and reverse("relationships:reconcile") in home
    assert reverse("relationships:bulk_upload") not in home
