"""The superannuation workflows: the funds the practice administers, their member accounts, reporting them to the
ATO (MAAS; superannuation/reporting.py), the member file (superannuation/importing.py), and the worklist of the TFN
validation responses and errors with the 30-day clock (seed 003, CRT Alert 071/2018).

Every function takes the user and is scoped by ``visible_to(user)``: another practice's fund, or one outside a
restricted member's groups, is a 404. Viewing needs VIEW_CLIENTS; every change needs MANAGE_SUPER_FUNDS. Each
change and its audit record commit together. Validation errors raise ValidationError in words a person reads."""

from __future__ import annotations

import base64
import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from clients.models import Client, ClientGroup
from clients.tfn import decrypt_tfn, format_tfn
from clients.validation import clean_abn, clean_birth_date, clean_tfn
from portal.audit import audit_record
from portal.capabilities import Capability, Role
from portal.models import User
from portal.sealing import seal_bytes
from superannuation.access import require_manage, require_view, visible_fund, visible_item, visible_member
from superannuation.events import foundation_built, pending_event
from superannuation.importing import TEMPLATE as MEMBER_CSV_TEMPLATE
from superannuation.importing import member_import_run, member_import_start, members_export_csv
from superannuation.models import (
    FLAG_ATTRIBUTES,
    REMINDER_DAYS_LEFT,
    AccountPhase,
    AccountStatus,
    EventKind,
    Extension,
    ItemState,
    LostStatus,
    Meaning,
    Member,
    ReasonableStep,
    Report,
    ReportKind,
    SuperFund,
    TfnChange,
    Transaction,
    WorkItem,
)
from superannuation.reporting import (
    PURPOSE,
    foundation_load_start,
    on_batch_answer,
    realtime_report_start,
    report_build,
    report_enqueue_on_commit,
    transactions_resubmit,
)

__all__ = [
    "MEMBER_CSV_TEMPLATE",
    "PURPOSE",
    "WorklistPage",
    "extension_record",
    "foundation_load_start",
    "fund_create",
    "fund_report",
    "fund_report_csv",
    "fund_update",
    "item_resolve",
    "items_remind_daily",
    "member_add",
    "member_change",
    "member_close",
    "member_import_run",
    "member_import_start",
    "member_reopen",
    "member_reveal_tfn",
    "members_export_csv",
    "on_batch_answer",
    "realtime_report_start",
    "remediation_record",
    "report_build",
    "step_record",
    "tfn_correction_apply",
    "transactions_resubmit",
    "worklist",
    "worklist_counts",
]

log = logging.getLogger(__name__)

EVIDENCE_MAX_BYTES = 5 * 1024 * 1024


# --- funds ---


def _clean_fund(user: User, *, name: str, abn: str, usi: str, client: Client | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Give the fund's name."]
    try:
        abn = clean_abn(abn)
        if not abn:
            errors["abn"] = ["Give the fund's ABN."]
    except ValidationError as exc:
        errors["abn"] = exc.messages
    usi = (usi or "").replace(" ", "").strip()
    if not usi:
        errors["usi"] = ["Give the fund's USI."]
    elif not (usi.isdigit() and len(usi) == 14):
        errors["usi"] = ["An APRA fund's USI is its ABN followed by 3 digits (14 digits in all)."]
    elif "abn" not in errors and not usi.startswith(abn):
        errors["usi"] = ["An APRA fund's USI begins with the fund's ABN: these 11 digits differ from the ABN."]
    if client is not None and not Client.objects.visible_to(user).filter(pk=client.pk).exists():
        errors["client"] = ["No such client."]
    if errors:
        raise ValidationError(errors)
    return {"name": name[:200], "abn": abn, "usi": usi, "client": client}


def _duplicate_usi(practice_id: int, usi: str, exclude: int | None = None) -> None:
    others = SuperFund.objects.filter(practice_id=practice_id, usi=usi)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    if other := others.first():
        raise ValidationError({"usi": [f"The practice already administers a fund with this USI: {other.name}."]})


def fund_create(*, user: User, name: str, abn: str, usi: str, client: Client | None = None) -> SuperFund:
    require_manage(user)
    values = _clean_fund(user, name=name, abn=abn, usi=usi, client=client)
    assert user.practice_id is not None
    _duplicate_usi(user.practice_id, values["usi"])
    try:
        with transaction.atomic(durable=True):
            fund = SuperFund.objects.create(practice_id=user.practice_id, created_by=user, **values)
            audit_record("superannuation.fund_created", actor=user, target=fund, details={"usi": fund.usi})
    except IntegrityError:  # the same USI added at the same moment
        _duplicate_usi(user.practice_id, values["usi"])
        raise
    return fund


def fund_update(
    *,
    user: User,
    fund: SuperFund,
    name: str | None = None,
    abn: str | None = None,
    usi: str | None = None,
    client: Client | bool | None = False,
) -> SuperFund:
    """Change what is given (``client=None`` unsets the client; leaving it out keeps it)."""
    require_manage(user)
    fund = visible_fund(user, fund)
    values = _clean_fund(
        user,
        name=fund.name if name is None else name,
        abn=fund.abn if abn is None else abn,
        usi=fund.usi if usi is None else usi,
        client=fund.client if client is False else client,  # type: ignore[arg-type]
    )
    _duplicate_usi(fund.practice_id, values["usi"], exclude=fund.pk)
    with transaction.atomic(durable=True):
        changed = [k for k, v in values.items() if getattr(fund, k) != v]
        for key, value in values.items():
            setattr(fund, key, value)
        fund.save()
        audit_record("superannuation.fund_updated", actor=user, target=fund, details={"changed": changed})
    return fund


# --- members ---

_TEXT_FIELDS = {
    "family_name": 100,
    "given_names": 150,
    "address_line1": 100,
    "address_line2": 100,
    "locality": 60,
    "state": 3,
    "postcode": 4,
}
_CHOICE_FIELDS: dict[str, Any] = {"phase": AccountPhase, "lost_status": LostStatus}


def _clean_member_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The member's details and attributes as given, checked; unknown names are a programming error."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _TEXT_FIELDS:
            text = str(value or "").strip()
            if len(text) > _TEXT_FIELDS[name]:
                errors[name] = [f"At most {_TEXT_FIELDS[name]} characters."]
            clean[name] = text.upper() if name == "state" else text
        elif name in FLAG_ATTRIBUTES:
            clean[name] = bool(value)
        elif name in _CHOICE_FIELDS:
            if value not in _CHOICE_FIELDS[name].values:
                errors[name] = [f"Choose one of: {', '.join(str(c.label) for c in _CHOICE_FIELDS[name])}."]
            clean[name] = value
        elif name == "date_of_birth":
            try:
                born = value if isinstance(value, date) else clean_birth_date(str(value or ""))
                if born is None:
                    errors[name] = ["Give the member's date of birth."]
                clean[name] = born
            except ValidationError as exc:
                errors[name] = exc.messages
        elif name == "tfn":
            try:
                clean[name] = clean_tfn(str(value or ""))
            except ValidationError as exc:
                errors[name] = exc.messages
        else:
            raise TypeError(f"A member has no field {name!r} that may be changed here.")
    if "family_name" in clean and not clean["family_name"]:
        errors["family_name"] = ["Give the member's family name."]
    if clean.get("state") and clean["state"] not in {"ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"}:
        errors["state"] = ["Use the state's code, such as NSW."]
    if clean.get("postcode") and not (clean["postcode"].isdigit() and len(clean["postcode"]) == 4):
        errors["postcode"] = ["A postcode has 4 digits."]
    if errors:
        raise ValidationError(errors)
    return clean


def _record_event(member: Member, event: str, on: date) -> Transaction | None:
    """The event pending for the next real-time report, once the foundation data load has been built (before it,
    the load reports the account as it then is). The caller holds the fund's row lock."""
    if not foundation_built(member.fund):
        return None
    pending = pending_event(member, event, on)
    pending.save()
    return pending


def _set_tfn(member: Member, tfn: str, *, user: User, source: str) -> TfnChange:
    change = TfnChange.objects.create(
        member=member,
        old_ciphertext=member.tfn_ciphertext,
        old_last3=member.tfn_last3,
        new_last3=tfn[-3:] if tfn else "",
        source=source,
        changed_by=user,
    )
    member.set_tfn(tfn)
    return change


def member_add(
    *,
    user: User,
    fund: SuperFund,
    member_number: str,
    family_name: str,
    date_of_birth: date | str,
    opened_on: date | None = None,
    **fields: Any,
) -> Member:
    """A new member account, reported as OPENED by the next real-time report (or by the foundation load)."""
    require_manage(user)
    fund = visible_fund(user, fund)
    member_number = (member_number or "").strip()
    if not member_number or len(member_number) > 40:
        raise ValidationError({"member_number": ["Give the member account number (at most 40 characters)."]})
    clean = _clean_member_fields({"family_name": family_name, "date_of_birth": date_of_birth, **fields})
    tfn = clean.pop("tfn", "")
    with transaction.atomic(durable=True):
        fund = SuperFund.objects.select_for_update().get(pk=fund.pk)
        if Member.objects.filter(fund=fund, member_number=member_number).exists():
            raise ValidationError({"member_number": [f"Member number {member_number} is already in this fund."]})
        member = Member(fund=fund, member_number=member_number, opened_on=opened_on or timezone.localdate(), **clean)
        member.set_tfn(tfn)
        member.save()
        _record_event(member, EventKind.OPENED, member.opened_on)
        audit_record("superannuation.member_added", actor=user, target=member)
    return member


def member_change(*, user: User, member: Member, **fields: Any) -> Member:
    """Change the member's details or the account's attributes (a TFN changed here keeps the old one in the
    history); reported as CHANGED."""
    require_manage(user)
    member = visible_member(user, member)
    clean = _clean_member_fields(fields)
    tfn = clean.pop("tfn", None)
    with transaction.atomic(durable=True):
        SuperFund.objects.select_for_update().get(pk=member.fund_id)
        member = Member.objects.select_for_update().select_related("fund").get(pk=member.pk)
        changed = [k for k, v in clean.items() if getattr(member, k) != v]
        for key, value in clean.items():
            setattr(member, key, value)
        if tfn is not None and tfn != member.reveal_tfn():
            _set_tfn(member, tfn, user=user, source=TfnChange.Source.EDIT)
            member.tfn_from_ato = False
            changed.append("tfn")
        if not changed:
            return member
        member.save()
        _record_event(member, EventKind.CHANGED, timezone.localdate())
        audit_record("superannuation.member_changed", actor=user, target=member, details={"changed": changed})
    return member


def member_close(*, user: User, member: Member, on: date) -> Member:
    require_manage(user)
    member = visible_member(user, member)
    with transaction.atomic(durable=True):
        SuperFund.objects.select_for_update().get(pk=member.fund_id)
        member = Member.objects.select_for_update().select_related("fund").get(pk=member.pk)
        if member.status == AccountStatus.CLOSED:
            raise ValidationError("This account is already closed.")
        if on < member.opened_on:
            raise ValidationError("An account cannot close before it opened.")
        if on > timezone.localdate():
            raise ValidationError("Record the closure on the day it happens, not before.")
        member.status, member.closed_on = AccountStatus.CLOSED, on
        member.save(update_fields=["status", "closed_on", "updated_at"])
        _record_event(member, EventKind.CLOSED, on)
        audit_record("superannuation.member_closed", actor=user, target=member, details={"on": on.isoformat()})
    return member


def member_reopen(*, user: User, member: Member, on: date) -> Member:
    require_manage(user)
    member = visible_member(user, member)
    with transaction.atomic(durable=True):
        SuperFund.objects.select_for_update().get(pk=member.fund_id)
        member = Member.objects.select_for_update().select_related("fund").get(pk=member.pk)
        if member.status != AccountStatus.CLOSED:
            raise ValidationError("Only a closed account can be reopened.")
        if member.closed_on and on < member.closed_on:
            raise ValidationError("An account cannot reopen before it closed.")
        member.status, member.closed_on = AccountStatus.REOPENED, None
        member.save(update_fields=["status", "closed_on", "updated_at"])
        _record_event(member, EventKind.REOPENED, on)
        audit_record("superannuation.member_reopened", actor=user, target=member, details={"on": on.isoformat()})
    return member


def member_reveal_tfn(*, user: User, member: Member) -> str:
    """The only path to a member's full TFN on screen: both capabilities, and the reveal audited (never the TFN)."""
    member = visible_member(user, member)
    if not (user.has_capability(Capability.VIEW_FULL_TFN) and user.has_capability(Capability.MANAGE_SUPER_FUNDS)):
        with transaction.atomic(durable=True):
            audit_record("superannuation.tfn_reveal_refused", actor=user, target=member)
        raise PermissionDenied("You do not have permission to view members' full TFNs.")
    with transaction.atomic(durable=True):
        audit_record("superannuation.tfn_revealed", actor=user, target=member)
    return format_tfn(member.reveal_tfn())


# --- work items ---


def _open_item(user: User, item: WorkItem) -> WorkItem:
    require_manage(user)
    item = visible_item(user, item)
    locked = WorkItem.objects.select_for_update().select_related("fund", "member", "transaction").get(pk=item.pk)
    if locked.state != ItemState.OPEN:
        raise ValidationError("This item is already resolved.")
    return locked


def _resolve(item: WorkItem, user: User, resolution: str) -> None:
    item.state, item.resolution = ItemState.RESOLVED, resolution
    item.resolved_by, item.resolved_at = user, timezone.now()
    item.save(update_fields=["state", "resolution", "resolved_by", "resolved_at"])


def tfn_correction_apply(*, user: User, item: WorkItem) -> None:
    """Record the TFN the ATO supplied (s299TA corrected, s299TC provided): the old one kept in the history, the new
    one marked as not to be given to employers, the item resolved. Audited, without the TFN."""
    require_manage(user)
    with transaction.atomic(durable=True):
        item = _open_item(user, item)
        if item.meaning not in (Meaning.CORRECTED, Meaning.PROVIDED):
            raise ValidationError("This item has no TFN from the ATO to apply.")
        supplied = item.transaction.corrected_tfn
        if not supplied:
            raise ValidationError("The TFN the ATO supplied has already been applied.")
        member = Member.objects.select_for_update().get(pk=item.member_id)
        tfn = decrypt_tfn(supplied)
        source = TfnChange.Source.ATO_CORRECTED if item.meaning == Meaning.CORRECTED else TfnChange.Source.ATO_PROVIDED
        _set_tfn(member, tfn, user=user, source=source)
        member.tfn_from_ato = True
        member.save(update_fields=["tfn_ciphertext", "tfn_hash", "tfn_last3", "tfn_from_ato", "updated_at"])
        Transaction.objects.filter(pk=item.transaction_id).update(corrected_tfn="")
        notice = "s299TA" if item.meaning == Meaning.CORRECTED else "s299TC"
        _resolve(item, user, f"The TFN the ATO supplied ({notice} notice) was recorded.")
        audit_record(
            "superannuation.tfn_corrected",
            actor=user,
            target=member,
            details={"item": item.pk, "notice": notice, "member_number": member.member_number},
        )


def step_record(
    *,
    user: User,
    item: WorkItem,
    contact: str,
    found: str,
    evidence_name: str = "",
    evidence: bytes | None = None,
) -> ReasonableStep:
    """A reasonable step taken: whom was contacted and how, what was found, and the evidence (sealed)."""
    errors: dict[str, list[str]] = {}
    contact, found = (contact or "").strip(), (found or "").strip()
    if not contact:
        errors["contact"] = ["Say whom you contacted, and how."]
    elif len(contact) > 200:
        errors["contact"] = ["At most 200 characters."]
    if not found:
        errors["found"] = ["Say what you found."]
    if evidence is not None and len(evidence) > EVIDENCE_MAX_BYTES:
        errors["evidence"] = [f"The evidence file is larger than {EVIDENCE_MAX_BYTES // (1024 * 1024)} MB."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(durable=True):
        item = _open_item(user, item)
        step = ReasonableStep.objects.create(
            item=item,
            taken_by=user,
            contact=contact,
            found=found,
            evidence_name=(evidence_name or ("evidence" if evidence else ""))[:200],
            evidence=seal_bytes(evidence) if evidence else "",
        )
        audit_record("superannuation.step_recorded", actor=user, target=item, details={"evidence": bool(evidence)})
    return step


def extension_record(
    *, user: User, item: WorkItem, requested_on: date, requested_of: str, new_due_on: date
) -> Extension:
    """More time the ATO agreed to: the item's clock follows the new date. An earlier date is refused."""
    requested_of = (requested_of or "").strip()
    if not requested_of:
        raise ValidationError({"requested_of": ["Say whom at the ATO you asked (for example SuperCRT@ato.gov.au)."]})
    with transaction.atomic(durable=True):
        item = _open_item(user, item)
        if new_due_on <= item.due_on:
            raise ValidationError(
                {"new_due_on": [f"The new date must be after the current due date, {item.due_on:%d/%m/%Y}."]}
            )
        if requested_on > timezone.localdate():
            raise ValidationError({"requested_on": ["The request cannot be dated in the future."]})
        extension = Extension.objects.create(
            item=item,
            requested_on=requested_on,
            requested_of=requested_of[:200],
            new_due_on=new_due_on,
            recorded_by=user,
        )
        old = item.due_on
        item.due_on = new_due_on
        # A new date is a new clock: its reminder and escalation are due again.
        item.reminded_at = item.escalated_at = None
        item.save(update_fields=["due_on", "reminded_at", "escalated_at"])
        audit_record(
            "superannuation.extension_recorded",
            actor=user,
            target=item,
            details={"from": old.isoformat(), "to": new_due_on.isoformat()},
        )
    return extension


def remediation_record(
    *,
    user: User,
    item: WorkItem,
    remediation: str,
    note: str,
    holder: dict[str, Any] | None = None,
) -> WorkItem:
    """096604's guided remediation. CLOSED_UNDER_HOLDER reports the account closed under the holder the ATO knows
    (their family name, given names and date of birth in ``holder``): a CLOSED transaction sent at once, in a
    report of its own. IDENTITY_CONFIRMED records the contact with the ATO that confirmed the member is the
    holder (``note`` says who, when, what). Either lets the member's message be resubmitted."""
    note = (note or "").strip()
    with transaction.atomic(durable=True):
        item = _open_item(user, item)
        if item.meaning != Meaning.OTHER_HOLDER:
            raise ValidationError("Only a 096604 (another holder's account) is remediated this way.")
        if item.remediation:
            raise ValidationError("The remediation of this item is already recorded.")
        if remediation == WorkItem.Remediation.IDENTITY_CONFIRMED:
            if not note:
                raise ValidationError({"note": ["Say whom at the ATO you spoke to, when, and what they confirmed."]})
        elif remediation == WorkItem.Remediation.CLOSED_UNDER_HOLDER:
            holder = _clean_holder(holder or {})
            member = Member.objects.select_related("fund").get(pk=item.member_id)
            report = Report.objects.create(fund=item.fund, kind=ReportKind.REALTIME, started_by=user, total=1)
            closing = pending_event(member, EventKind.CLOSED, timezone.localdate(), holder=holder)
            closing.report = report
            closing.save()
            report_enqueue_on_commit(report)
            note = note or f"Reported closed under {holder['given_names']} {holder['family_name']}".strip()
        else:
            raise ValidationError({"remediation": ["Choose one of the two remediations."]})
        item.remediation, item.remediation_note = remediation, note
        item.save(update_fields=["remediation", "remediation_note"])
        audit_record("superannuation.remediated", actor=user, target=item, details={"remediation": remediation})
    return item


def _clean_holder(holder: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    family = str(holder.get("family_name") or "").strip()
    given = str(holder.get("given_names") or holder.get("given_name") or "").strip()
    if not family:
        errors["family_name"] = ["Give the other holder's family name."]
    born = holder.get("date_of_birth")
    try:
        born = born if isinstance(born, date) else clean_birth_date(str(born or ""))
        if born is None:
            errors["date_of_birth"] = ["Give the other holder's date of birth."]
    except ValidationError as exc:
        errors["date_of_birth"] = exc.messages
    if errors:
        raise ValidationError(errors)
    assert isinstance(born, date)
    return {"family_name": family[:100], "given_names": given[:150], "date_of_birth": born.isoformat()}


def item_resolve(*, user: User, item: WorkItem, resolution: str) -> WorkItem:
    resolution = (resolution or "").strip()
    if not resolution:
        raise ValidationError({"resolution": ["Say how the item was resolved."]})
    with transaction.atomic(durable=True):
        item = _open_item(user, item)
        _resolve(item, user, resolution)
        audit_record("superannuation.item_resolved", actor=user, target=item)
    return item


# --- the worklist ---


@dataclass(frozen=True)
class WorklistPage:
    items: list[WorkItem]
    after: str | None  # the cursor of the next page, None on the last


def _cursor(item: WorkItem) -> str:
    return base64.urlsafe_b64encode(f"{item.due_on.isoformat()}|{item.pk}".encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[date, int] | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        due, pk = text.split("|")
        return date.fromisoformat(due), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


# The columns a worklist row shows, and no more: a page of 50 spent longer reading the rest (the member's whole
# record, the transaction's JSON) than rendering. A field left out costs a query per row when read, which the pages'
# test of the query count catches, so a row that shows more adds it here.
WORKLIST_FIELDS = (
    "fund",
    "member",
    "transaction",
    "meaning",
    "aware_at",
    "due_on",
    "state",
    "remediation",
    "fund__name",
    "member__family_name",
    "member__given_names",
    "member__member_number",
    "transaction__transaction_id",
)


def worklist(*, user: User, fund: SuperFund | None = None, after: str | None = None, limit: int = 50) -> WorklistPage:
    """Open items by days left (the most urgent first), a page at a time; ``after`` is the previous page's
    cursor (an unreadable one starts again from the top)."""
    require_view(user)
    qs = WorkItem.objects.visible_to(user).open()
    if fund is not None:
        qs = qs.filter(fund=visible_fund(user, fund))
    position = _uncursor(after) if after else None
    if position is not None:
        due, pk = position
        qs = qs.filter(Q(due_on__gt=due) | Q(due_on=due, pk__gt=pk))
    limit = max(1, min(limit, 500))
    rows = qs.select_related("fund", "member", "transaction").only(*WORKLIST_FIELDS)
    items = list(rows.order_by("due_on", "pk")[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    return WorklistPage(items, _cursor(items[-1]) if more else None)


def worklist_counts(*, user: User, today: date | None = None) -> dict[str, int]:
    """For the dashboard: open items due within the week, overdue, and all open ones, of the funds the user sees."""
    if not user.has_capability(Capability.VIEW_CLIENTS):
        return {"due_week": 0, "overdue": 0, "open": 0}
    today = today or timezone.localdate()
    return (
        WorkItem.objects.visible_to(user)
        .open()
        .aggregate(
            due_week=Count("pk", filter=Q(due_on__gte=today, due_on__lte=today + timedelta(days=REMINDER_DAYS_LEFT))),
            overdue=Count("pk", filter=Q(due_on__lt=today)),
            open=Count("pk"),
        )
    )


# --- reports per fund ---

AGE_BANDS = (("0-7", 0, 7), ("8-14", 8, 14), ("15-30", 15, 30), ("over 30", 31, None))


def fund_report(*, user: User, fund: SuperFund, today: date | None = None) -> dict[str, Any]:
    """The responses by meaning, the open items by age (days since the fund became aware), and the items resolved
    within 30 days of awareness, of one fund."""
    require_view(user)
    fund = visible_fund(user, fund)
    today = today or timezone.localdate()
    counts = dict(
        Transaction.objects.filter(member__fund=fund)
        .exclude(meaning="")
        .values_list("meaning")
        .annotate(n=Count("pk"))
        .values_list("meaning", "n")
    )
    responses = {str(m.value): counts.get(m.value, 0) for m in Meaning}
    ages: dict[str, int] = {label: 0 for label, _, _ in AGE_BANDS}
    for aware_at in WorkItem.objects.filter(fund=fund).open().values_list("aware_at", flat=True).iterator():
        age = (today - timezone.localdate(aware_at)).days
        for label, low, high in AGE_BANDS:
            if age >= low and (high is None or age <= high):
                ages[label] += 1
                break
    resolved = WorkItem.objects.filter(fund=fund, state=ItemState.RESOLVED)
    total_resolved = resolved.count()
    in_time = sum(
        1
        for aware_at, resolved_at in resolved.values_list("aware_at", "resolved_at").iterator()
        if resolved_at is not None and resolved_at - aware_at <= timedelta(days=30)
    )
    return {
        "responses": responses,
        "open_by_age": ages,
        "resolved": total_resolved,
        "resolved_within_30": in_time,
        "resolved_within_30_share": (in_time / total_resolved) if total_resolved else None,
    }


def fund_report_csv(*, user: User, fund: SuperFund) -> Iterator[str]:
    figures = fund_report(user=user, fund=fund)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "figure", "count"])
    labels = {str(m.value): str(m.label) for m in Meaning}
    for meaning, n in figures["responses"].items():
        writer.writerow(["Responses", labels[meaning], n])
    for band, n in figures["open_by_age"].items():
        writer.writerow(["Open items by days since aware", band, n])
    writer.writerow(["Resolved", "all resolved items", figures["resolved"]])
    writer.writerow(["Resolved", "within 30 days of awareness", figures["resolved_within_30"]])
    share = figures["resolved_within_30_share"]
    writer.writerow(["Resolved", "share within 30 days", "" if share is None else f"{share:.0%}"])
    yield out.getvalue()


# --- reminders ---


def _fund_staff(fund: SuperFund) -> list[User]:
    """Those who look after the fund: the staff of its client's groups (not read-only), else the admins."""
    if fund.client_id is not None:
        groups = ClientGroup.objects.filter(clients=fund.client_id)
        staff = list(
            User.objects.filter(client_groups__in=groups, is_active=True, practice_id=fund.practice_id)
            .exclude(role=Role.READ_ONLY)
            .exclude(email="")
            .distinct()
            .order_by("pk")
        )
        if staff:
            return staff
    return _admins(fund)


def _admins(fund: SuperFund) -> list[User]:
    return list(
        User.objects.filter(practice_id=fund.practice_id, role=Role.PRACTICE_ADMIN, is_active=True)
        .exclude(email="")
        .order_by("pk")
    )


def items_remind_daily(*, today: date | None = None) -> int:
    """At 7 days left, one reminder to the fund's staff; overdue, one escalation to the admins. Each item is
    reminded once and escalated once (an extension starts its clock again). Returns the emails sent."""
    today = today or timezone.localdate()
    now = timezone.now()
    messages: list[tuple[str, str, str, list[str]]] = []
    due = WorkItem.objects.open().filter(
        reminded_at__isnull=True, due_on__gte=today, due_on__lte=today + timedelta(days=REMINDER_DAYS_LEFT)
    )
    late = WorkItem.objects.open().filter(escalated_at__isnull=True, due_on__lt=today)
    for query, stamp, people, words in (
        (due, "reminded_at", _fund_staff, "due within a week"),
        (late, "escalated_at", _admins, "overdue"),
    ):
        by_fund: dict[int, list[WorkItem]] = {}
        funds: dict[int, SuperFund] = {}
        for item in query.select_related("fund", "member").order_by("fund_id", "due_on", "pk"):
            by_fund.setdefault(item.fund_id, []).append(item)
            funds[item.fund_id] = item.fund
        for fund_id, items in by_fund.items():
            fund = funds[fund_id]
            lines = [
                f"{len(items)} TFN validation item(s) of {fund.name} are {words}. The ATO deems the fund aware when "
                "the responses are pulled, and the correct information must be reported within 30 days.",
                "",
                *(f"- {i.get_meaning_display()}: {i.member}, due {i.due_on:%d/%m/%Y}" for i in items),
            ]
            subject = f"{fund.name}: {len(items)} TFN validation item(s) {words}"
            body = "\n".join(lines)
            messages += [(subject, body, settings.DEFAULT_FROM_EMAIL, [u.email]) for u in people(fund)]
            WorkItem.objects.filter(pk__in=[i.pk for i in items]).update(**{stamp: now})
    return send_mass_mail(messages, fail_silently=False) if messages else 0
