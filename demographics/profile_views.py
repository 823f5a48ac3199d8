"""Change pages for a client's details (CUDTL) and its authorised contact (CUAUTHCNTCT): Validate, then Submit."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from clients.models import Client, get_client_or_404
from demographics import profile, services
from demographics.forms import ContactForm, DetailsForm
from demographics.models import ProfileChange
from demographics.services import CannotAsk
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest

FORMS: dict[str, type[DetailsForm] | type[ContactForm]] = {
    ProfileChange.Kind.DETAILS: DetailsForm,
    ProfileChange.Kind.CONTACT: ContactForm,
}


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
def change_start(request: PortalRequest, pk: int, kind: str) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    if kind not in FORMS:
        raise Http404("No such change.")
    form: forms.Form
    if kind == ProfileChange.Kind.CONTACT:  # at the client's level or one of its accounts the register holds
        form = ContactForm(request.POST or None, levels=services.levels_of([client.pk])[client.pk])
    else:
        form = DetailsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        assert isinstance(form, DetailsForm | ContactForm)
        try:
            change = profile.profile_change_validate(user=request.user, client=client, kind=kind, values=form.values())
        except CannotAsk as problem:
            form.add_error(None, str(problem))
        else:
            return redirect("demographics:profile_change", pk=change.pk)
    context = {"client": client, "form": form, "label": ProfileChange.Kind(kind).label}
    return render(request, "demographics/profile_start.html", context, status=400 if form.errors else 200)


def _change(request: PortalRequest, pk: int) -> ProfileChange:
    visible = ProfileChange.objects.filter(client__in=Client.objects.visible_to(request.user))
    return get_object_or_404(visible.select_related("client"), pk=pk)


@capability_required(Capability.VIEW_CLIENTS)
def change_detail(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    poll_url = reverse("demographics:profile_change", args=[change.pk])
    context = {"change": change, "client": change.client, "poll_url": poll_url}
    template = "demographics/_profile_change.html" if request.htmx else "demographics/profile_change.html"
    return render(request, template, context)


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
@require_POST
def change_submit(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    try:
        profile.profile_change_submit(user=request.user, change=change)
    except profile.NotReady as problem:
        messages.error(request, str(problem))
    return redirect("demographics:profile_change", pk=change.pk)
