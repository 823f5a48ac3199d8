from __future__ import annotations

import html
from typing import NamedTuple

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from clients import services
from clients.csv_io import CsvProblem, write_csv
from clients.forms import (
    AccountForm,
    ClientForm,
    GroupChoiceForm,
    GroupForm,
    ImportUploadForm,
    RolesForm,
    StaffGroupsForm,
)
from clients.models import (
    Client,
    ClientGroup,
    ClientKind,
    ClientQuerySet,
    ImportStatus,
    get_client_or_404,
    get_group_or_404,
    get_import_or_404,
)
from clients.tfn import looks_like_tfn, mask_tfn
from portal.capabilities import Capability
from portal.decorators import capability_required
from portal.http import PortalRequest
from portal.models import get_staff_or_404
from portal.sealing import InvalidToken, seal_json, unseal_json

# The tabs the client page itself can say something on when their app is not installed (the template's empty
# states): a link to one of them, bookmarked or shared, still opens it and says what is true.
BUILT_IN_TABS = ("overview", "relationships", "details", "communications")


def client_tabs() -> tuple[str, ...]:
    """The tab bar: overview and relationships first, then each installed domain app's tab in the order the apps
    are installed (portal.apps.CLIENT_TABS), so that the bar shows only what this installation has."""
    from django.apps import apps

    from portal.apps import CLIENT_TABS

    # By the installing app's place (the namespace of the tab's URL name), not by when the tab was registered.
    order = {config.label: place for place, config in enumerate(apps.get_app_configs())}
    others = [name for name in CLIENT_TABS if name not in ("overview", "relationships")]
    others.sort(key=lambda name: order.get(CLIENT_TABS[name].partition(":")[0], len(order)))
    return ("overview", "relationships", *others)


def _cursor(client: Client | ClientRow) -> str:
    """The next page's keyset position, sealed: the last row's name in a URL would land in access logs and
    browser history (base64 is no more than a spelling of it). A Fernet token is URL-safe as it is."""
    return seal_json([client.sort_name, client.pk])


def _decode_cursor(raw: str) -> tuple[str, int] | None:
    try:
        name, pk = unseal_json(raw[:1000])
        return str(name), int(pk)
    except (InvalidToken, ValueError, TypeError):
        return None


class ClientRow(NamedTuple):
    """One line of the client list: the columns it shows and the cursor needs, read with `values_list` (no model
    instance per row). The TFN is present only masked, as its last three digits."""

    pk: int
    display_name: str
    sort_name: str
    kind_label: str
    masked_tfn: str
    abn: str
    groups: list[str]  # the names of the client's groups, in name order


_KIND_LABELS: dict[str, str] = dict(ClientKind.choices)


def _client_rows(clients: ClientQuerySet, limit: int) -> list[ClientRow]:
    """The first `limit` clients of `clients` in list order, with their groups' names: two queries whatever the
    page size (the rows, then the group names of those rows)."""
    found = list(
        clients.order_by("sort_name", "pk").values_list("pk", "display_name", "sort_name", "kind", "tfn_last3", "abn")[
            :limit
        ]
    )
    groups = ClientGroup.objects.names_by_client([row[0] for row in found])
    return [
        ClientRow(pk, name, sort_name, _KIND_LABELS.get(kind, kind), mask_tfn(last3), abn, groups.get(pk, []))
        for pk, name, sort_name, kind, last3, abn in found
    ]


# The client list's two loops, the table rows and the group filter's options, are written out by the two functions
# below instead of {% for %} loops in the templates, because those loops were most of the cost of the page. For 50
# rows on the benchmark's data (callgrind, instructions per render): the original loop over model instances 24.0M,
# the same loop over plain rows 12.0M, format_html_join 7.6M, these f-strings 1.05M; for 8 groups, the options
# loop 0.94M against 0.07M. Every value from the database goes through html.escape(), which is what Django's
# escape() and autoescaping apply (without their lazy-string wrapper); ids are ints.


def _rows_html(rows: list[ClientRow]) -> SafeString:
    """The <tr> of each client; clients/_client_rows.html places them and renders the empty state."""
    prefix = html.escape(reverse("clients:detail", args=[0]).removesuffix("0/"))  # one reverse() per page
    lines = []
    for row in rows:
        tags = "".join([f'<span class="tag">{html.escape(name)}</span>' for name in row.groups])
        lines.append(
            f'<tr><td><a href="{prefix}{row.pk}/">{html.escape(row.display_name)}</a></td>'
            f"<td>{html.escape(row.kind_label)}</td><td>{html.escape(row.masked_tfn)}</td>"
            f"<td>{html.escape(row.abn)}</td>\n<td>{tags}</td></tr>"
        )
    return mark_safe("\n".join(lines))  # noqa: S308 - every value interpolated above is escaped or an int


def _group_options_html(groups: list[tuple[int, str]], group_id: str) -> SafeString:
    """The <option> of each group for the group filter, the chosen one selected."""
    return mark_safe(  # noqa: S308 - the names are escaped, the ids are ints
        "".join(
            [
                f'<option value="{pk}" {"selected" if str(pk) == group_id else ""}>{html.escape(name)}</option>'
                for pk, name in groups
            ]
        )
    )


@capability_required(Capability.VIEW_CLIENTS)
def client_list(request: PortalRequest) -> HttpResponse:
    user = request.user
    # The search form posts, so that a TFN typed into it never lands in a URL, browser history or access log.
    params = request.POST if request.method == "POST" else request.GET
    query = params.get("q", "")[:200]
    clients = Client.objects.visible_to(user).search(query)
    group_id = params.get("group", "")
    if group_id.isdigit():
        clients = clients.filter(groups=get_group_or_404(user, int(group_id)))
    cursor = _decode_cursor(request.GET.get("after", "")) if request.GET.get("after") else None
    if cursor:
        clients = clients.after(*cursor)
    size = settings.CLIENT_LIST_PAGE_SIZE
    page = _client_rows(clients, size + 1)
    tfn_search = looks_like_tfn(query)
    context = {
        "clients": page[:size],
        "rows_html": _rows_html(page[:size]),
        "next_cursor": _cursor(page[size - 1]) if len(page) > size else "",
        "query": "" if tfn_search else query,
        "tfn_search": mask_tfn(query.replace(" ", "")[-3:]) if tfn_search else "",
        "group_id": group_id,
        "paged": bool(cursor),
    }
    if request.htmx:
        return render(request, "clients/_client_rows.html", context)
    # The group filter's choices: only on the full page (an htmx search replaces the rows alone).
    groups = ClientGroup.objects.choices_for(user)
    context["group_options"] = _group_options_html(groups, group_id)
    return render(request, "clients/client_list.html", context)


@capability_required(Capability.VIEW_CLIENTS)
def client_detail(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    tabs = client_tabs()
    tab = request.GET.get("tab", "overview")
    tab = tab if tab in tabs or tab in BUILT_IN_TABS else "overview"
    accounts = client.accounts.prefetch_related("roles")
    from portal.apps import CLIENT_TABS

    context = {
        "client": client,
        "tab": tab,
        "tabs": tabs,
        # A tab a domain app fills: its fragment is fetched by htmx from the app's own URL.
        "tab_url": reverse(CLIENT_TABS[tab], args=[client.pk]) if tab in CLIENT_TABS else "",
        "accounts": accounts,
        "account_form": AccountForm(client_abn=client.abn),
        "client_groups": client.groups.all(),
    }
    return render(request, "clients/client_detail.html", context)


@capability_required(Capability.EDIT_CLIENTS)
def client_add(request: PortalRequest) -> HttpResponse:
    user = request.user
    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        row = form.to_row()
        duplicate = services.client_duplicate_message(user.tenant, row)
        if duplicate:
            form.add_error("tfn" if "TFN" in duplicate else "abn", duplicate)
        else:
            client = services.client_create(user=request.user, row=row)
            messages.success(request, f"{client} is added to the register.")
            return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form, "title": "Add a client"})


@capability_required(Capability.EDIT_CLIENTS)
def client_edit(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    initial = {
        "kind": client.kind,
        "family_name": client.family_name,
        "given_names": client.given_names,
        "organisation_name": client.organisation_name,
        "abn": client.abn,
        "wpn": client.wpn,
        "date_of_birth": client.date_of_birth.isoformat() if client.date_of_birth else "",
    }
    form = ClientForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        row = form.to_row()
        duplicate = services.client_duplicate_message(client.practice, row, exclude_pk=client.pk)
        if duplicate:
            form.add_error("tfn" if "TFN" in duplicate else "abn", duplicate)
        else:
            services.client_update(user=request.user, client=client, row=row, tfn_changed=bool(row.tfn))
            messages.success(request, "Saved.")
            return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form, "title": f"Edit {client}", "client": client})


@capability_required(Capability.VIEW_CLIENTS)
@require_POST
@never_cache
def client_reveal_tfn(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    tfn = services.client_reveal_tfn(user=request.user, client=client)
    return render(request, "clients/_tfn_revealed.html", {"tfn": tfn, "client": client})


@capability_required(Capability.EDIT_CLIENTS)
@require_POST
def account_add(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    form = AccountForm(request.POST, client_abn=client.abn)
    if form.is_valid():
        kind, branch = form.cleaned_data["kind"], form.cleaned_data["branch"]
        if client.accounts.filter(kind=kind, branch=branch if kind == "activity_statement" else "").exists():
            form.add_error("kind", "The client already has this account.")
        else:
            services.account_add(
                user=request.user, client=client, kind=kind, branch=branch, roles=form.cleaned_data["roles"]
            )
            messages.success(request, "Account added.")
            return redirect("clients:detail", pk=client.pk)
    context = {
        "client": client,
        "tab": "overview",
        "tabs": client_tabs(),
        "accounts": client.accounts.all(),
        "account_form": form,
        "client_groups": client.groups.all(),
    }
    return render(request, "clients/client_detail.html", context, status=400)


@capability_required(Capability.EDIT_CLIENTS)
@require_POST
def account_roles(request: PortalRequest, pk: int, account_pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    account = client.accounts.filter(pk=account_pk, kind="activity_statement").first()
    form = RolesForm(request.POST)
    if account is None or not form.is_valid():
        return HttpResponse("That account cannot take roles.", status=404 if account is None else 400)
    services.account_set_roles(user=request.user, account=account, roles=form.cleaned_data["roles"])
    messages.success(request, "Roles updated.")
    return redirect("clients:detail", pk=client.pk)


@capability_required(Capability.MANAGE_GROUPS)
def client_groups(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    groups = ClientGroup.objects.visible_to(request.user)
    form = GroupChoiceForm(request.POST or None, groups=groups, initial={"groups": client.groups.all()})
    if request.method == "POST" and form.is_valid():
        services.group_set_membership(user=request.user, client=client, groups=list(form.cleaned_data["groups"]))
        messages.success(request, "Groups updated.")
        return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_groups.html", {"client": client, "form": form})


@capability_required(Capability.VIEW_CLIENTS)
def group_list(request: PortalRequest) -> HttpResponse:
    user = request.user
    form = GroupForm(request.POST or None, practice_id=user.tenant.pk)
    if request.method == "POST":
        if not user.has_capability(Capability.MANAGE_GROUPS):
            return HttpResponse("You cannot manage groups.", status=403)
        if form.is_valid():
            services.group_create(
                user=request.user, name=form.cleaned_data["name"], description=form.cleaned_data["description"]
            )
            messages.success(request, "Group created.")
            return redirect("clients:groups")
    from django.db.models import Count

    groups = ClientGroup.objects.visible_to(user).annotate(
        client_count=Count("clients", distinct=True), staff_count=Count("staff", distinct=True)
    )
    return render(request, "clients/group_list.html", {"groups": groups, "form": form})


@capability_required(Capability.MANAGE_STAFF)
def staff_groups(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    groups = ClientGroup.objects.visible_to(request.user)
    initial = {"groups": member.client_groups.all(), "restricted": member.restricted_to_groups}
    form = StaffGroupsForm(request.POST or None, groups=groups, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.group_set_staff(
            user=request.user,
            member=member,
            restricted=form.cleaned_data["restricted"],
            groups=list(form.cleaned_data["groups"]),
        )
        messages.success(request, "Client access updated.")
        return redirect("portal:staff_detail", pk=member.pk)
    return render(request, "clients/staff_groups.html", {"member": member, "form": form})


@capability_required(Capability.IMPORT_CLIENTS)
def import_upload(request: PortalRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > settings.CLIENT_IMPORT_MAX_BYTES:
            form.add_error("file", f"The file is larger than {settings.CLIENT_IMPORT_MAX_BYTES // 1024:,} KB.")
        else:
            try:
                job = services.import_upload(user=request.user, filename=upload.name, raw=upload.read())
                return redirect("clients:import_detail", pk=job.pk)
            except CsvProblem as problem:
                form.add_error("file", str(problem))
    from clients.models import ImportJob

    recent = ImportJob.objects.visible_to(request.user).defer("content")[:10]  # the file is no part of a list
    return render(request, "clients/import_upload.html", {"form": form, "recent": recent})


@capability_required(Capability.IMPORT_CLIENTS)
def import_detail(request: PortalRequest, pk: int) -> HttpResponse:
    job = get_import_or_404(request.user, pk)
    preview = services.import_preview(job) if job.status == ImportStatus.UPLOADED else []
    return render(
        request,
        "clients/import_detail.html",
        {"job": job, "preview": preview, "row_errors": job.row_errors.all()[:500]},
    )


@capability_required(Capability.IMPORT_CLIENTS)
def import_progress(request: PortalRequest, pk: int) -> HttpResponse:
    job = get_import_or_404(request.user, pk)
    response = render(request, "clients/_import_progress.html", {"job": job})
    if not job.is_active and request.htmx and request.GET.get("was_active"):
        response["HX-Refresh"] = "true"  # show the full result (errors table) once it finishes
    return response


@capability_required(Capability.IMPORT_CLIENTS)
@require_POST
def import_start(request: PortalRequest, pk: int) -> HttpResponse:
    job = get_import_or_404(request.user, pk)
    if job.status == ImportStatus.FAILED or job.is_stalled:
        services.import_resume(user=request.user, job=job)
    else:
        services.import_start(user=request.user, job=job)
    return redirect("clients:import_detail", pk=job.pk)


@capability_required(Capability.EXPORT_CLIENTS)
def export_csv(request: PortalRequest) -> StreamingHttpResponse:
    response = StreamingHttpResponse(write_csv(services.export_rows(user=request.user)), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="clients.csv"'
    return response
