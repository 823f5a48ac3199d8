"""The four-eyes controls of a bank account change at their edges, called directly on rows set up by hand (no
stand-in ATO: the ATO's part is in test_bank.py): the call-back's number, minute and order, the approver's
capability, identity, code and timing, the expiry, and the race of two approvals. Each refusal leaves the change as
it was and is audited with its words. They are `make mutate`'s "four-eyes" tests, so they must stay fast."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from ato_gateway import api
from ato_gateway.wire.documents import cufi
from clients.models import Client, ClientKind
from demographics import bank
from demographics.models import BankChange, BankChangeStatus
from portal.capabilities import Role
from portal.models import AuditEvent, Practice, User
from tests.conftest import current_code, make_user

pytestmark = pytest.mark.django_db

ON_FILE = ["0298765432", "0412345901"]
# Seconds and microseconds into its minute: a call-back may be recorded in that minute, from its first instant.
PROPOSED_AT = timezone.now().replace(second=37, microsecond=123456) - timedelta(hours=1)


def _change(practice: Practice, proposer: User, **fields: Any) -> BankChange:
    client = Client(practice=practice, kind=ClientKind.INDIVIDUAL, family_name="Nguyen", given_names="Olivia")
    client.display_name = client.sort_name = "Olivia Nguyen"
    client.abn = "53004085616"
    client.save()
    values: dict[str, Any] = {
        "practice": practice,
        "client": client,
        "status": BankChangeStatus.PROPOSED,
        "bsb": "062000",
        "number": "12345678",
        "account_name": "Olivia Nguyen",
        "proposed_by": proposer,
        "proposed_at": PROPOSED_AT,
        "expires_at": PROPOSED_AT + timedelta(days=BankChange.EXPIRES_AFTER_DAYS),
        "numbers_on_file": ON_FILE,
        **fields,
    }
    return BankChange.objects.create(**values)


def _called(change: BankChange, by: User) -> BankChange:
    BankChange.objects.filter(pk=change.pk).update(called_by=by, called_at=PROPOSED_AT, called_number=ON_FILE[0])
    change.refresh_from_db()
    return change


def _events(change: BankChange) -> list[tuple[str, int | None, dict[str, Any]]]:
    rows = AuditEvent.objects.filter(object_type="demographics.BankChange", object_id=str(change.pk)).order_by("pk")
    return [(e.action, e.actor_id, e.details) for e in rows]


def _details(change: BankChange) -> dict[str, Any]:
    return {"bsb": "062000", "number": "…678", "client": change.client_id}


def _unchanged(change: BankChange) -> None:
    stored = BankChange.objects.get(pk=change.pk)
    assert stored.status == change.status and stored.called_at == change.called_at
    assert stored.approved_by_id is None and stored.submit_question_id is None


# --- the call-back ---


def test_a_call_back_at_the_first_instant_of_the_proposals_minute_is_recorded(
    practice: Practice, agent: User, admin: User
) -> None:
    change = _change(practice, agent)
    called_at = PROPOSED_AT.replace(second=0, microsecond=0)
    before = timezone.now()

    bank.bank_change_record_callback(user=admin, change=change, number=ON_FILE[1], called_at=called_at)

    # The caller's own object is the stored row afterwards (the page shows it without reading it again).
    assert (change.called_by, change.called_at, change.called_number) == (admin, called_at, ON_FILE[1])
    assert change.recorded_at is not None and before <= change.recorded_at <= timezone.now()
    stored = BankChange.objects.get(pk=change.pk)
    assert (stored.called_by, stored.called_at, stored.called_number) == (admin, called_at, ON_FILE[1])
    assert stored.recorded_at == change.recorded_at and stored.status == BankChangeStatus.PROPOSED
    details = {**_details(change), "called_at": called_at.isoformat(), "number_last3": "901"}
    assert _events(change) == [("demographics.bank_callback", admin.pk, details)]


@pytest.mark.parametrize(
    ("when", "why"),
    [
        (PROPOSED_AT.replace(second=0, microsecond=0) - timedelta(microseconds=1), "before the proposal's minute"),
        (timezone.now() + timedelta(hours=1), "in the future"),
    ],
)
def test_a_call_back_before_the_proposal_or_in_the_future_is_refused(
    practice: Practice, agent: User, admin: User, when: datetime, why: str
) -> None:
    change = _change(practice, agent)
    words = "The call must be after the proposal and not in the future."
    with pytest.raises(bank.ChangeRefused) as refused:
        bank.bank_change_record_callback(user=admin, change=change, number=ON_FILE[0], called_at=when)
    assert str(refused.value) == words, why
    _unchanged(change)
    assert _events(change) == [("demographics.bank_callback_refused", admin.pk, {"why": words})]


def test_a_call_back_on_a_number_not_on_file_is_refused(practice: Practice, agent: User, admin: User) -> None:
    change = _change(practice, agent)
    words = "Call the client only on a number the ATO held before the change was proposed."
    with pytest.raises(bank.ChangeRefused) as refused:
        bank.bank_change_record_callback(user=admin, change=change, number="0400000000", called_at=PROPOSED_AT)
    assert str(refused.value) == words
    _unchanged(change)
    assert _events(change) == [("demographics.bank_callback_refused", admin.pk, {"why": words})]


@pytest.mark.parametrize("status", [BankChangeStatus.VALIDATING, BankChangeStatus.REFUSED, BankChangeStatus.SUBMITTING])
def test_a_call_back_only_for_a_proposal_the_ato_checked(
    practice: Practice, agent: User, admin: User, status: BankChangeStatus
) -> None:
    change = _change(practice, agent, status=status)
    words = "A call-back is recorded only for a proposal the ATO has checked."
    with pytest.raises(bank.ChangeRefused) as refused:
        bank.bank_change_record_callback(user=admin, change=change, number=ON_FILE[0], called_at=PROPOSED_AT)
    assert str(refused.value) == words
    _unchanged(change)
    assert _events(change) == [("demographics.bank_callback_refused", admin.pk, {"why": words})]


# --- the expiry ---

EXPIRED_WORDS = (
    "The proposal expired unapproved after 7 days. Nothing was changed: propose it again if the client still wants it."
)


@pytest.mark.parametrize("step", ["callback", "approve"])
def test_a_proposal_expires_at_its_deadline_whichever_step_comes_then(
    practice: Practice, agent: User, admin: User, step: str
) -> None:
    # Due this very instant: the deadline itself is past it.
    change = _change(practice, agent, expires_at=timezone.now())
    if step == "approve":
        change = _called(change, admin)
    with pytest.raises(bank.ChangeRefused) as refused:
        if step == "callback":
            bank.bank_change_record_callback(user=admin, change=change, number=ON_FILE[0], called_at=PROPOSED_AT)
        else:
            bank.bank_change_approve(user=admin, change=change, code=current_code(admin))
    assert str(refused.value) == EXPIRED_WORDS
    assert change.status == BankChangeStatus.EXPIRED
    stored = BankChange.objects.get(pk=change.pk)
    assert stored.status == BankChangeStatus.EXPIRED and stored.approved_by_id is None
    assert stored.called_by_id == (admin.pk if step == "approve" else None)
    assert _events(change) == [("demographics.bank_expire", admin.pk, _details(change))]


def test_a_proposal_not_yet_due_does_not_expire(practice: Practice, agent: User, admin: User) -> None:
    change = _change(practice, agent, expires_at=timezone.now() + timedelta(minutes=1))
    bank._expire_if_due(admin, change)
    assert change.status == BankChangeStatus.PROPOSED
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.PROPOSED
    assert _events(change) == []


def test_only_an_open_proposal_expires(practice: Practice, agent: User, admin: User) -> None:
    change = _change(practice, agent, status=BankChangeStatus.SUBMITTING, expires_at=timezone.now())
    bank._expire_if_due(admin, change)
    assert BankChange.objects.get(pk=change.pk).status == BankChangeStatus.SUBMITTING and _events(change) == []


# --- the approval ---


def test_another_member_approves_with_their_code_and_the_submit_is_asked(
    practice: Practice, agent: User, admin: User
) -> None:
    change = _called(_change(practice, agent), admin)
    before = timezone.now()

    approved = bank.bank_change_approve(user=admin, change=change, code=f"  {current_code(admin)}\n")

    stored = BankChange.objects.get(pk=change.pk)
    assert approved.pk == change.pk and approved.status == BankChangeStatus.SUBMITTING
    assert (stored.status, stored.approved_by, stored.submit_question_id) == (
        BankChangeStatus.SUBMITTING,
        admin,
        approved.submit_question_id,
    )
    assert stored.approved_at is not None and before <= stored.approved_at <= timezone.now()
    assert stored.approved_at == approved.approved_at
    assert stored.submit_question_id is not None
    question = api.Question.objects.get(pk=stored.submit_question_id)
    assert (question.purpose, question.subject_id, question.asked_by) == (bank.PURPOSE, str(change.pk), admin)
    asked = api.question_request(question)
    assert isinstance(asked, cufi.SubmitRequest)
    assert (asked.bank_account.bsb, asked.bank_account.number, asked.bank_account.name) == (
        "062000",
        "12345678",
        "Olivia Nguyen",
    )
    assert _events(change) == [("demographics.bank_approve", admin.pk, _details(change))]


def test_any_of_the_approvers_confirmed_devices_will_do(practice: Practice, agent: User, admin: User) -> None:
    spare = TOTPDevice.objects.create(user=admin, name="spare", confirmed=True)
    change = _called(_change(practice, agent), admin)
    code = f"{totp(spare.bin_key, step=spare.step, t0=spare.t0, digits=spare.digits):06d}"
    assert bank.bank_change_approve(user=admin, change=change, code=code).status == BankChangeStatus.SUBMITTING


def _refused_approval(user: User, change: BankChange, code: str, words: str) -> None:
    with pytest.raises(bank.ChangeRefused) as refused:
        bank.bank_change_approve(user=user, change=change, code=code)
    assert str(refused.value) == words
    _unchanged(change)
    assert _events(change) == [("demographics.bank_approve_refused", user.pk, {"why": words})]
    assert not api.Question.objects.filter(purpose=bank.PURPOSE).exists()


def test_an_unconfirmed_device_or_a_wrong_code_approves_nothing(practice: Practice, agent: User, admin: User) -> None:
    TOTPDevice.objects.filter(user=admin).update(confirmed=False)
    change = _called(_change(practice, agent), admin)
    code = f"{totp(TOTPDevice.objects.get(user=admin).bin_key):06d}"
    _refused_approval(admin, change, code, "That authenticator code is not right: nothing was approved.")


def test_the_proposer_cannot_approve_even_holding_the_capability(practice: Practice, admin: User) -> None:
    other = make_user(practice, "carol", Role.PRACTICE_ADMIN)
    change = _called(_change(practice, admin), other)
    _refused_approval(admin, change, current_code(admin), "You proposed this change: someone else must approve it.")


def test_a_member_without_the_capability_cannot_approve(practice: Practice, agent: User, admin: User) -> None:
    change = _called(_change(practice, admin), admin)
    _refused_approval(agent, change, current_code(agent), "You need the “Approve changes made by others” permission.")


def test_approval_waits_for_the_call_back(practice: Practice, agent: User, admin: User) -> None:
    change = _change(practice, agent)
    _refused_approval(admin, change, current_code(admin), "Record the call-back to the client before approving.")


@pytest.mark.parametrize("status", [BankChangeStatus.VALIDATING, BankChangeStatus.REFUSED])
def test_only_a_checked_proposal_is_approved(
    practice: Practice, agent: User, admin: User, status: BankChangeStatus
) -> None:
    change = _called(_change(practice, agent, status=status), admin)
    _refused_approval(admin, change, current_code(admin), "Only a proposal the ATO has checked can be approved.")


def test_a_second_approval_at_the_same_moment_submits_nothing_more(practice: Practice, agent: User) -> None:
    first, second = make_user(practice, "carol", Role.PRACTICE_ADMIN), make_user(practice, "dave", Role.PRACTICE_ADMIN)
    change = _called(_change(practice, agent), first)
    stale = BankChange.objects.get(pk=change.pk)  # read by the second approver's request before the first commits
    bank.bank_change_approve(user=first, change=change, code=current_code(first))
    with pytest.raises(bank.ChangeRefused, match=r"^This change has already been approved\.$"):
        bank.bank_change_approve(user=second, change=stale, code=current_code(second))
    stored = BankChange.objects.get(pk=change.pk)
    assert stored.approved_by == first and api.Question.objects.filter(purpose=bank.PURPOSE).count() == 1
    assert [action for action, _, _ in _events(change)] == ["demographics.bank_approve"]
