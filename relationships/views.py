"""Relationships pages: add a client from the ATO, a client's links, their removal and history.

Each step (search, validate, submit; validate-remove, remove) is an ``AtoRequest`` with a page of its own. The
page never waits on the ATO: it shows the request as waiting and polls its fragment until the worker has the answer,
and the step's form posts with htmx so the next request replaces the fragment in place (a plain POST still works).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from clients.models import get_client_or_404
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from relationships import services
from relationships.forms import LinkChoiceForm, RemoveForm, SearchForm
from relationships.models import (
    AtoRequest,
    Level,
    Link,
    LinkChange,
    RequestKind,
    RequestStatus,
    describe_level,
    get_request_or_404,
)

ENTITY_NAMES = {
    "IND": "Individual",
    "COY": "Company",
    "TRT": "Trust",
    "PTR": "Partnership",
    "SMF": "Self-managed super fund",
    "OTH": "Other entity",
}


@capability_required(Capability.VIEW_CLIENTS)
def home(request: PortalRequest) -> HttpResponse:
    recent = AtoRequest.objects.visible_to(request.user).select_related("created_by", "client", "question")[:25]
    return render(request, "relationships/home.html", {"recent": recent})


@capability_required(Capability.MANAGE_RELATIONSHIPS)
def add(request: PortalRequest) -> HttpResponse:
    """Look for a client at the ATO, optionally one of the register's (?client=pk) with its details filled in."""
    raw = request.GET.get("client", "")
    client = get_client_or_404(request.user, int(raw)) if raw.isdigit() else None
    initial: dict[str, Any] = {}
    if client is not None:
        initial = {
            "entity": "individual" if client.is_individual else "organisation",
            "identifier_kind": "TFN" if client.tfn_last3 else "ABN" if client.abn else "WPN",
            "family_name": client.family_name,
            "given_name": client.given_names.split(" ")[0] if client.given_names else "",
            "date_of_birth": client.date_of_birth.isoformat() if client.date_of_birth else "",
            "organisation_name": client.organisation_name,
        }
    form = SearchForm(request.POST or None, client=client, initial=initial)
    if request.method == "POST" and form.is_valid():
        req = services.link_search(user=request.user, **form.search_fields())
        return redirect("relationships:request", pk=req.pk)
    return render(request, "relationships/add.html", {"form": form, "client": client})


def _step(req: AtoRequest, **extra: Any) -> dict[str, Any]:
    """What the fragment of a request shows at its step: waiting (the gateway's question fragment), the ATO's
    answer and the next step's form, or why it was refused."""
    found = services.found_client(req) if req.kind in (RequestKind.SEARCH, RequestKind.VALIDATE) else None
    document = req.reply().document
    answered = req.status == RequestStatus.ANSWERED
    context: dict[str, Any] = {
        "req": req,
        "question": req.question,
        "found": found,
        "entity": ENTITY_NAMES.get(found.entity_type, "") if found else "",
        "asked": [describe_level(*key) for key in req.links],
        "refusal": services.refusal_in_plain_words(req) if req.is_settled and not answered else [],
        "warnings": services.warnings_in_plain_words(req) if answered else [],
        "notes": [services.api.item_in_plain_words(i) for i in req.items("Information") if i.code != "GEN.OK"],
        "document": document,
        "start_again": reverse("relationships:add") + (f"?client={req.client_id}" if req.client_id else ""),
        "poll_url": reverse("relationships:request", args=[req.pk]),
        "heading": req.get_kind_display()
        + (": " + ", ".join(describe_level(*k) for k in req.links) if req.links else ""),
        # "Validate — Add a client from the ATO": the page's title, kept right by htmx as the step changes in place.
        "step_title": req.get_kind_display()
        + (
            " — Remove a link"
            if req.kind in (RequestKind.VALIDATE_REMOVE, RequestKind.REMOVE)
            else " — Add a client from the ATO"
        ),
    }
    if answered and req.kind == RequestKind.SEARCH and "choice_form" not in extra:
        context["choice_form"] = LinkChoiceForm(found=found)
    if answered and req.kind in (RequestKind.SUBMIT, RequestKind.REMOVE, RequestKind.VALIDATE_REMOVE):
        context["done"] = [describe_level(*services.key_of(r)) for r in getattr(document, "relationships", [])]
    next_step = req.children.select_related("question").order_by("-created_at").first()
    context["next_step"] = next_step
    return {**context, **extra}


def _show(request: PortalRequest, req: AtoRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    """The request's page, or only its fragment for htmx (a poll, or a step's form posted in place)."""
    if request.htmx:
        response = render(request, "relationships/_request.html", _step(req, **extra))
        if request.method == "POST":  # the address bar follows the step shown, so a reload shows the same
            response["HX-Push-Url"] = reverse("relationships:request", args=[req.pk])
        return response
    return render(request, "relationships/request.html", _step(req, **extra), status=status)


@capability_required(Capability.VIEW_CLIENTS)
def request_detail(request: PortalRequest, pk: int) -> HttpResponse:
    return _show(request, get_request_or_404(request.user, pk))


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def validate(request: PortalRequest, pk: int) -> HttpResponse:
    searched = get_request_or_404(request.user, pk)
    if searched.kind != RequestKind.SEARCH or searched.status != RequestStatus.ANSWERED:
        return HttpResponse("Only a search the ATO answered can be validated.", status=400)
    form = LinkChoiceForm(request.POST, found=services.found_client(searched))
    if not form.is_valid():
        return _show(request, searched, status=400, choice_form=form)
    return _next(request, services.link_validate(user=request.user, previous=searched, links=form.keys()))


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def submit(request: PortalRequest, pk: int) -> HttpResponse:
    validated = get_request_or_404(request.user, pk)
    try:  # a second click (or a resent form) gets the link already asked for
        return _next(request, services.link_submit(user=request.user, validated=validated))
    except services.NotReady as problem:
        messages.error(request, str(problem))
        return redirect("relationships:request", pk=validated.pk)


def _next(request: PortalRequest, req: AtoRequest) -> HttpResponse:
    return _show(request, req) if request.htmx else redirect("relationships:request", pk=req.pk)


@capability_required(Capability.VIEW_CLIENTS)
def client_tab(request: PortalRequest, pk: int) -> HttpResponse:
    """The Relationships tab of a client's page: its links by level, a removal per link, the history."""
    client = get_client_or_404(request.user, pk)
    links = list(Link.objects.current().filter(client=client))
    context = {
        "client": client,
        "client_links": [link for link in links if link.level == Level.CLIENT],
        "account_links": [link for link in links if link.level == Level.ACCOUNT],
        "role_links": [link for link in links if link.level == Level.ROLE],
        "history": LinkChange.objects.filter(client=client).select_related("actor")[:100],
        "waiting": AtoRequest.objects.visible_to(request.user).filter(client=client).waiting(),
        "can_name_to_ato": bool(client.tfn_last3 or client.abn or client.wpn),
    }
    return render(request, "relationships/_client_tab.html", context)


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def remove(request: PortalRequest, pk: int) -> HttpResponse:
    """Start removing one of the client's links: Validate-remove first, whose warnings the next page shows."""
    client = get_client_or_404(request.user, pk)
    form = RemoveForm(request.POST, client=client)
    if not form.is_valid():
        messages.error(request, "That link is no longer current; the list below is up to date.")
        return redirect(reverse("clients:detail", args=[client.pk]) + "?tab=relationships")
    try:
        req = services.link_validate_removal(user=request.user, client=client, links=[form.cleaned_data["link"]])
    except services.NotReady as problem:
        messages.error(request, str(problem))
        return redirect(reverse("clients:detail", args=[client.pk]) + "?tab=relationships")
    return redirect("relationships:request", pk=req.pk)


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def remove_confirm(request: PortalRequest, pk: int) -> HttpResponse:
    validated = get_request_or_404(request.user, pk)
    try:  # a second click gets the removal already asked for
        return _next(request, services.link_remove(user=request.user, validated=validated))
    except services.NotReady as problem:
        messages.error(request, str(problem))
        return redirect("relationships:request", pk=validated.pk)
