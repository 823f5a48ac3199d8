"""Bank account changes under four-eyes control (CUFI), the controls the issue lists, each one audited:

1. A member who may update bank details proposes the new account. The portal checks the account name against the
   entity (below) and the ATO checks the account (Validate) before anyone is asked to approve it.
2. Someone calls the client back on a phone number the ATO held for them before the proposal (never one that came
   with the request) and records who called, when, and on which number.
3. Another member, who holds "approve changes" and is not the proposer, approves it and re-enters their
   authenticator code at that moment; only then is it submitted to the ATO.
4. A proposal not approved within 7 days expires.
5. Once the ATO accepts it, the client is told by email at the address on file.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from ato_gateway import api
from ato_gateway.api import Question, Reply, Subject
from ato_gateway.wire.documents import cufi
from clients.models import Client
from demographics.models import AddressesSnapshot, BankChange, BankChangeStatus
from demographics.services import client_identifier
from portal.audit import audit_record
from portal.capabilities import Capability

if TYPE_CHECKING:
    from portal.models import User

PURPOSE = "demographics.bank_change"
# Words that say what kind of entity holds an account, not whose it is (as the ATO's own rule reads names).
_GENERIC_WORDS = frozenset(
    {"the", "and", "pty", "ltd", "limited", "trust", "trustee", "for", "fund", "family", "super", "superannuation"}
)


class ChangeRefused(Exception):
    """A step the controls do not allow, in words for the person who tried it; nothing was changed."""


# --- what is on file ---


def _current_facts(client: Client, usage: str, before: datetime | None = None) -> list[str]:
    snapshots = AddressesSnapshot.objects.filter(client=client).answered()
    if before is not None:
        snapshots = snapshots.filter(answered_at__lt=before)
    latest = snapshots.newest_first().first()
    facts = latest.facts if latest is not None else None
    return [str(f["value"]) for f in facts or [] if f["usage"] == usage and f["current"]]


def numbers_on_file(client: Client, *, before: datetime | None = None) -> list[str]:
    """The client's current phone numbers as the ATO last gave them (before ``before``)."""
    return _current_facts(client, "PHN", before)


def email_on_file(client: Client) -> str:
    found = _current_facts(client, "EML")
    return found[0] if found else ""


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if len(w) >= 3} - _GENERIC_WORDS


def account_name_problem(client: Client, account_name: str) -> str:
    """Refunds go only to the entity's own account: an individual's own name; a company's, trust's or fund's own
    name, never a director's or a trustee's. Hand-written: a word in common, as the ATO's own check reads it."""
    own = client.family_name if client.is_individual else client.organisation_name
    if not _words(own):
        return "The register holds no name for the client to check the account name against: record it first."
    if _words(own) & _words(account_name):
        return ""
    whose = (
        "the client's own family name"
        if client.is_individual
        else f"the {client.get_kind_display().lower()}'s own name"
    )
    return f"The account name must be in {whose} ({own}): refunds are paid only into the client's own account."


# --- the steps ---


def _ask(change: BankChange, document: Any) -> Question:
    return api.ask(
        document,
        practice=change.practice,
        by=change.approved_by or change.proposed_by,
        purpose=PURPOSE,
        about=Subject("demographics.bankchange", str(change.pk), f"Bank change for {change.client.display_name}"),
    )


def _details(change: BankChange) -> dict[str, Any]:
    return {"bsb": change.bsb, "number": change.masked_number, "client": change.client_id}


def bank_change_propose(*, user: User, client: Client, bsb: str, number: str, account_name: str) -> BankChange:
    if not user.has_capability(Capability.UPDATE_BANK_DETAILS):
        raise ChangeRefused("You need the “Update bank details” permission to propose a bank account change.")
    if problem := account_name_problem(client, account_name):
        raise ChangeRefused(problem)
    now = timezone.now()
    numbers = numbers_on_file(client, before=now)
    if not numbers:
        raise ChangeRefused(
            "The ATO holds no phone number for the client that the call-back could use: ask the ATO for the "
            "client's addresses first (Addresses), then propose the change."
        )
    ident = client_identifier(client)
    with transaction.atomic():
        change = BankChange.objects.create(
            practice=client.practice,
            client=client,
            bsb=bsb,
            number=number,
            account_name=account_name,
            proposed_by=user,
            proposed_at=now,
            expires_at=now + timedelta(days=BankChange.EXPIRES_AFTER_DAYS),
            numbers_on_file=numbers,
        )
        bank_account = cufi.FinancialInstitutionAccount(bsb=bsb, number=number, name=account_name)
        change.validate_question = _ask(change, cufi.ValidateRequest(client=ident, bank_account=bank_account))
        change.save(update_fields=["validate_question"])
        audit_record("demographics.bank_propose", actor=user, target=change, details=_details(change))
    return change


def _refuse(user: User, change: BankChange, action: str, why: str) -> ChangeRefused:
    """Audit a step the controls refused (it commits on its own: the refusal is what is recorded)."""
    audit_record(f"demographics.{action}_refused", actor=user, target=change, details={"why": why})
    return ChangeRefused(why)


def _expire_if_due(user: User, change: BankChange) -> None:
    if change.is_expired():
        BankChange.objects.filter(pk=change.pk).update(status=BankChangeStatus.EXPIRED)
        change.status = BankChangeStatus.EXPIRED
        audit_record("demographics.bank_expire", actor=user, target=change, details=_details(change))
        raise ChangeRefused(
            f"The proposal expired unapproved after {BankChange.EXPIRES_AFTER_DAYS} days. Nothing was changed: "
            "propose it again if the client still wants it."
        )


def bank_change_record_callback(*, user: User, change: BankChange, number: str, called_at: datetime) -> None:
    _expire_if_due(user, change)
    if change.status != BankChangeStatus.PROPOSED:
        raise _refuse(user, change, "bank_callback", "A call-back is recorded only for a proposal the ATO has checked.")
    if number not in change.numbers_on_file:
        raise _refuse(
            user,
            change,
            "bank_callback",
            "Call the client only on a number the ATO held before the change was proposed.",
        )
    # A call is recorded to the minute: one in the proposal's own minute is after it.
    if called_at > timezone.now() or called_at < change.proposed_at.replace(second=0, microsecond=0):
        raise _refuse(user, change, "bank_callback", "The call must be after the proposal and not in the future.")
    BankChange.objects.filter(pk=change.pk).update(
        called_by=user, called_at=called_at, called_number=number, recorded_at=timezone.now()
    )
    change.refresh_from_db()
    audit_record(
        "demographics.bank_callback",
        actor=user,
        target=change,
        details={**_details(change), "called_at": called_at.isoformat(), "number_last3": number[-3:]},
    )


def bank_change_approve(*, user: User, change: BankChange, code: str) -> BankChange:
    """The second member's approval, with their authenticator code entered now; then the Submit is asked."""
    if not user.has_capability(Capability.APPROVE_CHANGES):
        raise _refuse(user, change, "bank_approve", "You need the “Approve changes made by others” permission.")
    if user.pk == change.proposed_by_id:
        raise _refuse(user, change, "bank_approve", "You proposed this change: someone else must approve it.")
    _expire_if_due(user, change)
    if change.status != BankChangeStatus.PROPOSED:
        raise _refuse(user, change, "bank_approve", "Only a proposal the ATO has checked can be approved.")
    if change.called_at is None:
        raise _refuse(user, change, "bank_approve", "Record the call-back to the client before approving.")
    devices = TOTPDevice.objects.devices_for_user(user, confirmed=True)
    if not any(device.verify_token(code.strip()) for device in devices):
        raise _refuse(user, change, "bank_approve", "That authenticator code is not right: nothing was approved.")
    with transaction.atomic():
        locked = BankChange.objects.select_for_update().get(pk=change.pk)
        if locked.status != BankChangeStatus.PROPOSED:  # a second approval at the same moment
            raise ChangeRefused("This change has already been approved.")
        locked.approved_by, locked.approved_at, locked.status = user, timezone.now(), BankChangeStatus.SUBMITTING
        bank_account = cufi.FinancialInstitutionAccount(bsb=locked.bsb, number=locked.number, name=locked.account_name)
        ident = client_identifier(locked.client)
        locked.submit_question = _ask(locked, cufi.SubmitRequest(client=ident, bank_account=bank_account))
        locked.save(update_fields=["approved_by", "approved_at", "status", "submit_question"])
        audit_record("demographics.bank_approve", actor=user, target=locked, details=_details(locked))
    return locked


def _notify(change: BankChange) -> None:
    email = email_on_file(change.client)
    if not email:
        audit_record(
            "demographics.bank_notify_missing", practice=change.practice, target=change, details=_details(change)
        )
        return
    send_mail(
        subject="Your bank account for tax refunds has changed",
        message=(
            f"Dear {change.client.display_name},\n\n{change.practice.name} has changed, at your request, the bank "
            f"account the ATO pays your refunds into to BSB {change.bsb_display}, account ending "
            f"{change.number[-3:]}.\n\nIf you did not ask for this, call us at once on the number you know us by."
        ),
        from_email=None,
        recipient_list=[email],
    )
    BankChange.objects.filter(pk=change.pk).update(notified_to=email)
    audit_record(
        "demographics.bank_notify", practice=change.practice, target=change, details={"to_domain": email.split("@")[-1]}
    )


def on_bank_answer(question: Question, reply: Reply[Any]) -> None:
    """The ATO's answer to a Validate or a Submit, applied once in the transaction that settles the question."""
    change = BankChange.objects.select_related("client", "practice").filter(pk=int(question.subject_id)).first()
    if change is None:
        return
    submitted = question.pk == change.submit_question_id
    if reply.failure and not reply.errors:
        return  # not an answer: the page shows why, and the ATO's answer wins if it still arrives
    if not submitted:
        status = BankChangeStatus.PROPOSED if reply.answered else BankChangeStatus.REFUSED
        BankChange.objects.filter(pk=change.pk, status=BankChangeStatus.VALIDATING).update(status=status)
        audit_record(f"demographics.bank_validate_{status}", practice=change.practice, target=change)
        return
    status = BankChangeStatus.ACCEPTED if reply.answered else BankChangeStatus.REFUSED
    BankChange.objects.filter(pk=change.pk, status=BankChangeStatus.SUBMITTING).update(status=status)
    audit_record(f"demographics.bank_submit_{status}", practice=change.practice, target=change)
    if status == BankChangeStatus.ACCEPTED:
        transaction.on_commit(lambda: _notify(change))
