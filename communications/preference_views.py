"""Preference change pages: one client's or the practice default's (Validate, then Submit, with the client's
written authorisation before letters go to the practice), and the bulk change with its progress and each client's
outcome."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from clients.models import Client, ClientGroup, get_client_or_404
from communications import preferences
from communications.models import TO_PRACTICE_CHANNEL, Preference, PreferenceBulk, PreferenceChange
from communications.preference_forms import AuthorityForm, BulkPreferenceForm, PreferenceForm
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from portal.models import User


def _wanted(form: PreferenceForm) -> preferences.Wanted:
    data = form.cleaned_data
    return preferences.Wanted(data["channel"], data.get("email") or "", tuple(data["categories"]))


def _staff(user: User) -> QuerySet[User]:
    return User.objects.filter(practice=user.tenant, is_active=True).order_by("pk")


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
def change_start(request: PortalRequest, pk: int | None = None) -> HttpResponse:
    """A client's preference (or, without a client, the practice default's), sent to the ATO's Validate."""
    client = get_client_or_404(request.user, pk) if pk is not None else None
    form = PreferenceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            change = preferences.preference_change_validate(user=request.user, client=client, wanted=_wanted(form))
        except preferences.CannotChange as problem:
            form.add_error(None, str(problem))
        else:
            return redirect("communications:preference_change", pk=change.pk)
    context = {"client": client, "form": form}
    return render(request, "communications/preference_start.html", context, status=400 if form.errors else 200)


def _change(request: PortalRequest, pk: int) -> PreferenceChange:
    visible = PreferenceChange.objects.filter(practice=request.user.tenant).exclude(
        client__isnull=False, client__in=Client.objects.exclude(pk__in=Client.objects.visible_to(request.user))
    )
    return get_object_or_404(visible.select_related("client", "bulk"), pk=pk)


@capability_required(Capability.VIEW_CLIENTS)
def change_detail(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    authority = preferences.authority_held(change.client) if change.client is not None else None
    context = {
        "change": change,
        "client": change.client,
        "question": change.submit_question or change.validate_question,
        "authority": authority,
        "needs_authority": change.client is not None and authority is None and _to_practice(change.bulk),
        "authority_form": AuthorityForm(staff=_staff(request.user)),
        "poll_url": reverse("communications:preference_change", args=[change.pk]),
    }
    template = "communications/_preference_change.html" if request.htmx else "communications/preference_change.html"
    return render(request, template, context)


def _to_practice(bulk: PreferenceBulk) -> bool:
    if bulk.channel:
        return bulk.channel == TO_PRACTICE_CHANNEL
    default = Preference.objects.filter(practice=bulk.practice, client__isnull=True).first()
    return default is None or default.to_practice


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
@require_POST
def change_submit(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    try:
        preferences.preference_change_submit(user=request.user, change=change)
    except preferences.NotReady as problem:
        messages.error(request, str(problem))
    return redirect("communications:preference_change", pk=change.pk)


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
@require_POST
def change_authority(request: PortalRequest, pk: int) -> HttpResponse:
    change = _change(request, pk)
    form = AuthorityForm(request.POST, request.FILES, staff=_staff(request.user))
    if change.client is None:
        messages.error(request, "The practice default needs no client's authorisation.")
    elif not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    else:
        upload = form.cleaned_data["document"]
        try:
            preferences.authority_record(
                user=request.user,
                client=change.client,
                signed_on=form.cleaned_data["signed_on"],
                held_by=form.cleaned_data["held_by"],
                file_name=upload.name if upload else "",
                content=upload.read() if upload else b"",
            )
        except preferences.CannotChange as problem:
            messages.error(request, str(problem))
        else:
            messages.success(request, "The client's authorisation is recorded.")
    return redirect("communications:preference_change", pk=change.pk)


def _chosen(request: PortalRequest, form: BulkPreferenceForm) -> tuple[list[Client], list[str]]:
    text = form.cleaned_data["clients_csv"]
    if form.cleaned_data["csv_file"]:
        text += "\n" + form.cleaned_data["csv_file"].read().decode("utf-8-sig", errors="replace")
    if text.strip():
        return preferences.clients_from_csv(user=request.user, text=text)
    clients = Client.objects.visible_to(request.user)
    asked = Preference.objects.filter(practice=request.user.tenant, client_id=OuterRef("pk"))
    group = form.cleaned_data["group"] or "all"
    if group == "elsewhere":
        clients = clients.filter(Exists(asked.filter(own=True).exclude(channel=TO_PRACTICE_CHANNEL)))
    elif group == "never":
        clients = clients.exclude(Exists(asked))
    elif group != "all":
        clients = clients.filter(groups__pk=int(group))
    return list(clients.order_by("pk")), []


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
def bulk_start(request: PortalRequest) -> HttpResponse:
    groups = ClientGroup.objects.choices_for(request.user)
    form = BulkPreferenceForm(request.POST or None, request.FILES or None, groups=groups, staff=_staff(request.user))
    if request.method == "POST" and form.is_valid():
        clients, unknown = _chosen(request, form)
        if unknown:
            form.add_error(None, f"These name no client you can see: {', '.join(unknown[:20])}.")
        elif not clients:
            form.add_error(None, "No clients were chosen.")
        else:
            try:
                bulk = preferences.preference_bulk_start(
                    user=request.user,
                    clients=clients,
                    wanted=_wanted(form),
                    signed_on=form.cleaned_data["signed_on"],
                    held_by=form.cleaned_data["held_by"],
                )
            except preferences.CannotChange as problem:
                form.add_error(None, str(problem))
            else:
                return redirect("communications:preference_bulk", pk=bulk.pk)
    return render(
        request, "communications/preference_bulk_start.html", {"form": form}, status=400 if form.errors else 200
    )


@capability_required(Capability.VIEW_CLIENTS)
def bulk_detail(request: PortalRequest, pk: int) -> HttpResponse:
    bulk = get_object_or_404(PreferenceBulk.objects.filter(practice=request.user.tenant), pk=pk)
    rows = list(
        bulk.changes.filter(client__in=Client.objects.visible_to(request.user)).select_related(  # type: ignore[attr-defined]
            "client", "validate_question__message", "submit_question__message"
        )
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
        # The ATO not answering: the clients whose step the gateway is trying again, and those it gave up on.
        "retrying": sum(1 for r in rows if (q := r.submit_question or r.validate_question) and q.is_retrying),
        "can_resume": counts["failed"] and request.user.has_capability(Capability.UPDATE_CLIENT_DETAILS),
        "poll_url": reverse("communications:preference_bulk", args=[bulk.pk]),
    }
    template = "communications/_preference_bulk.html" if request.htmx else "communications/preference_bulk.html"
    return render(request, template, context)


@capability_required(Capability.UPDATE_CLIENT_DETAILS)
@require_POST
def bulk_resume(request: PortalRequest, pk: int) -> HttpResponse:
    bulk = get_object_or_404(PreferenceBulk.objects.filter(practice=request.user.tenant), pk=pk)
    count = preferences.preference_bulk_resume(user=request.user, bulk=bulk)
    if count:
        messages.success(request, f"Asking the ATO again for {count} client{'s' if count != 1 else ''}.")
    else:
        messages.error(request, "No client's change is waiting to be tried again.")
    return redirect("communications:preference_bulk", pk=bulk.pk)
