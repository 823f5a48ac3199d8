from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ato_gateway import services
from ato_gateway.forms import CredentialImportForm, MessageFilterForm
from ato_gateway.models import (
    MachineCredential,
    MessageStatus,
    OutboxMessage,
    get_credential_or_404,
    get_message_or_404,
)
from portal.apps import restricted_visible
from portal.audit import audit_record
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from portal.logging import redact_tfns


@capability_required(Capability.OPERATE_GATEWAY)
def console(request: PortalRequest) -> HttpResponse:
    form = MessageFilterForm(request.GET or None)
    scoped = OutboxMessage.objects.for_practice(request.user.tenant)
    if request.user.restricted_to_groups:
        # Only messages about what their groups let them see: not every client's traffic in the practice.
        scoped = scoped.filter(restricted_visible(request.user, type_field="subject_type", id_field="subject_id"))
    log = scoped
    if form.is_valid():
        data = form.cleaned_data
        for field in ("service", "action", "status"):
            if data[field]:
                log = log.filter(**{field: data[field]})
        if data["client"]:
            log = log.filter(Q(subject_repr__icontains=data["client"]) | Q(subject_id=data["client"]))
        if data["date_from"]:
            log = log.filter(created_at__date__gte=data["date_from"])
        if data["date_to"]:
            log = log.filter(created_at__date__lte=data["date_to"])
    counts = dict(scoped.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    audit_record("gateway.console_viewed", request=request, details={"filters": _filters_for_audit(form)})
    context = {
        "form": form,
        "log": log[:200],
        "counts": counts,
        "statuses": MessageStatus,
        "health": services.gateway_health(practice=request.user.tenant),
    }
    return render(request, "ato_gateway/console.html", context)


def _filters_for_audit(form: MessageFilterForm) -> dict[str, str]:
    """What the audit trail keeps of a console search: the filters the form accepted, TFNs masked. Never the raw
    query string, which keeps for ever whatever was typed (a TFN in "Client or subject") and can hold characters
    the database refuses (a NUL)."""
    if not form.is_bound:
        return {}
    if not form.is_valid():
        return {"refused": ",".join(sorted(form.errors))}
    return {name: redact_tfns(str(value)) for name, value in form.cleaned_data.items() if value}


@capability_required(Capability.OPERATE_GATEWAY)
def message_detail(request: PortalRequest, pk: int) -> HttpResponse:
    message = get_message_or_404(request.user, pk)
    if request.headers.get("X-Poll") != "1":  # the page's own progress polling is not a fresh view
        audit_record("gateway.message_viewed", request=request, target=message)
    payloads = [(name, redact_tfns(text)) for name, text in message.payloads()]
    response = {name: redact_tfns(text) for name, text in message.response().get("documents", {}).items()}
    attempts = list(message.attempt_log.all())
    # The ATO's error text can quote what was sent; rows recorded before it was masked at the source are masked here.
    # (Only these in-memory instances, for the page: nothing is saved.)
    message.error_text = redact_tfns(message.error_text)
    for attempt in attempts:
        attempt.error_text = redact_tfns(attempt.error_text)
    context = {
        "message": message,
        "attempts": attempts,
        "payloads": payloads,
        "response": response,
        "events": message.response().get("events", []),
    }
    if request.htmx:
        # The page polls its status alone; the answer and the attempts come along only when they changed, so that
        # an open wire section stays open and focus stays where it is (docs/accessibility.md).
        context["changed"] = message.is_terminal or request.GET.get("attempts") != str(len(attempts))
        return render(request, "ato_gateway/_message_poll.html", context)
    return render(request, "ato_gateway/message_detail.html", context)


@capability_required(Capability.OPERATE_GATEWAY)
@require_POST
def message_resend(request: PortalRequest, pk: int) -> HttpResponse:
    message = get_message_or_404(request.user, pk)
    if services.outbox_resend(user=request.user, message=message):
        messages.success(request, "Queued again with the same MessageId: the ATO applies it at most once.")
    else:
        messages.error(request, "Only failed or dead messages can be resent.")
    return redirect("ato_gateway:message", pk=message.pk)


@capability_required(Capability.MANAGE_CREDENTIALS)
def credentials(request: PortalRequest) -> HttpResponse:
    form = CredentialImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            imported = services.credential_import(
                practice=request.user.tenant,
                data=upload.read(),
                filename=upload.name,
                password=form.cleaned_data["password"],
                actor=request.user,
            )
        except services.CredentialProblem as problem:
            form.add_error("file", str(problem))
        else:
            messages.success(request, f"{len(imported)} credential{'s' if len(imported) != 1 else ''} imported.")
            return redirect("ato_gateway:credentials")
    listed = MachineCredential.objects.for_practice(request.user.tenant)
    return render(request, "ato_gateway/credentials.html", {"form": form, "credentials": listed})


@capability_required(Capability.MANAGE_CREDENTIALS)
@require_POST
def credential_select(request: PortalRequest, pk: int) -> HttpResponse:
    credential = get_credential_or_404(request.user, pk)
    if credential.is_expired:
        messages.error(request, f"This credential expired on {credential.not_after:%d %B %Y} and cannot sign.")
    else:
        services.credential_select(credential=credential, actor=request.user)
        messages.success(request, "This credential now signs everything the practice sends.")
    return redirect("ato_gateway:credentials")


@capability_required(Capability.OPERATE_GATEWAY)
@require_POST
def ping(request: PortalRequest) -> HttpResponse:
    message = services.gateway_ping(user=request.user)
    messages.success(request, "A test message is on its way; this page shows its progress.")
    return redirect("ato_gateway:message", pk=message.pk)
