"""The Details tab of a client's page: what the ATO holds, service by service (details, addresses, bank accounts,
authorised contacts, associates), beside the register, with what changed since the snapshot before and a button to
ask again. The tab is fetched by htmx; each section's question polls its own fragment until the ATO answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from clients.models import Client, get_client_or_404
from demographics import services
from demographics.models import (
    SNAPSHOT_MODELS,
    AccountLevelSnapshot,
    BankChange,
    DriftAlert,
    DriftRun,
    Service,
    Snapshot,
)
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest


def _service(raw: str) -> str:
    if raw not in SNAPSHOT_MODELS:
        raise Http404("No such section.")
    return raw


@dataclass
class LevelShown:
    """One level's newest answer, the one before it, and what changed between them."""

    name: str
    current: AccountLevelSnapshot
    previous: AccountLevelSnapshot | None
    changes: services.Changes | None


def _levels(client: Client, model: type[AccountLevelSnapshot]) -> tuple[list[AccountLevelSnapshot], list[LevelShown]]:
    """The newest snapshot of each level (answered or not), and each level's two newest answers compared: two
    queries whatever the number of accounts, the client level first."""
    by_level = ("account_kind", "account_branch")
    newest = model.objects.filter(client=client).select_related("question").order_by(*by_level, "-asked_at", "-pk")
    rank = Window(RowNumber(), partition_by=[F(f) for f in by_level], order_by=[F("asked_at").desc(), F("pk").desc()])
    answered = model.objects.filter(client=client).answered().annotate(rank=rank).filter(rank__lte=2)
    two: dict[tuple[str, str], list[AccountLevelSnapshot]] = {}
    for snapshot in answered.order_by(*by_level, "rank"):
        two.setdefault((snapshot.account_kind, snapshot.account_branch), []).append(snapshot)
    shown = []
    for current, *before in two.values():
        previous = before[0] if before else None
        shown.append(LevelShown(current.level, current, previous, services.snapshot_changes(current, previous)))
    return list(newest.distinct(*by_level)), shown


def _section(client: Client, service: str, **extra: Any) -> dict[str, Any]:
    model = SNAPSHOT_MODELS[service]
    levels: list[LevelShown] = []
    latest: Snapshot | None
    current: Snapshot | None
    previous: Snapshot | None
    if issubclass(model, AccountLevelSnapshot):
        newest, levels = _levels(client, model)
        # The page waits on any level the ATO has not answered yet, else shows the client level's question.
        waiting = [s for s in newest if not s.question.is_settled]
        latest = waiting[0] if waiting else (newest[0] if newest else None)
        current = levels[0].current if levels else None
        previous = levels[0].previous if levels else None
    else:
        latest = model.objects.filter(client=client).select_related("question").newest_first().first()
        answered = list(model.objects.filter(client=client).answered().newest_first()[:2])
        current = answered[0] if answered else None
        previous = answered[1] if len(answered) > 1 else None
    context: dict[str, Any] = {
        "levels": levels,
        "client": client,
        "service": service,
        "label": Service(service).label,
        "sections": Service.choices,
        "latest": latest,
        "current": current,
        "changes": services.snapshot_changes(current, previous) if current else None,
        "previous": previous,
        "poll_url": reverse("demographics:section", args=[client.pk]) + f"?section={service}",
        "answer_template": f"demographics/_{service}.html",
        "can_ask": bool(client.tfn_last3 or client.abn or client.wpn),
    }
    if service == Service.BANK:
        context["open_changes"] = BankChange.objects.filter(client=client)[:20]
    if service == Service.DETAILS:
        context["compared"] = services.register_comparison(client, current.facts if current else None)
    return {**context, **extra}


@capability_required(Capability.VIEW_CLIENTS)
def client_tab(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    service = _service(request.GET.get("section", Service.DETAILS))
    return render(request, "demographics/_client_tab.html", _section(client, service))


@capability_required(Capability.VIEW_CLIENTS)
def section(request: PortalRequest, pk: int) -> HttpResponse:
    """One section's question, polled while it waits and swapped whole by its answer."""
    client = get_client_or_404(request.user, pk)
    service = _service(request.GET.get("section", Service.DETAILS))
    return render(request, "demographics/_section.html", _section(client, service))


@capability_required(Capability.VIEW_CLIENTS)
@require_POST
def ask(request: PortalRequest, pk: int) -> HttpResponse:
    """Ask the ATO again: reading what it holds changes nothing, so anyone who sees the client may."""
    client = get_client_or_404(request.user, pk)
    service = _service(request.POST.get("service", Service.DETAILS))
    try:
        services.snapshot_ask(user=request.user, client=client, service=service)
    except services.CannotAsk as problem:
        return render(request, "demographics/_client_tab.html", _section(client, service, problem=str(problem)))
    return render(request, "demographics/_client_tab.html", _section(client, service))


def drift_panel(request: PortalRequest) -> dict[str, Any]:
    """The dashboard's drift panel: changes at the ATO the practice did not make, for the clients this user sees,
    urgent (bank accounts) first, until this user has marked them read."""
    visible = DriftAlert.objects.filter(client__in=Client.objects.visible_to(request.user))
    alerts = visible.unread_by(request.user).select_related("client")
    return {
        "title": "Changes at the ATO",
        "template": "demographics/drift_panel.html",
        "alerts": list(alerts[:10]),
        "urgent": alerts.filter(urgent=True).count(),
        "last_run": DriftRun.objects.filter(practice=request.user.tenant).first(),
    }


@capability_required(Capability.VIEW_CLIENTS)
@require_POST
def alert_read(request: PortalRequest, pk: int) -> HttpResponse:
    """Seeing an alert changes nothing at the ATO or in the register, so anyone it is shown to may mark it read."""
    from demographics import drift

    visible = DriftAlert.objects.filter(client__in=Client.objects.visible_to(request.user))
    drift.drift_alert_mark_read(user=request.user, alert=get_object_or_404(visible, pk=pk))
    return redirect("portal:dashboard")


@capability_required(Capability.OPERATE_GATEWAY)
@require_POST
def watch_start(request: PortalRequest) -> HttpResponse:
    """An admin starts the drift watch now (the nightly job's run), then follows it on its page."""
    from demographics import drift

    run = drift.drift_watch_start(practice=request.user.tenant)
    drift.drift_watch_enqueue(run.pk)
    return redirect("demographics:watch", pk=run.pk)


@capability_required(Capability.VIEW_CLIENTS)
def watch_detail(request: PortalRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(DriftRun.objects.filter(practice=request.user.tenant), pk=pk)
    clients = Client.objects.filter(practice=run.practice)
    total = clients.count()
    done = total if run.finished_at else clients.filter(pk__lte=run.last_client_id).count()
    context = {
        "run": run,
        "total": total,
        "done": done,
        "alerts": DriftAlert.objects.filter(practice=run.practice, found_at__gte=run.started_at).count(),
        "poll_url": reverse("demographics:watch", args=[run.pk]),
    }
    template = "demographics/_watch_progress.html" if request.htmx else "demographics/watch.html"
    return render(request, template, context)
