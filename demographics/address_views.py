"""Address change pages: one client's (Validate, then Submit), and the bulk change with its progress and each
client's outcome."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from clients.models import Client, ClientGroup, get_client_or_404
from demographics import addresses
from demographics.forms import AddressForm, BulkAddressForm, ClientAddressForm
from demographics.models import AddressBulk, AddressChange
from demographics.services import CannotAsk
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest


def _address(form: AddressForm) -> dict[str, str]:
    return {name: form.cleaned_data[name] for name in addresses.ADDRESS_FIELDS}


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
def change_start(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    form = ClientAddressForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            if form.cleaned_data["every_account"]:
                bulk = addresses.address_bulk_accounts(user=request.user, client=client, address=_address(form))
                return redirect("demographics:address_bulk", pk=bulk.pk)
            change = addresses.address_change_validate(user=request.user, client=client, address=_address(form))
        except CannotAsk as problem:
            form.add_error(None, str(problem))
        else:
            return redirect("demographics:address_change", pk=change.pk)
    return render(
        request, "demographics/address_start.html", {"client": client, "form": form}, status=400 if form.errors else 200
    )


def _change(request: PortalRequest, pk: int) -> AddressChange:
    visible = AddressChange.objects.filter(client__in=Client.objects.visible_to(request.user))
    return get_object_or_404(visible.select_related("client"), pk=pk)


@capability_required(Capability.VIEW_CLIENTS)
def change_detail(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    poll_url = reverse("demographics:address_change", args=[change.pk])
    context = {"change": change, "client": change.client, "poll_url": poll_url}
    template = "demographics/_address_change.html" if request.htmx else "demographics/address_change.html"
    return render(request, template, context)


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
@require_POST
def change_submit(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    try:
        addresses.address_change_submit(user=request.user, change=change)
    except addresses.NotReady as problem:
        messages.error(request, str(problem))
    return redirect("demographics:address_change", pk=change.pk)


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
def bulk_start(request: PortalRequest) -> HttpResponse:
    groups = ClientGroup.objects.choices_for(request.user)
    form = BulkAddressForm(request.POST or None, groups=groups)
    if request.method == "POST" and form.is_valid():
        clients = Client.objects.visible_to(request.user)
        if form.cleaned_data["group"] != "all":
            clients = clients.filter(groups__pk=int(form.cleaned_data["group"]))
        bulk = addresses.address_bulk_start(user=request.user, clients=clients.iterator(), address=_address(form))
        return redirect("demographics:address_bulk", pk=bulk.pk)
    return render(request, "demographics/bulk_start.html", {"form": form}, status=400 if form.errors else 200)


@capability_required(Capability.VIEW_CLIENTS)
def bulk_detail(request: PortalRequest, pk: int) -> HttpResponse:
    bulk = get_object_or_404(AddressBulk.objects.filter(practice=request.user.tenant), pk=pk)
    rows = bulk.changes.filter(client__in=Client.objects.visible_to(request.user)).select_related(  # type: ignore[attr-defined]
        "client", "validate_question", "submit_question"
    )
    counts = bulk.counts(request.user)
    total = sum(counts.values())
    done = counts["accepted"] + counts["refused"] + counts["failed"]
    context = {
        "bulk": bulk,
        "rows": rows,
        "counts": counts,
        "total": total,
        "done": done,
        "finished": done == total,
        "poll_url": reverse("demographics:address_bulk", args=[bulk.pk]),
    }
    template = "demographics/_bulk_progress.html" if request.htmx else "demographics/bulk_detail.html"
    return render(request, template, context)
