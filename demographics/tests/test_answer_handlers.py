"""Demographics' answer handlers, each handed an answer built by hand (no stand-in ATO: the flows through it are in
test_snapshots.py, test_addresses.py, test_profile.py and test_bank.py): what a Validate's and a Submit's answer,
a refusal and a failure do to a change, what a snapshot records of a list page by page, when a refused CUDTL Get is
asked again in its 2016 version, and that an answer delivered twice, through the gateway's own settling, changes
nothing. They are `make mutate`'s "demographics-answers" tests, so they must stay fast."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import django_rq
import pytest
from django.core import mail
from django.utils import timezone

from ato_gateway import api
from ato_gateway.answers import answer_settle
from ato_gateway.handlers import Outcome
from ato_gateway.wire import registry
from ato_gateway.wire.documents import codec, cuaddr, cudtl, cufi
from ato_gateway.wire.documents.common import Period
from clients.models import AccountKind, Client, ClientAccount, ClientKind
from demographics import addresses, bank, drift, profile, services
from demographics.models import (
    AddressBulk,
    AddressChange,
    AddressChangeStatus,
    AddressesSnapshot,
    BankChange,
    BankChangeStatus,
    DetailsSnapshot,
    DriftAlert,
    ProfileChange,
    Service,
)
from portal.models import AuditEvent, Practice, User
from tests.test_redis_down import redis_down  # noqa: F401 - the fixture: Redis down the real way

pytestmark = pytest.mark.django_db

ADDRESS = {"usage": "POS", "line1": "1 Harbour St", "locality": "Sydney", "state": "NSW", "postcode": "2000"}
PHONE = "0298765432"
EMAIL = "olivia@example.com.au"


def _client(practice: Practice) -> Client:
    client = Client(practice=practice, kind=ClientKind.INDIVIDUAL, family_name="Nguyen", given_names="Olivia")
    client.display_name = client.sort_name = "Olivia Nguyen"
    client.abn = "53004085616"
    client.save()
    return client


def _answer(
    document: codec.Document | None = None, *, codes: tuple[str, ...] = (), failure: str = ""
) -> api.Reply[Any]:
    items = [api.Item(code=code, severity="Error", text=f"Refused: {code}") for code in codes]
    return api.Reply(document=document, items=items, failure=failure, failure_code="X" if failure else "")


ANSWERED = _answer(cufi.ValidateResponse(bank_account=None))  # type: ignore[arg-type]
REFUSED = _answer(codes=("CMN.ATO.CUFI.FI01",))
FAILED = _answer(failure="The ATO did not answer.")
# The gateway's failure with the ATO's refusal in it: the refusal is the answer.
FAILED_WITH_ERRORS = _answer(codes=("CMN.ATO.GEN.EBMS",), failure="Refused.")


def _events(kind: str, pk: int) -> list[tuple[str, int | None, int | None]]:
    rows = AuditEvent.objects.filter(object_type=kind, object_id=str(pk)).order_by("pk")
    return [(e.action, e.actor_id, e.practice_id) for e in rows]


# --- a bank account change ---


def _bank_change(practice: Practice, agent: User, status: BankChangeStatus) -> BankChange:
    now = timezone.now()
    change = BankChange.objects.create(
        practice=practice,
        client=_client(practice),
        status=status,
        bsb="062000",
        number="12345678",
        account_name="Olivia Nguyen",
        proposed_by=agent,
        proposed_at=now,
        expires_at=now + timedelta(days=7),
        numbers_on_file=[PHONE],
    )
    account = cufi.FinancialInstitutionAccount(bsb="062000", number="12345678", name="Olivia Nguyen")
    ident = services.client_identifier(change.client)
    change.validate_question = bank._ask(change, cufi.ValidateRequest(client=ident, bank_account=account))
    if status == BankChangeStatus.SUBMITTING:
        change.submit_question = bank._ask(change, cufi.SubmitRequest(client=ident, bank_account=account))
    change.save()
    return change


def _email_on_file(client: Client) -> None:
    question = api.ask(
        services.request_for(Service.ADDRESSES, client),
        practice=client.practice,
        by=None,
        purpose=services.PURPOSE,
        about=services.subject_for(Service.ADDRESSES, client),
    )
    facts = [{"usage": "EML", "value": EMAIL, "current": True, "summary": f"Email: {EMAIL}"}]
    AddressesSnapshot.objects.create(client=client, question=question, answered_at=timezone.now(), facts=facts)


BANK = "demographics.BankChange"


@pytest.mark.parametrize(
    ("reply", "status"),
    [(ANSWERED, BankChangeStatus.PROPOSED), (REFUSED, BankChangeStatus.REFUSED), (FAILED_WITH_ERRORS, "refused")],
)
def test_the_atos_check_of_a_proposed_account(
    practice: Practice, agent: User, reply: api.Reply[Any], status: str
) -> None:
    change = _bank_change(practice, agent, BankChangeStatus.VALIDATING)
    assert change.validate_question is not None
    bank.on_bank_answer(change.validate_question, reply)
    assert BankChange.objects.get(pk=change.pk).status == status
    assert _events(BANK, change.pk) == [(f"demographics.bank_validate_{status}", None, practice.pk)]


def test_a_failure_is_no_answer_to_a_bank_change(
    practice: Practice, agent: User, django_capture_on_commit_callbacks: Any
) -> None:
    for status in (BankChangeStatus.VALIDATING, BankChangeStatus.SUBMITTING):
        change = _bank_change(practice, agent, status)
        question = change.submit_question or change.validate_question
        assert question is not None
        with django_capture_on_commit_callbacks(execute=True):
            bank.on_bank_answer(question, FAILED)
        assert BankChange.objects.get(pk=change.pk).status == status and _events(BANK, change.pk) == []
    assert mail.outbox == []


def test_an_accepted_account_is_told_to_the_client_by_email(
    practice: Practice, agent: User, django_capture_on_commit_callbacks: Any
) -> None:
    change = _bank_change(practice, agent, BankChangeStatus.SUBMITTING)
    _email_on_file(change.client)
    assert change.submit_question is not None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        bank.on_bank_answer(change.submit_question, _answer(cufi.SubmitResponse(bank_account=None)))  # type: ignore[arg-type]
        assert mail.outbox == []  # only once the answer is committed
    assert len(callbacks) == 1
    stored = BankChange.objects.get(pk=change.pk)
    assert (stored.status, stored.notified_to) == (BankChangeStatus.ACCEPTED, EMAIL)
    [sent] = mail.outbox
    assert sent.to == [EMAIL] and sent.subject == "Your bank account for tax refunds has changed"
    assert f"Dear {change.client.display_name}," in sent.body and "BSB 062-000, account ending 678" in sent.body
    assert f"{practice.name} has changed" in sent.body
    assert _events(BANK, change.pk) == [
        ("demographics.bank_submit_accepted", None, practice.pk),
        ("demographics.bank_notify", None, practice.pk),
    ]
    notified = AuditEvent.objects.get(action="demographics.bank_notify")
    assert notified.details == {"to_domain": "example.com.au"}


def test_an_accepted_account_without_an_email_on_file_is_audited_as_not_told(
    practice: Practice, agent: User, django_capture_on_commit_callbacks: Any
) -> None:
    change = _bank_change(practice, agent, BankChangeStatus.SUBMITTING)
    assert change.submit_question is not None
    with django_capture_on_commit_callbacks(execute=True):
        bank.on_bank_answer(change.submit_question, _answer(cufi.SubmitResponse(bank_account=None)))  # type: ignore[arg-type]
    assert mail.outbox == [] and BankChange.objects.get(pk=change.pk).notified_to == ""
    assert _events(BANK, change.pk) == [
        ("demographics.bank_submit_accepted", None, practice.pk),
        ("demographics.bank_notify_missing", None, practice.pk),
    ]
    missing = AuditEvent.objects.get(action="demographics.bank_notify_missing")
    assert missing.details == {"bsb": "062000", "number": "…678", "client": change.client_id}


def test_a_refused_submit_tells_no_one(
    practice: Practice, agent: User, django_capture_on_commit_callbacks: Any
) -> None:
    change = _bank_change(practice, agent, BankChangeStatus.SUBMITTING)
    _email_on_file(change.client)
    assert change.submit_question is not None
    with django_capture_on_commit_callbacks(execute=True):
        bank.on_bank_answer(change.submit_question, REFUSED)
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.REFUSED and mail.outbox == []
    assert _events(BANK, change.pk) == [("demographics.bank_submit_refused", None, practice.pk)]


def test_a_late_answer_to_the_check_leaves_an_approved_change_as_it_is(practice: Practice, agent: User) -> None:
    """Only a change still being checked takes the check's answer; the Submit's only a change sent."""
    change = _bank_change(practice, agent, BankChangeStatus.SUBMITTING)
    assert change.validate_question is not None and change.submit_question is not None
    bank.on_bank_answer(change.validate_question, REFUSED)
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.SUBMITTING
    BankChange.objects.filter(pk=change.pk).update(status=BankChangeStatus.EXPIRED)
    bank.on_bank_answer(change.submit_question, REFUSED)
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.EXPIRED


def test_an_answer_about_no_change_is_dropped(practice: Practice, agent: User) -> None:
    change = _bank_change(practice, agent, BankChangeStatus.VALIDATING)
    question = change.validate_question
    assert question is not None
    question.subject_id = str(change.pk + 1000)
    bank.on_bank_answer(question, ANSWERED)
    addresses.on_address_answer(question, ANSWERED)
    profile.on_profile_answer(question, ANSWERED)
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.VALIDATING
    assert not AuditEvent.objects.filter(action__startswith="demographics.bank_validate").exists()


# --- an address change, a details or contact change ---


def _address_change(practice: Practice, agent: User, *, bulk: bool = False, submitted: bool = False) -> AddressChange:
    client = _client(practice)
    group = AddressBulk.objects.create(practice=practice, created_by=agent, **ADDRESS) if bulk else None
    change = AddressChange.objects.create(practice=practice, client=client, created_by=agent, bulk=group, **ADDRESS)
    change.validate_question = api.ask(
        addresses._document(change, cuaddr.ValidateRequest),
        practice=practice,
        by=agent,
        purpose=addresses.PURPOSE,
        about=addresses._subject(change),
    )
    if submitted:
        addresses._submit(change, by=agent)
    change.save()
    return change


def _profile_change(practice: Practice, agent: User, *, submitted: bool = False) -> ProfileChange:
    change = ProfileChange.objects.create(
        practice=practice,
        client=_client(practice),
        kind=ProfileChange.Kind.DETAILS,
        created_by=agent,
        values={"family_name": "Nguyen", "given_name": "Olivia"},
    )
    change.validate_question = api.ask(
        profile._document(change, submit=False),
        practice=practice,
        by=agent,
        purpose=profile.PURPOSE,
        about=profile._subject(change),
    )
    if submitted:
        change.submit_question = api.ask(
            profile._document(change, submit=True),
            practice=practice,
            by=agent,
            purpose=profile.PURPOSE,
            about=profile._subject(change),
        )
        change.status = AddressChangeStatus.SUBMITTING
    change.save()
    return change


OUTCOMES = [
    (False, ANSWERED, AddressChangeStatus.VALIDATED),
    (True, ANSWERED, AddressChangeStatus.ACCEPTED),
    (False, REFUSED, AddressChangeStatus.REFUSED),
    (True, REFUSED, AddressChangeStatus.REFUSED),
    (False, FAILED, AddressChangeStatus.FAILED),
    (True, FAILED, AddressChangeStatus.FAILED),
    (True, FAILED_WITH_ERRORS, AddressChangeStatus.REFUSED),
]


@pytest.mark.parametrize(("submitted", "reply", "status"), OUTCOMES)
def test_an_address_changes_answers(
    practice: Practice, agent: User, submitted: bool, reply: api.Reply[Any], status: str
) -> None:
    change = _address_change(practice, agent, submitted=submitted)
    question = change.submit_question if submitted else change.validate_question
    assert question is not None
    addresses.on_address_answer(question, reply)
    assert AddressChange.objects.get(pk=change.pk).status == status


@pytest.mark.parametrize(("submitted", "reply", "status"), OUTCOMES)
def test_a_details_changes_answers(
    practice: Practice, agent: User, submitted: bool, reply: api.Reply[Any], status: str
) -> None:
    change = _profile_change(practice, agent, submitted=submitted)
    question = change.submit_question if submitted else change.validate_question
    assert question is not None
    profile.on_profile_answer(question, reply)
    assert ProfileChange.objects.get(pk=change.pk).status == status


def _bulk_jobs() -> list[tuple[str | None, tuple[Any, ...]]]:
    queue = django_rq.get_queue("default")
    return [(job.func_name, tuple(job.args)) for job in queue.get_jobs()]


def test_a_bulk_changes_checked_address_is_submitted_by_one_job_after_commit(
    practice: Practice, agent: User, django_capture_on_commit_callbacks: Any
) -> None:
    change = _address_change(practice, agent, bulk=True)
    other = AddressChange.objects.create(
        practice=practice, client=change.client, created_by=agent, bulk=change.bulk, **ADDRESS
    )
    assert change.validate_question is not None and change.bulk is not None
    with django_capture_on_commit_callbacks(execute=True):
        addresses.on_address_answer(change.validate_question, ANSWERED)
        assert _bulk_jobs() == []  # not before the answer is committed
    assert _bulk_jobs() == [("demographics.jobs.address_bulk_submit", (change.bulk.pk,))]
    job = django_rq.get_queue("default").fetch_job(f"demographics-bulk-submit-{change.bulk.pk}")
    assert job is not None
    # A second row checked while that job waits: the waiting job takes it too.
    other.validate_question = api.ask(
        addresses._document(other, cuaddr.ValidateRequest),
        practice=practice,
        by=agent,
        purpose=addresses.PURPOSE,
        about=addresses._subject(other),
    )
    other.save()
    with django_capture_on_commit_callbacks(execute=True):
        addresses.on_address_answer(other.validate_question, ANSWERED)
    assert _bulk_jobs() == [("demographics.jobs.address_bulk_submit", (change.bulk.pk,))]


@pytest.mark.usefixtures("redis_down")
def test_a_checked_row_is_recorded_though_its_job_cannot_be_queued(
    practice: Practice, agent: User, django_capture_on_commit_callbacks: Any
) -> None:
    """With Redis down the answer still commits (the job's push fails after it, and is logged): the bulk change
    is submitted by the next answer's job, or by hand."""
    change = _address_change(practice, agent, bulk=True)
    assert change.validate_question is not None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        addresses.on_address_answer(change.validate_question, ANSWERED)
    assert len(callbacks) == 1
    assert AddressChange.objects.get(pk=change.pk).status == AddressChangeStatus.VALIDATED


@pytest.mark.parametrize("bulk", [False, True])
def test_no_job_for_a_single_change_or_a_refused_row(
    practice: Practice, agent: User, bulk: bool, django_capture_on_commit_callbacks: Any
) -> None:
    change = _address_change(practice, agent, bulk=bulk)
    assert change.validate_question is not None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        addresses.on_address_answer(change.validate_question, REFUSED if bulk else ANSWERED)
    assert callbacks == [] and _bulk_jobs() == []


# --- a snapshot ---


def _listed(*phones: str, start: date = date(2020, 1, 1)) -> list[cuaddr.ListedAddress]:
    return [cuaddr.ListedAddress(usage="PHN", phone=p, period=Period(start=start)) for p in phones]


def _fact(phone: str) -> dict[str, Any]:
    return {
        "usage": "PHN",
        "usage_name": "Phone",
        "value": phone,
        "period": "from 2020-01-01, current",
        "current": True,
        "summary": f"Phone: {phone} (from 2020-01-01, current)",
    }


def _addresses_asked(agent: User, client: Client) -> AddressesSnapshot:
    snapshot = services.snapshot_ask(user=agent, client=client, service=Service.ADDRESSES)
    assert isinstance(snapshot, AddressesSnapshot)
    return snapshot


def test_a_snapshot_records_the_answers_facts_once(practice: Practice, agent: User) -> None:
    client = _client(practice)
    snapshot = _addresses_asked(agent, client)
    before = timezone.now()
    services.on_snapshot(snapshot.question, _answer(cuaddr.ListResponse(addresses=_listed(PHONE))))
    stored = AddressesSnapshot.objects.get(pk=snapshot.pk)
    assert stored.facts == [_fact(PHONE)]
    assert stored.answered_at is not None and before <= stored.answered_at <= timezone.now()
    # The same answer again, or another: the snapshot holds what it was answered with.
    services.on_snapshot(snapshot.question, _answer(cuaddr.ListResponse(addresses=_listed("0400000000"))))
    assert AddressesSnapshot.objects.get(pk=snapshot.pk).facts == [_fact(PHONE)]
    assert AddressesSnapshot.objects.get(pk=snapshot.pk).answered_at == stored.answered_at


@pytest.mark.parametrize(
    "reply",
    [
        REFUSED,
        FAILED,
        _answer(None),
        # A document with the refusal, or with the failure: the refusal is the answer.
        _answer(cuaddr.ListResponse(addresses=_listed(PHONE)), codes=("CMN.ATO.GEN.XML03",)),
        _answer(cuaddr.ListResponse(addresses=_listed(PHONE)), failure="Refused."),
    ],
)
def test_a_refusal_or_a_failure_leaves_the_snapshot_unanswered(
    practice: Practice, agent: User, reply: api.Reply[Any]
) -> None:
    snapshot = _addresses_asked(agent, _client(practice))
    services.on_snapshot(snapshot.question, reply)
    stored = AddressesSnapshot.objects.get(pk=snapshot.pk)
    assert (stored.answered_at, stored.facts) == (None, None)
    assert AddressesSnapshot.objects.count() == 1 and DetailsSnapshot.objects.count() == 0


def test_a_list_longer_than_a_page_is_asked_on_and_answered_with_its_last_page(practice: Practice, agent: User) -> None:
    snapshot = _addresses_asked(agent, _client(practice))
    first = snapshot.question
    services.on_snapshot(first, _answer(cuaddr.ListResponse(addresses=_listed(PHONE), continuation="page-2")))
    stored = AddressesSnapshot.objects.get(pk=snapshot.pk)
    assert stored.question_id != first.pk and stored.answered_at is None and stored.facts == [_fact(PHONE)]
    second = stored.question
    asked = api.question_request(second)
    assert isinstance(asked, cuaddr.ListRequest) and asked.continuation == "page-2"
    assert asked.client == api.question_request(first).client  # type: ignore[attr-defined]
    assert (second.purpose, second.asked_by_id, second.subject_type, second.subject_id) == (
        services.PURPOSE,
        agent.pk,
        first.subject_type,
        first.subject_id,
    )
    # The first page delivered again finds no snapshot: nothing is added twice.
    services.on_snapshot(first, _answer(cuaddr.ListResponse(addresses=_listed(PHONE), continuation="page-2")))
    assert AddressesSnapshot.objects.get(pk=snapshot.pk).facts == [_fact(PHONE)]
    services.on_snapshot(second, _answer(cuaddr.ListResponse(addresses=_listed("0400000000"))))
    stored = AddressesSnapshot.objects.get(pk=snapshot.pk)
    assert stored.facts == [_fact(PHONE), _fact("0400000000")] and stored.answered_at is not None


def test_an_answer_unlike_the_last_one_is_compared_and_alerted(practice: Practice, agent: User) -> None:
    client = _client(practice)
    earlier = _addresses_asked(agent, client)
    services.on_snapshot(earlier.question, _answer(cuaddr.ListResponse(addresses=_listed(PHONE))))
    later = _addresses_asked(agent, client)
    services.on_snapshot(later.question, _answer(cuaddr.ListResponse(addresses=_listed("0400000000"))))
    alert = DriftAlert.objects.get(client=client)
    assert (alert.service, alert.urgent) == (Service.ADDRESSES, False)
    assert alert.after == [_fact("0400000000")["summary"]] and alert.before == [_fact(PHONE)["summary"]]


def _details_asked(agent: User, client: Client) -> DetailsSnapshot:
    snapshot = services.snapshot_ask(user=agent, client=client, service=Service.DETAILS)
    assert isinstance(snapshot, DetailsSnapshot)
    return snapshot


def test_a_cudtl_get_refused_for_its_versions_sake_is_asked_again_in_2016s(practice: Practice, agent: User) -> None:
    client = _client(practice)
    snapshot = _details_asked(agent, client)
    services.on_snapshot(snapshot.question, _answer(codes=("CMN.ATO.GEN.XML03",)))
    newer = DetailsSnapshot.objects.exclude(pk=snapshot.pk).get()
    assert newer.client_id == client.pk and newer.answered_at is None
    assert newer.question.service_action == cudtl.GetRequest2016.SERVICE_ACTION
    assert (newer.question.purpose, newer.question.asked_by_id) == (services.PURPOSE, agent.pk)
    asked = api.question_request(newer.question)
    assert isinstance(asked, cudtl.GetRequest2016) and asked.client == api.question_request(snapshot.question).client  # type: ignore[attr-defined]
    # The 2016 Get refused in its turn: not asked again.
    services.on_snapshot(newer.question, _answer(codes=("CMN.ATO.GEN.XML03",)))
    assert DetailsSnapshot.objects.count() == 2


@pytest.mark.parametrize(
    "codes",
    [("CMN.ATO.AUTH.001",), ("CMN.ATO.GEN.ID01",), ("CMN.ATO.GEN.XML03", "CMN.ATO.AUTH.003"), ()],
)
def test_a_refusal_about_the_client_or_the_practice_is_not_asked_again(
    practice: Practice, agent: User, codes: tuple[str, ...]
) -> None:
    snapshot = _details_asked(agent, _client(practice))
    services.on_snapshot(snapshot.question, _answer(codes=codes) if codes else FAILED)
    assert DetailsSnapshot.objects.count() == 1


def test_a_refused_list_is_not_asked_again(practice: Practice, agent: User) -> None:
    snapshot = _addresses_asked(agent, _client(practice))
    services.on_snapshot(snapshot.question, _answer(codes=("CMN.ATO.GEN.XML03",)))
    assert AddressesSnapshot.objects.count() == 1 and DetailsSnapshot.objects.count() == 0


# --- an answer delivered twice, through the gateway ---


def _settle_twice(question: api.Question, document: codec.Document) -> None:
    action = registry.get(question.service_action)
    outcome = Outcome(
        ok=True,
        kind="user",
        documents={action.response_document: codec.encode(document).decode("utf-8")},
        events=[{"code": "GEN.OK", "severity": "Information", "short_description": "Done."}],
    )
    answer_settle(question.message, outcome)
    answer_settle(question.message, outcome)


def test_a_bank_submits_answer_delivered_twice_changes_nothing_more(
    practice: Practice, agent: User, django_capture_on_commit_callbacks: Any
) -> None:
    change = _bank_change(practice, agent, BankChangeStatus.SUBMITTING)
    _email_on_file(change.client)
    assert change.submit_question is not None
    record = cufi.FinancialInstitutionAccountRecord(
        bsb="062000", number="12345678", name="Olivia Nguyen", period=Period(start=date(2026, 11, 30))
    )
    with django_capture_on_commit_callbacks(execute=True):
        _settle_twice(change.submit_question, cufi.SubmitResponse(bank_account=record))
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.ACCEPTED and len(mail.outbox) == 1
    assert [a for a, _, _ in _events(BANK, change.pk)] == [
        "demographics.bank_submit_accepted",
        "demographics.bank_notify",
    ]


def test_a_snapshots_answer_delivered_twice_changes_nothing_more(practice: Practice, agent: User) -> None:
    snapshot = _addresses_asked(agent, _client(practice))
    _settle_twice(snapshot.question, cuaddr.ListResponse(addresses=_listed(PHONE)))
    stored = AddressesSnapshot.objects.get(pk=snapshot.pk)
    assert stored.facts == [_fact(PHONE)] and AddressesSnapshot.objects.count() == 1


# --- a batch's answers at once (the snapshot purpose's many) ---


def test_a_batch_fills_each_whole_list_and_passes_on_the_rest(practice: Practice, agent: User) -> None:
    """A refusal (even one with a document), an answer whose snapshot is gone and a page of a longer list go their
    own ways; the whole lists after them in the batch are still filled."""
    refused, gone, paged, whole = (_addresses_asked(agent, _client(practice)) for _ in range(4))
    orphan = gone.question
    AddressesSnapshot.objects.filter(pk=gone.pk).delete()
    drift.snapshots_answered(
        [
            (refused.question, _answer(cuaddr.ListResponse(addresses=_listed(PHONE)), codes=("CMN.ATO.GEN.XML03",))),
            (orphan, _answer(cuaddr.ListResponse(addresses=_listed(PHONE)))),
            (paged.question, _answer(cuaddr.ListResponse(addresses=_listed(PHONE), continuation="page-2"))),
            (whole.question, _answer(cuaddr.ListResponse(addresses=_listed(PHONE)))),
        ]
    )
    stored = {s.pk: s for s in AddressesSnapshot.objects.all()}
    assert (stored[refused.pk].answered_at, stored[refused.pk].facts) == (None, None)
    assert stored[paged.pk].answered_at is None and stored[paged.pk].facts == [_fact(PHONE)]
    assert stored[paged.pk].question_id != paged.question.pk  # the next page asked
    asked = api.question_request(stored[paged.pk].question)
    assert isinstance(asked, cuaddr.ListRequest) and asked.continuation == "page-2"
    assert stored[whole.pk].answered_at is not None and stored[whole.pk].facts == [_fact(PHONE)]


def test_an_accounts_snapshot_says_which_account_its_facts_are_of(practice: Practice, agent: User) -> None:
    client = _client(practice)
    ClientAccount.objects.create(client=client, kind=AccountKind.ACTIVITY_STATEMENT, branch="001")
    services.snapshot_ask(user=agent, client=client, service=Service.ADDRESSES)
    own, account = AddressesSnapshot.objects.filter(client=client).order_by("pk")
    assert (account.account_kind, account.account_branch) == ("AS", "001")
    for snapshot in (own, account):
        services.on_snapshot(snapshot.question, _answer(cuaddr.ListResponse(addresses=_listed(PHONE))))
    assert AddressesSnapshot.objects.get(pk=own.pk).facts == [_fact(PHONE)]
    level = "Activity statement account 001"
    fact = {**_fact(PHONE), "level": level, "summary": f"{level}: {_fact(PHONE)['summary']}"}
    assert AddressesSnapshot.objects.get(pk=account.pk).facts == [fact]


def test_an_answer_changes_only_its_own_bank_change(practice: Practice, agent: User) -> None:
    for status in (BankChangeStatus.VALIDATING, BankChangeStatus.SUBMITTING):
        mine, other = _bank_change(practice, agent, status), _bank_change(practice, agent, status)
        question = mine.submit_question or mine.validate_question
        assert question is not None
        bank.on_bank_answer(question, REFUSED)
        assert BankChange.objects.get(pk=mine.pk).status == BankChangeStatus.REFUSED
        assert BankChange.objects.get(pk=other.pk).status == status


def test_a_batch_fills_a_details_answer_which_has_no_pages(practice: Practice, agent: User) -> None:
    snapshot = _details_asked(agent, _client(practice))
    profile_held = cudtl.ClientProfile(entity_type="IND", abn="53004085616")
    drift.snapshots_answered([(snapshot.question, _answer(cudtl.GetResponse(client=profile_held)))])
    stored = DetailsSnapshot.objects.get(pk=snapshot.pk)
    assert stored.answered_at is not None
    assert stored.facts == [
        {"field": "Entity type", "value": "IND", "summary": "Entity type: IND"},
        {"field": "ABN", "value": "53004085616", "summary": "ABN: 53004085616"},
    ]
