"""The watch's answers taken a batch at a time (``drift.snapshots_answered``, the purpose's ``many``) do what
``on_snapshot`` does one answer at a time: each snapshot filled, compared with the one before at its client, and an
alert only for a change; and a batch costs the same queries whatever its size. Answers made by hand (no stand-in
ATO), as a worker's batch hands them on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ato_gateway import api
from ato_gateway.wire.documents import cudtl, cufi
from ato_gateway.wire.documents.common import ClientIdentifier, Period
from clients.models import Client
from demographics import drift, services
from demographics.models import SNAPSHOT_MODELS, BankAccountsSnapshot, DetailsSnapshot, DriftAlert
from portal.models import Practice
from tests.questions import event, fabricate_question

pytestmark = pytest.mark.django_db
Answer = tuple[api.Question, api.Reply[Any]]


def _client(practice: Practice, name: str) -> Client:
    return Client.objects.create(practice=practice, kind="individual", family_name=name)


def _asked(client: Client, number: str) -> tuple[BankAccountsSnapshot, Answer]:
    """A CUFI List of the client answered with one current account, and its snapshot waiting for the answer."""
    account = cufi.FinancialInstitutionAccountRecord(
        bsb="062000", number=number, name=client.family_name, period=Period(date(2024, 7, 1))
    )
    question = fabricate_question(
        practice=client.practice,
        by=None,
        purpose=services.PURPOSE,
        request=cufi.ListRequest(client=ClientIdentifier.of(tfn="123456782"), include_history=True),
        response=cufi.ListResponse(accounts=[account]),
        about=api.Subject("demographics.bank", str(client.pk), client.family_name),
    )
    snapshot = BankAccountsSnapshot.objects.create(client=client, question=question)
    return snapshot, (question, api.reply(question))


def _many(answers: list[Answer]) -> None:
    drift.snapshots_answered(answers)


def _one_at_a_time(answers: list[Answer]) -> None:
    for question, reply in answers:
        services.on_snapshot(question, reply)


@pytest.mark.parametrize("handle", [_many, _one_at_a_time], ids=["many", "one_at_a_time"])
def test_each_snapshot_is_filled_and_only_a_change_is_an_alert(
    practice: Practice, handle: Callable[[list[Answer]], None]
) -> None:
    same, changed, first = (_client(practice, name) for name in ("ADAMS", "BROWN", "CHEN"))
    handle([_asked(same, "11111111")[1], _asked(changed, "22222222")[1]])  # the night before
    asked = [_asked(same, "11111111"), _asked(changed, "87654321"), _asked(first, "33333333")]
    snapshots = [snapshot for snapshot, _ in asked]
    handle([answer for _, answer in asked])
    for snapshot in snapshots:
        snapshot.refresh_from_db()
        assert snapshot.answered_at is not None
        [fact] = snapshot.facts or []
        assert fact["current"] and fact["bsb"] == "062000"
    [alert] = DriftAlert.objects.all()
    assert (alert.client_id, alert.practice_id, alert.service, alert.urgent) == (changed.pk, practice.pk, "bank", True)
    assert [line[:27] for line in alert.before] == ["BSB 062-000 account …222 BR"]
    assert [line[:27] for line in alert.after] == ["BSB 062-000 account …321 BR"]


def test_a_second_answer_of_a_client_in_one_batch_is_compared_with_the_first(practice: Practice) -> None:
    client = _client(practice, "ADAMS")
    drift.snapshots_answered([_asked(client, "11111111")[1], _asked(client, "22222222")[1]])
    [alert] = DriftAlert.objects.all()
    assert [line[:27] for line in alert.after] == ["BSB 062-000 account …222 AD"]


def test_a_batch_costs_the_queries_of_a_few_answers(practice: Practice) -> None:
    def queries(n: int) -> int:
        clients = [_client(practice, f"CLIENT{i}") for i in range(n)]
        drift.snapshots_answered([_asked(c, "11111111")[1] for c in clients])
        answers = [_asked(c, "11111111")[1] for c in clients]
        with CaptureQueriesContext(connection) as captured:
            drift.snapshots_answered(answers)
        return len(captured)

    assert queries(20) == queries(2)
    assert not DriftAlert.objects.exists()


def test_a_refusal_in_a_batch_asks_again_only_for_a_2017_get(practice: Practice) -> None:
    client = _client(practice, "ADAMS")
    refused = []
    for service, request in (
        ("bank", cufi.ListRequest(client=ClientIdentifier.of(tfn="123456782"))),
        ("details", cudtl.GetRequest(client=ClientIdentifier.of(tfn="123456782"))),
    ):
        question = fabricate_question(
            practice=practice,
            by=None,
            purpose=services.PURPOSE,
            request=request,
            events=[event("CMN.ATO.GEN.XML03", "Error", "The message version is not supported")],
            state=api.QuestionState.REFUSED,
            about=api.Subject(f"demographics.{service}", str(client.pk), "ADAMS"),
        )
        SNAPSHOT_MODELS[service].objects.create(client=client, question=question)
        refused.append((question, api.reply(question)))
    drift.snapshots_answered(refused)
    assert not BankAccountsSnapshot.objects.filter(answered_at__isnull=False).exists()
    assert BankAccountsSnapshot.objects.count() == 1
    [again] = DetailsSnapshot.objects.exclude(question=refused[1][0])
    assert again.question.service_action == cudtl.GetRequest2016.SERVICE_ACTION
