"""Bulk link pages: upload a CSV of identifiers, review every row as the ATO validates it, link the chosen rows,
download the outcome. Anyone who may see clients sees these pages; acting needs "manage relationships"."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from clients.csv_io import CsvProblem, write_csv
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from relationships.bulk import services as bulk
from relationships.models import BulkJob, BulkRow, BulkStatus


class BulkUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))


class BulkSubmitForm(forms.Form):
    rows = forms.ModelMultipleChoiceField(
        queryset=BulkRow.objects.none(),
        required=False,
        error_messages={"invalid_choice": "A chosen row is not part of this bulk link."},
    )

    def __init__(self, job: BulkJob, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["rows"].queryset = job.rows.all()  # type: ignore[attr-defined]


def _list(request: PortalRequest, form: BulkUploadForm) -> HttpResponse:
    recent = bulk.bulk_visible_to(request.user).select_related("created_by").annotate(row_count=Count("rows"))[:20]
    context = {"form": form, "recent": recent, "max_rows": bulk.MAX_ROWS, "max_kb": bulk.MAX_BYTES // 1024}
    return render(request, "relationships/bulk_list.html", context)


@capability_required(Capability.VIEW_CLIENTS)
def bulk_list(request: PortalRequest) -> HttpResponse:
    return _list(request, BulkUploadForm())


@capability_required(Capability.MANAGE_RELATIONSHIPS)
def bulk_upload(request: PortalRequest) -> HttpResponse:
    form = BulkUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > bulk.MAX_BYTES:
            form.add_error(
                "file", f"The file is {upload.size // 1024:,} KB; the limit is {bulk.MAX_BYTES // 1024:,} KB."
            )
        else:
            try:
                job = bulk.bulk_upload(user=request.user, filename=upload.name, raw=upload.read())
                return redirect("relationships:bulk_detail", pk=job.pk)
            except CsvProblem as problem:
                form.add_error("file", str(problem))
    return _list(request, form)


def _detail_context(job: BulkJob) -> dict[str, object]:
    outcomes = bulk.row_outcomes(job)
    return {
        "job": job,
        "outcomes": outcomes,
        "counts": bulk.summary(outcomes),
        "progress": bulk.progress(job),
        "active": job.status in (BulkStatus.VALIDATING, BulkStatus.SUBMITTING),
    }


@capability_required(Capability.VIEW_CLIENTS)
def bulk_detail(request: PortalRequest, pk: int) -> HttpResponse:
    job = bulk.get_bulk_or_404(request.user, pk)
    bulk.bulk_finish_if_settled(job.pk)
    job.refresh_from_db()
    return render(request, "relationships/bulk_detail.html", _detail_context(job))


@never_cache
@capability_required(Capability.VIEW_CLIENTS)
def bulk_progress(request: PortalRequest, pk: int) -> HttpResponse:
    job = bulk.get_bulk_or_404(request.user, pk)
    bulk.bulk_finish_if_settled(job.pk)
    job.refresh_from_db()
    response = render(request, "relationships/bulk_progress.html", _detail_context(job))
    if job.status not in (BulkStatus.VALIDATING, BulkStatus.SUBMITTING) and request.GET.get("was_active"):
        response["HX-Refresh"] = "true"  # the full page: the choice form once checked, the report once linked
    return response


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def bulk_submit(request: PortalRequest, pk: int) -> HttpResponse:
    job = bulk.get_bulk_or_404(request.user, pk)
    form = BulkSubmitForm(job, request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors["rows"]))
    else:
        try:
            sent = bulk.bulk_submit(user=request.user, job=job, rows=form.cleaned_data["rows"])
            messages.success(request, f"Linking {sent} row{'s' if sent != 1 else ''} with the ATO.")
        except bulk.NotReady as reason:
            messages.error(request, str(reason))
    return redirect("relationships:bulk_detail", pk=job.pk)


@capability_required(Capability.MANAGE_RELATIONSHIPS)
@require_POST
def bulk_check_again(request: PortalRequest, pk: int) -> HttpResponse:
    job = bulk.get_bulk_or_404(request.user, pk)
    try:
        asked = bulk.bulk_check_again(user=request.user, job=job)
        messages.success(request, f"Checking {asked} row{'s' if asked != 1 else ''} with the ATO again.")
    except bulk.NotReady as reason:
        messages.error(request, str(reason))
    return redirect("relationships:bulk_detail", pk=job.pk)


@capability_required(Capability.VIEW_CLIENTS)
def bulk_report(request: PortalRequest, pk: int) -> StreamingHttpResponse:
    job = bulk.get_bulk_or_404(request.user, pk)
    response = StreamingHttpResponse(write_csv(bulk.report_rows(user=request.user, job=job)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="bulk-link-{job.pk}-outcome.csv"'
    return response
