"""The super funds' pages: the list and "Add a fund", a fund's page with its sections (members, import, reporting,
worklist, reports), the member file's import and the export, and a member's page. Anyone who sees clients sees the
funds of their groups; every change needs "manage super funds" (read-only staff see but cannot change), and the
views change nothing themselves: they call the services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from clients.models import Client
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from superannuation import services
from superannuation.forms import (
    FundForm,
    ImportForm,
    MemberAddForm,
    MemberForm,
    MemberSearchForm,
    StatusForm,
    put_errors,
)
from superannuation.models import Member, MemberImport, SuperFund, WorkItem

PAGE = 50
SECTIONS = {
    "members": "Members",
    "import": "Import members",
    "reporting": "Reporting",
    "worklist": "Worklist",
    "reports": "Reports",
}


def tab_url(fund: SuperFund, tab: str) -> str:
    return f"{reverse('superannuation:fund', args=[fund.pk])}?tab={tab}"


def may_manage(request: PortalRequest) -> bool:
    return request.user.has_capability(Capability.MANAGE_SUPER_FUNDS)


def get_fund(request: PortalRequest, pk: int) -> SuperFund:
    return get_object_or_404(SuperFund.objects.visible_to(request.user).select_related("client"), pk=pk)


def get_member(request: PortalRequest, pk: int) -> Member:
    return get_object_or_404(Member.objects.visible_to(request.user).select_related("fund"), pk=pk)


def _count(queryset: Any) -> Coalesce:
    return Coalesce(
        Subquery(queryset.order_by().values("fund").annotate(n=Count("pk")).values("n"), output_field=IntegerField()),
        0,
    )


def _with_counts(funds: Any) -> Any:
    """The funds with their members, open items and overdue items counted, one query for the lot."""
    items = WorkItem.objects.open().filter(fund=OuterRef("pk"))
    return funds.select_related("client").annotate(
        member_count=_count(Member.objects.filter(fund=OuterRef("pk"))),
        open_items=_count(items),
        overdue_items=_count(items.filter(due_on__lt=timezone.localdate())),
    )


@capability_required(Capability.VIEW_CLIENTS)
def funds(request: PortalRequest) -> HttpResponse:
    rows = _with_counts(SuperFund.objects.visible_to(request.user))
    return render(request, "superannuation/funds.html", {"funds": rows, "can_manage": may_manage(request)})


@capability_required(Capability.VIEW_CLIENTS)
def client_tab(request: PortalRequest, pk: int) -> HttpResponse:
    """A client's Super tab: the funds the practice administers that are this client, with what needs doing."""
    client = get_object_or_404(Client.objects.visible_to(request.user), pk=pk)
    rows = list(_with_counts(SuperFund.objects.visible_to(request.user).filter(client=client)))
    context = {"client": client, "funds": rows, "can_manage": may_manage(request)}
    return render(request, "superannuation/_client_tab.html", context)


def _initial_from_client(request: PortalRequest) -> dict[str, Any]:
    """ "Add the fund" from a client's Super tab: its name and ABN filled in, and the link to it ticked."""
    pk = request.GET.get("client", "")
    client = Client.objects.visible_to(request.user).filter(pk=int(pk)).first() if pk.isdigit() else None
    if client is None:
        return {}
    return {"name": client.display_name, "abn": client.abn, "link_client": bool(client.abn)}


@capability_required(Capability.MANAGE_SUPER_FUNDS)
def fund_add(request: PortalRequest) -> HttpResponse:
    form = FundForm(request.POST or None, initial=_initial_from_client(request))
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        client = None
        if data.pop("link_client"):
            client = Client.objects.visible_to(request.user).filter(abn=data["abn"]).order_by("pk").first()
            if client is None:
                form.add_error("link_client", "No client of the register you can see has this ABN.")
                return render(request, "superannuation/fund_add.html", {"form": form}, status=400)
        try:
            fund = services.fund_create(user=request.user, client=client, **data)
        except ValidationError as problem:
            put_errors(form, problem)
        else:
            messages.success(request, f"{fund} is added. Import its members next.")
            return redirect(tab_url(fund, "import"))
    status = 400 if form.errors else 200
    return render(request, "superannuation/fund_add.html", {"form": form}, status=status)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
def fund_edit(request: PortalRequest, pk: int) -> HttpResponse:
    fund = get_fund(request, pk)
    initial = {"name": fund.name, "abn": fund.abn, "usi": fund.usi, "link_client": fund.client_id is not None}
    form = FundForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        client = None
        if data.pop("link_client"):
            client = Client.objects.visible_to(request.user).filter(abn=data["abn"]).order_by("pk").first()
            if client is None:
                form.add_error("link_client", "No client of the register you can see has this ABN.")
        if not form.errors:
            try:
                services.fund_update(user=request.user, fund=fund, client=client, **data)
            except ValidationError as problem:
                put_errors(form, problem)
            else:
                messages.success(request, "Saved.")
                return redirect("superannuation:fund", pk=fund.pk)
    context = {"fund": fund, "form": form}
    return render(request, "superannuation/fund_edit.html", context, status=400 if form.errors else 200)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
def member_add(request: PortalRequest, pk: int) -> HttpResponse:
    fund = get_fund(request, pk)
    # The attributes start as a new account's defaults (contributions and rollovers accepted, not lost).
    initial = {**MemberForm.initial_for(Member()), "opened_on": timezone.localdate()}
    form = MemberAddForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_add(user=request.user, fund=fund, **form.cleaned_data)
        except ValidationError as problem:
            put_errors(form, problem)
        else:
            messages.success(request, f"{member.display_name} is added. The next real-time report tells the ATO.")
            return redirect("superannuation:member", pk=member.pk)
    context = {"fund": fund, "form": form}
    return render(request, "superannuation/member_add.html", context, status=400 if form.errors else 200)


def _members(request: PortalRequest, fund: SuperFund) -> dict[str, Any]:
    """Members by name, keyset paged on (family name, given names, id); searched by name or member number."""
    form = MemberSearchForm(request.GET)
    members = fund.members.all()
    q = form.data.get("q", "").strip()
    if q:
        members = members.filter(Q(member_number=q) | Q(family_name__istartswith=q) | Q(given_names__istartswith=q))
    after = request.GET.get("after", "")
    last = fund.members.filter(pk=int(after)).first() if after.isdigit() else None
    if last is not None:
        members = members.filter(
            Q(family_name__gt=last.family_name)
            | Q(family_name=last.family_name, given_names__gt=last.given_names)
            | Q(family_name=last.family_name, given_names=last.given_names, pk__gt=last.pk)
        )
    page = list(members.order_by("family_name", "given_names", "pk")[: PAGE + 1])
    query = request.GET.copy()
    if len(page) > PAGE:
        query["after"] = str(page[PAGE - 1].pk)
    return {
        "search": form,
        "members": page[:PAGE],
        "next_query": query.urlencode() if len(page) > PAGE else "",
        "total": fund.members.count(),
    }


def _section(request: PortalRequest, fund: SuperFund, tab: str) -> dict[str, Any]:
    from superannuation import item_views, report_views

    if tab == "members":
        return _members(request, fund)
    if tab == "import":
        imports = MemberImport.objects.filter(fund=fund)[:10]
        return {"import_form": ImportForm(), "imports": imports}
    if tab == "reporting":
        return report_views.reporting_context(request, fund)
    if tab == "worklist":
        return item_views.worklist_context(request, fund)
    return report_views.reports_context(request, fund)


@capability_required(Capability.VIEW_CLIENTS)
def fund_detail(request: PortalRequest, pk: int) -> HttpResponse:
    fund = get_fund(request, pk)
    tab = request.GET.get("tab", "members")
    tab = tab if tab in SECTIONS else "members"
    context = {"fund": fund, "tab": tab, "sections": SECTIONS, "can_manage": may_manage(request)}
    context.update(_section(request, fund, tab))
    return render(request, f"superannuation/fund_{tab}.html", context)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def import_upload(request: PortalRequest, pk: int) -> HttpResponse:
    fund = get_fund(request, pk)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose the member file (CSV) to import.")
        return redirect(tab_url(fund, "import"))
    upload = form.cleaned_data["file"]
    try:
        started = services.member_import_start(
            user=request.user, fund=fund, filename=upload.name, content=upload.read()
        )
    except ValidationError as problem:
        messages.error(request, " ".join(problem.messages))
        return redirect(tab_url(fund, "import"))
    return redirect("superannuation:import", pk=started.pk)


def _import(request: PortalRequest, pk: int) -> MemberImport:
    funds = SuperFund.objects.visible_to(request.user)
    return get_object_or_404(MemberImport.objects.filter(fund__in=funds).select_related("fund"), pk=pk)


@capability_required(Capability.VIEW_CLIENTS)
def import_detail(request: PortalRequest, pk: int) -> HttpResponse:
    job = _import(request, pk)
    return render(request, "superannuation/import.html", {"job": job, "fund": job.fund})


@capability_required(Capability.VIEW_CLIENTS)
def import_progress(request: PortalRequest, pk: int) -> HttpResponse:
    return render(request, "superannuation/_import_progress.html", {"job": _import(request, pk)})


@capability_required(Capability.VIEW_CLIENTS)
def import_template(request: PortalRequest) -> HttpResponse:
    response = HttpResponse(services.MEMBER_CSV_TEMPLATE, content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="members-template.csv"'
    return response


@capability_required(Capability.VIEW_CLIENTS)
def members_export(request: PortalRequest, pk: int) -> StreamingHttpResponse:
    fund = get_fund(request, pk)
    response = StreamingHttpResponse(services.members_export_csv(user=request.user, fund=fund), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="members-{fund.usi}.csv"'
    return response


@capability_required(Capability.VIEW_CLIENTS)
def member_detail(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_member(request, pk)
    from superannuation.item_views import WORDS

    # Each response in plain words: what it means, from seed 003's table.
    transactions = [
        (t, WORDS[t.meaning][0] if t.meaning else "")
        for t in member.transactions.select_related("batch", "work_item").order_by("-pk")[:50]
    ]
    context = {
        "member": member,
        "fund": member.fund,
        "transactions": transactions,
        "tfn_changes": member.tfn_changes.select_related("changed_by"),
        "can_manage": may_manage(request),
        "may_reveal": may_manage(request) and request.user.has_capability(Capability.VIEW_FULL_TFN),
        "status_form": StatusForm(initial={"on": timezone.localdate()}),
    }
    return render(request, "superannuation/member.html", context)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
def member_edit(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_member(request, pk)
    form = MemberForm(request.POST or None, initial=MemberForm.initial_for(member))
    if request.method == "POST" and form.is_valid():
        try:
            services.member_change(user=request.user, member=member, **form.changed_fields())
        except ValidationError as problem:
            put_errors(form, problem)
        else:
            messages.success(request, "Saved. The change is reported to the ATO with the next real-time report.")
            return redirect("superannuation:member", pk=member.pk)
    context = {"member": member, "fund": member.fund, "form": form}
    return render(request, "superannuation/member_edit.html", context, status=400 if form.errors else 200)


@capability_required(Capability.MANAGE_SUPER_FUNDS)
@require_POST
def member_status(request: PortalRequest, pk: int) -> HttpResponse:
    """Close or reopen the account: either records the real-time event the next report sends."""
    member = get_member(request, pk)
    form = StatusForm(request.POST)
    change = services.member_close if request.POST.get("action") == "close" else services.member_reopen
    if not form.is_valid():
        messages.error(request, "Enter the date the account was closed or reopened.")
    else:
        try:
            change(user=request.user, member=member, on=form.cleaned_data["on"])
        except ValidationError as problem:
            messages.error(request, " ".join(problem.messages))
        else:
            messages.success(request, "Recorded. The event is reported to the ATO with the next real-time report.")
    return redirect("superannuation:member", pk=member.pk)


@capability_required(Capability.VIEW_FULL_TFN)
@require_POST
def member_reveal_tfn(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_member(request, pk)
    tfn = services.member_reveal_tfn(user=request.user, member=member)
    return render(request, "clients/_tfn_revealed.html", {"tfn": tfn})
