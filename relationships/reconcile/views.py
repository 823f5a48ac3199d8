"""Reconciliation pages: the runs, one run's progress and drift report, and the lost-access alerts (here and on
the dashboard). Anyone who sees clients sees them; starting or resuming a run needs "manage relationships"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clients.csv_io import write_csv
from portal.audit import audit_record
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from relationships.reconcile import services as service
from relationships.reconcile.models import (
    Drift,
    DriftKind,
    ReconcileRun,
    RelationshipAlert,
    RunStatus,
    get_alert_or_404,
    get_run_or_404,
)
from relationships.services import spreadsheet_cell

SHOWN = 500  # drift rows on the page; the CSV has them all


class StartForm(forms.Form):
    """Starting takes no input; the form is there for CSRF and for the one POST shape every view has."""


class AlertsReadForm(forms.Form):
    back = forms.ChoiceField(choices=[("dashboard", "dashboard"), ("reconcile", "reconcile")], required=False)


def dashboard_panel(request: PortalRequest) -> dict[str, Any]:
    """The dashboard's relationships panel: this user's unread alerts, urgent first, and the last run."""
    alerts = RelationshipAlert.objects.for_user(request.user).unread()
    return {
        "title": "ATO relationships",
        "template": "relationships/reconcile_panel.html",
        "alerts": list(alerts[:5]),
        "unread": alerts.count(),
        "urgent": alerts.filter(urgent=True).count(),
        "last_run": ReconcileRun.objects.for_practice(request.user.tenant).first(),
    }


@capability_required(Capability.VIEW_CLIENTS)
def reconcile(request: PortalRequest) -> HttpResponse:
    user = request.user
    runs = ReconcileRun.objects.for_practice(user.tenant).select_related("started_by")[:20]
    alerts = RelationshipAlert.objects.for_user(user).select_related("drift__run")[:50]
    can_act = user.has_capability(Capability.MANAGE_RELATIONSHIPS)
    return render(request, "relationships/reconcile.html", {"runs": runs, "alerts": alerts, "can_act": can_act})


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def reconcile_start(request: PortalRequest) -> HttpResponse:
    StartForm(request.POST).is_valid()
    run = service.reconcile_start(practice=request.user.tenant, actor=request.user)
    return redirect("relationships:reconcile_run", pk=run.pk)


@capability_required(Capability.VIEW_CLIENTS)
def reconcile_run(request: PortalRequest, pk: int) -> HttpResponse:
    run = get_run_or_404(request.user, pk)
    drift = Drift.objects.visible_to(request.user).filter(run=run)
    counts = dict(drift.order_by().values_list("kind").annotate(n=Count("pk")))
    kind = request.GET.get("kind", "")
    if kind in DriftKind.values:
        drift = drift.filter(kind=kind)
    context = {
        "run": run,
        "drift": drift[:SHOWN],
        "kinds": [(k, label, counts.get(k, 0)) for k, label in DriftKind.choices],
        "kind": kind,
        "total": sum(counts.values()),
        "shown": SHOWN,
        "can_act": request.user.has_capability(Capability.MANAGE_RELATIONSHIPS),
    }
    return render(request, "relationships/reconcile_run.html", context)


@capability_required(Capability.VIEW_CLIENTS)
def reconcile_progress(request: PortalRequest, pk: int) -> HttpResponse:
    run = get_run_or_404(request.user, pk)
    response = render(request, "relationships/reconcile_progress.html", {"run": run})
    if not run.is_running and request.htmx and request.GET.get("was_running"):
        response["HX-Refresh"] = "true"  # the report below the bar is filled once the run ends
    return response


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def reconcile_resume(request: PortalRequest, pk: int) -> HttpResponse:
    run = get_run_or_404(request.user, pk)
    StartForm(request.POST).is_valid()
    if run.status == RunStatus.DONE:
        messages.info(request, "That run has finished; start a new one to check again.")
        return redirect("relationships:reconcile_run", pk=run.pk)
    resumed = service.reconcile_resume(run=run, actor=request.user)
    return redirect("relationships:reconcile_run", pk=resumed.pk)


@capability_required(Capability.VIEW_CLIENTS)
def reconcile_report_csv(request: PortalRequest, pk: int) -> StreamingHttpResponse:
    """The whole drift report; identifiers as the page shows them (a TFN only masked)."""
    run = get_run_or_404(request.user, pk)
    with transaction.atomic():
        audit_record("relationships.drift_exported", request=request, target=run)

    def rows() -> Iterator[list[object]]:
        yield ["kind", "client", "identifier", "details"]
        drift = Drift.objects.visible_to(request.user).filter(run=run).order_by("pk")
        for d in drift.iterator(chunk_size=2000):
            yield [d.get_kind_display(), spreadsheet_cell(d.name), d.identifier, spreadsheet_cell(d.details)]

    response = StreamingHttpResponse(write_csv(rows()), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="drift-{run.pk}.csv"'
    return response


@capability_required(Capability.VIEW_CLIENTS)
@require_POST
def reconcile_alert_read(request: PortalRequest, pk: int) -> HttpResponse:
    alert = get_alert_or_404(request.user, pk)
    return _mark_read(request, [alert])


@capability_required(Capability.VIEW_CLIENTS)
@require_POST
def reconcile_alerts_read(request: PortalRequest) -> HttpResponse:
    return _mark_read(request, list(RelationshipAlert.objects.for_user(request.user).unread()[:1000]))


def _mark_read(request: PortalRequest, alerts: list[RelationshipAlert]) -> HttpResponse:
    form = AlertsReadForm(request.POST)
    back = form.cleaned_data["back"] if form.is_valid() else ""
    service.alerts_mark_read(user=request.user, alerts=alerts)
    return redirect("relationships:reconcile" if back == "reconcile" else "portal:dashboard")
