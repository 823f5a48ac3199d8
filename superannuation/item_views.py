"""The worklist (a fund's and the practice's, by days left) and each item's page: what the ATO's response means
and what to do, in the words of CRT Alert 071/2018 (seed 003), with the actions it allows: apply the TFN the ATO
supplied, record a reasonable step, more time the ATO agreed, the 096604 remediation, and the resolution."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from superannuation import services
from superannuation.evidence import step_evidence_read
from superannuation.forms import ExtensionForm, RemediationForm, ResolveForm, StepForm, put_errors
from superannuation.models import ItemState, Meaning, ReasonableStep, SuperFund, WorkItem
from superannuation.views import may_manage

PAGE = 50
# What each response means and what to do: seed 003's words (099264, which the alert does not cover, in ours).
WORDS: dict[str, tuple[str, str]] = {
    Meaning.MATCHED: ("The TFN provided has been matched to the member (a s299TD notice).", "No action required."),
    Meaning.MATCHED_NO_NOTICE: (
        "No TFN was provided and the ATO matched the member's details: a simply matched response, which does not "
        "equate to a s299TD notice.",
        "No action required.",
    ),
    Meaning.CORRECTED: (
        "The TFN provided is incorrect, but the ATO was able to match the member's details and returned the correct "
        "TFN (a s299TA notice).",
        "Update your records with the TFN supplied.",
    ),
    Meaning.PROVIDED: (
        "No TFN was provided, however the ATO was able to match the member's details and returned the correct TFN "
        "(a s299TC notice: the member's TFN was quoted for super purposes).",
        "Update your records with the TFN supplied.",
    ),
    Meaning.UNMATCHED_FOUNDATION: (
        "The TFN provided does not match the details of the member in the ATO's systems, or where no TFN was "
        "provided the ATO was not able to match the member's details.",
        "During the foundation data load you are not required to take any action.",
    ),
    Meaning.UNMATCHED: (
        "The message has not been matched against the member in the ATO client register: where no TFN was "
        "provided, the ATO was not able to match the member's details. Later contributions will fail to be matched "
        "to the member and are left out of calculations such as the total super balance and co-contributions.",
        "During real time reporting you must take reasonable steps to determine if there is a material change or "
        "omission in the information provided.",
    ),
    Meaning.PLEASE_RESOLVE: (
        "An unmatched response received when you have provided a TFN in your message equates to a “please "
        "resolve” notice. Later contributions will fail to be matched to the member and are left out of "
        "calculations such as the total super balance and co-contributions.",
        "Reasonable steps must be taken to resolve this response.",
    ),
    Meaning.VALIDATION_ERROR: (
        "After the technical receipt this transaction failed validation: it will not be processed.",
        "Correct the transaction which failed validation, then resubmit it from its batch: only the failed "
        "transactions are resubmitted, never those that were processed.",
    ),
    Meaning.OTHER_HOLDER: (
        "The reported account belongs to a different account holder (CMN.ATO.SPRMBRINFO.096604), hence this message "
        "will not be processed.",
        "Either report the account as closed under the different account holder, or contact the ATO to confirm the "
        "identity of the account holder. The message cannot be resubmitted until one of the two is recorded.",
    ),
    Meaning.MORE_RECENT: (
        "A more recent member account request has already been processed (CMN.ATO.SPRMBRINFO.099264): the ATO holds "
        "a later event for this account, so this one was not processed.",
        "Check the account's later event against your records. If they agree, resolve this item with a note; if "
        "this event carried something the later one lacks, correct the member and resubmit.",
    ),
}


MEANING_LABELS: dict[str, str] = dict(Meaning.choices)


@dataclass(frozen=True)
class WorklistRow:
    """One row of the worklist, its words and link made in Python: the template only places them (per row,
    ``{% url %}``, the ``date`` filter and ``get_meaning_display`` cost about 0.6 ms, 30 ms a page of 50)."""

    url: str
    days_left: str
    urgent: bool  # overdue or due today
    due: str
    member: str
    member_number: str
    fund: str
    response: str
    has_steps: bool


def _days_left_words(left: int) -> str:
    if left < 0:
        return f"Overdue by {-left} day{'' if left == -1 else 's'}"
    if left == 0:
        return "Due today"
    return f"{left} day{'' if left == 1 else 's'} left"


def worklist_rows(items: list[WorkItem], stepped: set[int]) -> list[WorklistRow]:
    # One reverse for the page: every item's URL is the same but for its key.
    prefix = reverse("superannuation:item", args=[0]).removesuffix("0/")
    today = timezone.localdate()
    dates: dict[date, str] = {}  # a page's items share a few due dates: each formatted once
    rows = []
    for item in items:
        left = item.days_left(today)
        due = dates.get(item.due_on)
        if due is None:
            due = dates[item.due_on] = date_format(item.due_on, "j M Y")
        rows.append(
            WorklistRow(
                url=f"{prefix}{item.pk}/",
                days_left=_days_left_words(left),
                urgent=left <= 0,
                due=due,
                member=item.member.display_name,
                member_number=item.member.member_number,
                fund=item.fund.name,
                response=MEANING_LABELS.get(item.meaning, item.meaning),
                has_steps=item.pk in stepped,
            )
        )
    return rows


def worklist_context(request: PortalRequest, fund: SuperFund | None) -> dict[str, Any]:
    page = services.worklist(user=request.user, fund=fund, after=request.GET.get("after") or None, limit=PAGE)
    # Which of the page's items have a step recorded: one query, whatever the page's size.
    stepped = set(ReasonableStep.objects.filter(item__in=page.items).values_list("item_id", flat=True))
    query = request.GET.copy()
    query["after"] = page.after or ""
    return {
        "items": worklist_rows(page.items, stepped),
        "next_query": query.urlencode() if page.after else "",
    }


@capability_required(Capability.VIEW_CLIENTS)
def worklist(request: PortalRequest) -> HttpResponse:
    return render(request, "superannuation/worklist.html", worklist_context(request, None))


def _item(request: PortalRequest, pk: int) -> WorkItem:
    items = WorkItem.objects.visible_to(request.user).select_related("fund", "member", "transaction__batch")
    return get_object_or_404(items, pk=pk)


def _context(request: PortalRequest, item: WorkItem, **forms: Any) -> dict[str, Any]:
    means, to_do = WORDS[item.meaning]
    return {
        "item": item,
        "fund": item.fund,
        "member": item.member,
        "means": means,
        "to_do": to_do,
        "days_left": item.days_left(),
        "is_open": item.state == ItemState.OPEN,
        "may_apply": item.meaning in (Meaning.CORRECTED, Meaning.PROVIDED) and bool(item.transaction.corrected_tfn),
        "steps": item.steps.select_related("taken_by").defer("evidence"),  # the files are read only when downloaded
        "extensions": item.extensions.select_related("recorded_by"),
        "can_manage": may_manage(request),
        "step_form": forms.get("step_form") or StepForm(),
        "extension_form": forms.get("extension_form") or ExtensionForm(initial={"requested_on": timezone.localdate()}),
        "remediation_form": forms.get("remediation_form") or RemediationForm(),
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
    }


@capability_required(Capability.VIEW_CLIENTS)
def item_detail(request: PortalRequest, pk: int) -> HttpResponse:
    return render(request, "superannuation/item.html", _context(request, _item(request, pk)))


def _done(request: PortalRequest, item: WorkItem, text: str) -> HttpResponse:
    messages.success(request, text)
    return redirect("superannuation:item", pk=item.pk)


def _again(request: PortalRequest, item: WorkItem, **forms: Any) -> HttpResponse:
    return render(request, "superannuation/item.html", _context(request, item, **forms), status=400)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def item_apply(request: PortalRequest, pk: int) -> HttpResponse:
    item = _item(request, pk)
    try:
        services.tfn_correction_apply(user=request.user, item=item)
    except ValidationError as problem:
        messages.error(request, " ".join(problem.messages))
        return redirect("superannuation:item", pk=item.pk)
    return _done(request, item, "The TFN the ATO supplied is now the member's. Do not give it to employers.")


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def item_step(request: PortalRequest, pk: int) -> HttpResponse:
    item = _item(request, pk)
    form = StepForm(request.POST, request.FILES)
    if form.is_valid():
        evidence = form.cleaned_data["evidence"]
        try:
            services.step_record(
                user=request.user,
                item=item,
                contact=form.cleaned_data["contact"],
                found=form.cleaned_data["found"],
                evidence_name=evidence.name if evidence else "",
                evidence=evidence.read() if evidence else None,
            )
        except ValidationError as problem:
            put_errors(form, problem)
        else:
            return _done(request, item, "The step is recorded.")
    return _again(request, item, step_form=form)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@never_cache
def step_evidence(request: PortalRequest, pk: int) -> HttpResponse:
    name, content = step_evidence_read(user=request.user, step_id=pk)
    # Always a download, never shown inline: the file is whatever was uploaded, so the browser must not render it.
    response = HttpResponse(content, content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def item_extension(request: PortalRequest, pk: int) -> HttpResponse:
    item = _item(request, pk)
    form = ExtensionForm(request.POST)
    if form.is_valid():
        try:
            services.extension_record(user=request.user, item=item, **form.cleaned_data)
        except ValidationError as problem:
            put_errors(form, problem)
        else:
            return _done(request, item, f"Recorded. The item is now due {form.cleaned_data['new_due_on']:%-d %B %Y}.")
    return _again(request, item, extension_form=form)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def item_remediation(request: PortalRequest, pk: int) -> HttpResponse:
    item = _item(request, pk)
    form = RemediationForm(request.POST)
    if form.is_valid():
        try:
            services.remediation_record(
                user=request.user,
                item=item,
                remediation=form.cleaned_data["remediation"],
                note=form.cleaned_data["note"],
                holder=form.holder(),
            )
        except ValidationError as problem:
            put_errors(form, problem)
        else:
            return _done(request, item, "The remediation is recorded: the transaction may now be resubmitted.")
    return _again(request, item, remediation_form=form)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def item_resolve(request: PortalRequest, pk: int) -> HttpResponse:
    item = _item(request, pk)
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            services.item_resolve(user=request.user, item=item, resolution=form.cleaned_data["resolution"])
        except ValidationError as problem:
            put_errors(form, problem)
        else:
            return _done(request, item, "The item is resolved.")
    return _again(request, item, resolve_form=form)
