"""Issue 18, item 8, for each answer handler demographics registers: an answer delivered twice (a console resend
after a handler failure, a pulled response delivered again) changes nothing the second time. The answers are
stored on their messages as a worker stores them and settled through the gateway (``answer_settle``), once and
again; without the stand-in ATO, so they run in seconds. Between the two deliveries the row is moved on by hand
where a second run of the handler would show (a status put back), so each test sees whether the handler ran again,
not only that it happened to write the same values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from ato_gateway.answers import answer_settle, answers_settle_many, outcome_of
from ato_gateway.api import Question, QuestionState, Subject
from ato_gateway.wire.documents import cudtl, cufi
from ato_gateway.wire.documents.common import ClientIdentifier, PersonName
from clients.models import Client, ClientKind
from demographics import addresses, bank, profile, services
from demographics.models import (
    AddressChange,
    AddressChangeStatus,
    BankChange,
    BankChangeStatus,
    DetailsSnapshot,
    ProfileChange,
)
from portal.models import AuditEvent, Practice, User
from tests.questions import event, fabricate_question

pytestmark = pytest.mark.django_db
REFUSAL = [event("CMN.ATO.GEN.EM0001", "Error", "The client's details do not match the ATO's records.")]


@pytest.fixture
def client(practice: Practice) -> Client:
    client = Client(practice=practice, kind=ClientKind.INDIVIDUAL, family_name="Nguyen", given_names="Olivia")
    client.set_tfn("123456782")
    client.set_names()
    client.save()
    return client


def _waiting(question: Question) -> Question:
    """The question as the gateway finds it when the answer arrives: waiting, its message holding the answer."""
    Question.objects.filter(pk=question.pk).update(state=QuestionState.WAITING)
    question.refresh_from_db()
    return question


def _deliver(question: Question) -> None:
    message = question.message
    message.refresh_from_db()
    answer_settle(message, outcome_of(message))


def _audits() -> list[tuple[str, str]]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", "object_id"))


def test_a_bank_changes_refused_submit_delivered_twice_is_audited_once(
    practice: Practice, agent: User, admin: User, client: Client
) -> None:
    now = timezone.now()
    change = BankChange.objects.create(
        practice=practice,
        client=client,
        status=BankChangeStatus.SUBMITTING,
        bsb="062000",
        number="12345678",
        account_name="Olivia Nguyen",
        proposed_by=agent,
        proposed_at=now,
        expires_at=now + timedelta(days=BankChange.EXPIRES_AFTER_DAYS),
        approved_by=admin,
        approved_at=now,
    )
    account = cufi.FinancialInstitutionAccount(bsb="062000", number="12345678", name="Olivia Nguyen")
    question = fabricate_question(
        practice=practice,
        by=admin,
        purpose=bank.PURPOSE,
        request=cufi.SubmitRequest(client=ClientIdentifier.of(tfn="123456782"), bank_account=account),
        events=REFUSAL,
        state=QuestionState.REFUSED,
        about=Subject("demographics.bankchange", str(change.pk), "Bank change"),
    )
    BankChange.objects.filter(pk=change.pk).update(submit_question=question)

    _deliver(_waiting(question))
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.REFUSED
    before = _audits()
    assert before == [("demographics.bank_submit_refused", str(change.pk))]
    BankChange.objects.filter(pk=change.pk).update(status=BankChangeStatus.SUBMITTING)  # would be refused again

    _deliver(question)

    assert _audits() == before
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.SUBMITTING


def test_an_address_changes_refused_validation_delivered_twice_changes_nothing(
    practice: Practice, agent: User, client: Client
) -> None:
    change = AddressChange.objects.create(
        practice=practice,
        client=client,
        created_by=agent,
        line1="1 George St",
        locality="SYDNEY",
        state="NSW",
        postcode="2000",
    )
    question = fabricate_question(
        practice=practice,
        by=agent,
        purpose=addresses.PURPOSE,
        request=addresses._document(change, addresses.cuaddr.ValidateRequest),
        events=REFUSAL,
        state=QuestionState.REFUSED,
        about=addresses._subject(change),
    )
    AddressChange.objects.filter(pk=change.pk).update(validate_question=question)

    _deliver(_waiting(question))
    assert AddressChange.objects.get(pk=change.pk).status == AddressChangeStatus.REFUSED
    AddressChange.objects.filter(pk=change.pk).update(status=AddressChangeStatus.VALIDATING)

    _deliver(question)

    assert AddressChange.objects.get(pk=change.pk).status == AddressChangeStatus.VALIDATING


def test_a_profile_changes_refused_submit_delivered_twice_changes_nothing(
    practice: Practice, agent: User, client: Client
) -> None:
    change = ProfileChange.objects.create(
        practice=practice,
        client=client,
        kind=ProfileChange.Kind.DETAILS,
        created_by=agent,
        status=AddressChangeStatus.SUBMITTING,
        values={"family_name": "Tran", "given_name": "Olivia"},
    )
    question = fabricate_question(
        practice=practice,
        by=agent,
        purpose=profile.PURPOSE,
        request=profile._document(change, submit=True),
        events=REFUSAL,
        state=QuestionState.REFUSED,
        about=profile._subject(change),
    )
    ProfileChange.objects.filter(pk=change.pk).update(submit_question=question)

    _deliver(_waiting(question))
    assert ProfileChange.objects.get(pk=change.pk).status == AddressChangeStatus.REFUSED
    ProfileChange.objects.filter(pk=change.pk).update(status=AddressChangeStatus.SUBMITTING)

    _deliver(question)

    assert ProfileChange.objects.get(pk=change.pk).status == AddressChangeStatus.SUBMITTING


def _deliver_many(*questions: Question) -> None:
    """As the gateway records a batch's outcomes: the purposes that take their answers many at a time first."""
    settling = []
    for question in questions:
        question.message.refresh_from_db()
        settling.append((question.message, outcome_of(question.message)))
    for message, outcome in answers_settle_many(settling):
        answer_settle(message, outcome)


@pytest.mark.parametrize("deliver", [_deliver, _deliver_many], ids=["one", "many"])
def test_a_snapshots_answer_delivered_twice_changes_nothing(
    practice: Practice, agent: User, client: Client, deliver: Any
) -> None:
    """An answered Get fills its snapshot once; a 2017 Get refused for its version asks the 2016 one once: one
    answer at a time, and a batch's answers handed to the snapshots' ``many`` handler."""
    about = Subject("demographics.details", str(client.pk), "Nguyen")
    ident = ClientIdentifier.of(tfn="123456782")
    answered = fabricate_question(
        practice=practice,
        by=agent,
        purpose=services.PURPOSE,
        request=cudtl.GetRequest2016(client=ident),
        response=cudtl.GetResponse2016(
            client=cudtl.ClientProfile2016(entity_type="IND", person_name=PersonName("Nguyen", "Olivia"))
        ),
        about=about,
    )
    snapshot = DetailsSnapshot.objects.create(client=client, question=_waiting(answered))
    refused = fabricate_question(
        practice=practice,
        by=agent,
        purpose=services.PURPOSE,
        request=cudtl.GetRequest(client=ident),
        events=[event("CMN.ATO.GEN.XML03", "Error", "The message version is not supported")],
        state=QuestionState.REFUSED,
        about=about,
    )
    DetailsSnapshot.objects.create(client=client, question=_waiting(refused))

    deliver(answered)
    deliver(refused)
    snapshot.refresh_from_db()
    assert snapshot.answered_at is not None and snapshot.facts
    before: list[Any] = list(DetailsSnapshot.objects.order_by("pk").values_list("pk", "answered_at", "facts"))
    assert len(before) == 3  # the 2016 Get asked once
    DetailsSnapshot.objects.filter(pk=snapshot.pk).update(answered_at=None, facts=None)  # would be filled again

    deliver(answered)
    deliver(refused)

    after = list(DetailsSnapshot.objects.order_by("pk").values_list("pk", "answered_at", "facts"))
    assert after == [(snapshot.pk, None, None), *before[1:]]
    assert Question.objects.filter(service_action=cudtl.GetRequest2016.SERVICE_ACTION).count() == 2
