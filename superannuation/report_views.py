"""Reporting to the ATO: the fund's Reporting section (start the foundation data load, send the pending real-time
events), a report with its progress bar and the counts of matched, corrected and unmatched, a batch with its
technical receipt and pull times and the resubmission of its failed transactions, and the fund's Reports section."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from superannuation import services
from superannuation.models import Batch, BatchState, Meaning, Report, ReportKind, SuperFund, Transaction
from superannuation.views import get_fund, may_manage, tab_url

# The meanings counted together on a report's page: what the fund administrator reads first.
COUNTED = {
    "matched": [Meaning.MATCHED, Meaning.MATCHED_NO_NOTICE],
    "corrected": [Meaning.CORRECTED, Meaning.PROVIDED],
    "unmatched": [Meaning.UNMATCHED_FOUNDATION, Meaning.UNMATCHED, Meaning.PLEASE_RESOLVE],
    "failed": [Meaning.VALIDATION_ERROR, Meaning.OTHER_HOLDER, Meaning.MORE_RECENT],
}


def _counts(transactions: Any) -> dict[str, int]:
    figures = {name: Count("pk", filter=Q(meaning__in=meanings)) for name, meanings in COUNTED.items()}
    return transactions.aggregate(
        sent=Count("pk"), answered=Count("pk", filter=Q(answered_at__isnull=False)), **figures
    )


def foundation_done(fund: SuperFund) -> bool:
    return fund.reports.filter(kind=ReportKind.FOUNDATION, built_at__isnull=False).exists()


def reporting_context(request: PortalRequest, fund: SuperFund) -> dict[str, Any]:
    return {
        "reports": fund.reports.select_related("started_by")[:10],
        "batches": fund.batches.annotate(
            answered=Count("transactions", filter=Q(transactions__answered_at__isnull=False))
        )[:20],
        "pending": Transaction.objects.filter(member__fund=fund).pending().count(),
        "foundation_done": foundation_done(fund),
        "foundation_running": fund.reports.filter(kind=ReportKind.FOUNDATION, finished_at__isnull=True).first(),
    }


def reports_context(request: PortalRequest, fund: SuperFund) -> dict[str, Any]:
    figures = services.fund_report(user=request.user, fund=fund)
    labels = dict(Meaning.choices)
    responses = [(labels[meaning], n) for meaning, n in figures["responses"].items()]
    return {"figures": figures, "responses": responses, "has_responses": any(n for _, n in responses)}


@capability_required(Capability.MANAGE_SUPER_FUNDS)
def foundation_start(request: PortalRequest, pk: int) -> HttpResponse:
    """A confirmation page, then the foundation data load: every open account of the fund, reported in bulk."""
    fund = get_fund(request, pk)
    if request.method == "POST":
        try:
            report = services.foundation_load_start(user=request.user, fund=fund)
        except ValidationError as problem:
            messages.error(request, " ".join(problem.messages))
            return redirect(tab_url(fund, "reporting"))
        return redirect("superannuation:report", pk=report.pk)
    open_accounts = fund.members.exclude(status="closed").count()
    return render(request, "superannuation/foundation_confirm.html", {"fund": fund, "open_accounts": open_accounts})


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def realtime_start(request: PortalRequest, pk: int) -> HttpResponse:
    fund = get_fund(request, pk)
    try:
        report = services.realtime_report_start(user=request.user, fund=fund)
    except ValidationError as problem:
        messages.error(request, " ".join(problem.messages))
        return redirect(tab_url(fund, "reporting"))
    return redirect("superannuation:report", pk=report.pk)


def _report(request: PortalRequest, pk: int) -> Report:
    funds = SuperFund.objects.visible_to(request.user)
    return get_object_or_404(Report.objects.filter(fund__in=funds).select_related("fund", "started_by"), pk=pk)


def _progress(report: Report) -> dict[str, Any]:
    counts = _counts(Transaction.objects.filter(batch__report=report))
    return {
        "report": report,
        "counts": counts,
        "finished": report.finished_at is not None,
        "batches": report.batches.annotate(
            answered=Count("transactions", filter=Q(transactions__answered_at__isnull=False))
        ).order_by("pk"),
    }


@capability_required(Capability.VIEW_CLIENTS)
def report_detail(request: PortalRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    return render(request, "superannuation/report.html", {"fund": report.fund, **_progress(report)})


@capability_required(Capability.VIEW_CLIENTS)
def report_progress(request: PortalRequest, pk: int) -> HttpResponse:
    return render(request, "superannuation/_report_progress.html", _progress(_report(request, pk)))


def _batch(request: PortalRequest, pk: int) -> Batch:
    return get_object_or_404(Batch.objects.visible_to(request.user).select_related("fund", "report"), pk=pk)


def _choosable(t: Transaction, whole: bool) -> str:
    """ "yes" when the transaction may be resubmitted, "held" for a 096604 not remediated yet, else "" (processed,
    resubmitted already, or not answered yet)."""
    if t.processed or hasattr(t, "resubmitted_as") or not (t.processed is False or whole):
        return ""
    item = getattr(t, "work_item", None)
    return "held" if item is not None and not item.may_resubmit else "yes"


@capability_required(Capability.VIEW_CLIENTS)
def batch_detail(request: PortalRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    whole = batch.state in (BatchState.REFUSED, BatchState.FAILED)  # nothing of it was answered: all may go again
    transactions = [
        (t, _choosable(t, whole))
        for t in batch.transactions.select_related("member", "work_item", "resubmitted_as__batch").order_by("pk")
    ]
    context = {
        "batch": batch,
        "fund": batch.fund,
        "transactions": transactions,
        "counts": _counts(batch.transactions.all()),
        "can_manage": may_manage(request),
    }
    return render(request, "superannuation/batch.html", context)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def batch_resubmit(request: PortalRequest, pk: int) -> HttpResponse:
    """Only the transactions chosen, and the services refuse any that was processed or whose 096604 has no
    remediation yet: a batch of 10 with 4 failures resubmits the 4."""
    batch = _batch(request, pk)
    ids = [int(v) for v in request.POST.getlist("transactions") if v.isdigit()]
    chosen = list(batch.transactions.filter(pk__in=ids).select_related("member"))
    if not chosen:
        messages.error(request, "Choose the failed transactions to resubmit.")
        return redirect("superannuation:batch", pk=batch.pk)
    try:
        report = services.transactions_resubmit(user=request.user, fund=batch.fund, transactions=chosen)
    except ValidationError as problem:
        messages.error(request, " ".join(problem.messages))
        return redirect("superannuation:batch", pk=batch.pk)
    messages.success(request, f"{len(chosen)} transaction{'s' if len(chosen) != 1 else ''} resubmitted.")
    return redirect("superannuation:report", pk=report.pk)


@capability_required(Capability.VIEW_CLIENTS)
def fund_report_csv(request: PortalRequest, pk: int) -> StreamingHttpResponse:
    fund = get_fund(request, pk)
    response = StreamingHttpResponse(services.fund_report_csv(user=request.user, fund=fund), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="report-{fund.usi}.csv"'
    return response
