"""Bank account changes' pages: propose (from the client's Bank accounts section), then one page per change that
shows the ATO's check, the call-back, the approval and the ATO's answer to the Submit as each comes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from clients.models import get_client_or_404
from demographics import bank
from demographics.forms import ApproveForm, BankChangeForm, CallbackForm
from demographics.models import BankChange
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest


def _change(request: PortalRequest, pk: int) -> BankChange:
    return get_object_or_404(BankChange.objects.visible_to(request.user).select_related("client"), pk=pk)


@capability_required(Capability.UPDATE_BANK_DETAILS)
def propose(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    form = BankChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            change = bank.bank_change_propose(user=request.user, client=client, **form.cleaned_data)
        except bank.ChangeRefused as problem:
            form.add_error(None, str(problem))
        else:
            return redirect("demographics:bank_change", pk=change.pk)
    status = 400 if form.errors else 200
    return render(request, "demographics/bank_propose.html", {"client": client, "form": form}, status=status)


def _context(request: PortalRequest, change: BankChange, **extra: Any) -> dict[str, Any]:
    user = request.user
    context: dict[str, Any] = {
        "change": change,
        "client": change.client,
        "expired": change.is_expired(),
        "callback_form": CallbackForm(numbers=change.numbers_on_file),
        "approve_form": ApproveForm(),
        "may_record_callback": user.has_capability(Capability.UPDATE_BANK_DETAILS),
        "may_approve": user.has_capability(Capability.APPROVE_CHANGES) and user.pk != change.proposed_by_id,
        "is_proposer": user.pk == change.proposed_by_id,
        "validate_poll": reverse("demographics:bank_question", args=[change.pk]) + "?step=validate",
        "submit_poll": reverse("demographics:bank_question", args=[change.pk]) + "?step=submit",
    }
    return {**context, **extra}


@capability_required(Capability.VIEW_CLIENTS)
def change_detail(request: PortalRequest, pk: int) -> HttpResponse:
    return render(request, "demographics/bank_change.html", _context(request, _change(request, pk)))


@capability_required(Capability.VIEW_CLIENTS)
def change_question(request: PortalRequest, pk: int) -> HttpResponse:
    which = request.GET.get("step", "")
    if which not in ("validate", "submit"):
        raise Http404("No such step.")
    change = _change(request, pk)
    return render(request, f"demographics/_bank_{which}.html", _context(request, change))


@capability_required(Capability.UPDATE_BANK_DETAILS)
@require_POST
def callback(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    form = CallbackForm(request.POST, numbers=change.numbers_on_file)
    problem = ""
    if form.is_valid():
        try:
            bank.bank_change_record_callback(user=request.user, change=change, **form.cleaned_data)
        except bank.ChangeRefused as refused:
            problem = str(refused)
    if form.errors or problem:
        change.refresh_from_db()
        context = _context(request, change, callback_form=form, problem=problem)
        return render(request, "demographics/bank_change.html", context, status=400)
    messages.success(request, "The call-back is recorded.")
    return redirect("demographics:bank_change", pk=change.pk)


@capability_required(Capability.APPROVE_CHANGES)
@require_POST
def approve(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    form = ApproveForm(request.POST)
    problem = ""
    if form.is_valid():
        try:
            bank.bank_change_approve(user=request.user, change=change, code=form.cleaned_data["code"])
        except bank.ChangeRefused as refused:
            problem = str(refused)
        else:
            messages.success(request, "Approved: the change is sent to the ATO.")
            return redirect("demographics:bank_change", pk=change.pk)
    change.refresh_from_db()
    context = _context(request, change, approve_form=form, problem=problem)
    return render(request, "demographics/bank_change.html", context, status=400)
