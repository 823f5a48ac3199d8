"""What the superannuation tests share: a fund the stand-in ATO knows (the test practice's ABN made a fund of its
register), members made from the stand-in's people as a member file, and running reports the whole way (the
worker builds the batches, the gateway pushes them and pulls their results)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from ato_gateway import services as gateway
from ato_gateway.models import MessageStatus, OutboxMessage
from portal.models import User
from superannuation import services
from superannuation.importing import COLUMNS
from superannuation.models import MemberImport, Report, SuperFund
from tests.ato_fixtures import DEMO_ABN, Ato
from tests.conftest import run_worker_burst
from tests.gateway_fixtures import pump


def fund_at_ato(ato: Ato, user: User | None = None, *, name: str = "Harbour Members Super") -> SuperFund:
    answer: dict[str, Any] = ato.sandbox.control("POST", "fund", json={"abn": DEMO_ABN, "name": name})
    return services.fund_create(user=user or ato.user, name=name, abn=DEMO_ABN, usi=str(answer["usi"]))


def people(ato: Ato, count: int, *, quoted: bool = True, offset: int = 0) -> list[dict[str, Any]]:
    """Living individuals whose family name and date of birth no one else shares, so that they match alone."""
    return ato.query(
        "SELECT t.* FROM reg_taxpayers t WHERE t.entity = 'IND' AND t.quoted_tfn_for_super = ? AND NOT EXISTS "
        "(SELECT 1 FROM reg_taxpayers u WHERE u.id != t.id AND u.birth_date = t.birth_date "
        "AND u.family_name = t.family_name) ORDER BY t.id LIMIT ? OFFSET ?",
        1 if quoted else 0,
        count,
        offset,
    )


def row(person: dict[str, Any], number: str, **change: str) -> dict[str, str]:
    values = {
        "member_number": number,
        "family_name": person["family_name"],
        "given_names": person["given_name"] or "",
        "date_of_birth": person["birth_date"],
        "tfn": person["tfn"] or "",
        "opened_on": "2020-07-01",
    }
    values.update(change)
    return values


def member_file(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
    writer.writeheader()
    for values in rows:
        writer.writerow(values)
    return out.getvalue().encode()


def wrong_tfn(tfn: str) -> str:
    """Another valid TFN (the stand-in corrects a wrong one when the other details match)."""
    from stdnum.au import tfn as check

    body = tfn[:-1]
    for last in "0123456789":
        if last != tfn[-1] and check.is_valid(body + last):
            return body + last
    for n in range(100000000, 100001000):  # pragma: no cover - a TFN whose last digit alone cannot vary
        if check.is_valid(str(n)):
            return str(n)
    raise AssertionError("no valid TFN found")


def import_members(user: User, fund: SuperFund, content: bytes, filename: str = "members.csv") -> MemberImport:
    job = services.member_import_start(user=user, fund=fund, filename=filename, content=content)
    run_worker_burst()
    job.refresh_from_db()
    assert job.finished_at is not None
    return job


def settle(ato: Ato, timeout: float = 120) -> None:
    """Run the worker and the gateway until every report is finished: build the batches, push them, pull their
    results (the scheduled pull, called here), and let the handlers apply them."""
    practice = ato.practice

    def pushed() -> bool:
        return not OutboxMessage.objects.filter(
            practice=practice, status__in=[MessageStatus.PENDING, MessageStatus.RETRY, MessageStatus.SENDING]
        ).exists()

    for _ in range(int(timeout)):
        run_worker_burst()
        pump(pushed, timeout=timeout)
        gateway.outbox_pull(practice.pk, worker="test")
        run_worker_burst()
        if not Report.objects.filter(fund__practice=practice, finished_at__isnull=True).exists():
            return
    raise AssertionError("the reports did not finish in time")


def pushed_only(ato: Ato, timeout: float = 60) -> None:
    """Build and push, but do not pull: the results wait at the ATO."""
    run_worker_burst()
    pump(
        lambda: (
            not OutboxMessage.objects.filter(
                practice=ato.practice, status__in=[MessageStatus.PENDING, MessageStatus.RETRY, MessageStatus.SENDING]
            ).exists()
        ),
        timeout=timeout,
    )


TODAY = date(2026, 11, 30)  # the sandbox's business date (set by the ato fixture)
