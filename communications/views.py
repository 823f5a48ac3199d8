"""The ATO inbox: the letters with their filters and bulk actions, one letter with its PDF, a client's tab, the
syncs and the dashboard panel. Anyone who sees clients sees letters; changing them needs "edit clients" (read-only
staff see but cannot change); starting a sync needs "operate the gateway" (the practice admins)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from clients.csv_io import write_csv
from clients.models import Client, get_client_or_404
from communications import services
from communications.models import (
    KIND_WORDS,
    OPEN_STATES,
    TO_PRACTICE_CHANNEL,
    Destination,
    Letter,
    LetterQuerySet,
    LetterState,
    Preference,
    SyncRun,
    ToldHow,
    get_letter_or_404,
    get_sync_or_404,
    kind_in_words,
)
from portal.capabilities import Capability, Role
from portal.decorators import capability_required
from portal.http import PortalRequest
from portal.models import User

PAGE = 50


def _owners(user: User) -> list[User]:
    return list(
        User.objects.filter(practice=user.tenant, is_active=True).exclude(role=Role.READ_ONLY).order_by("username")
    )


class FilterForm(forms.Form):
    client = forms.IntegerField(required=False, widget=forms.HiddenInput)
    q = forms.CharField(label="Words in the title or the letter", required=False, max_length=100)
    kind = forms.ChoiceField(label="Type", required=False, choices=[("", "Any type"), *KIND_WORDS.items()])
    state = forms.ChoiceField(
        label="State",
        required=False,
        choices=[("", "Any state"), ("open", "Open (new or in progress)"), *LetterState.choices],
    )
    owner = forms.ChoiceField(label="Owner", required=False)
    due = forms.ChoiceField(
        label="Due",
        required=False,
        choices=[("", "Any time"), ("overdue", "Overdue"), ("week", "Due this week")],
    )
    issued_from = forms.DateField(label="Issued from", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    issued_to = forms.DateField(label="Issued to", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    unmatched = forms.BooleanField(label="Only letters not matched to a client", required=False)
    told = forms.ChoiceField(
        label="Passed on to the client",
        required=False,
        choices=[("", "Any"), ("no", "Not yet passed on (sent to the practice)"), ("yes", "Passed on")],
    )

    def __init__(self, *args: Any, owners: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ChoiceField)
        owner.choices = [
            ("", "Anyone"),
            ("me", "Me"),
            ("admins", "The practice admins (no owner)"),
            *[(str(u.pk), u.display_name) for u in owners],
        ]

    def apply(self, letters: LetterQuerySet, user: User) -> LetterQuerySet:
        data = self.cleaned_data
        today = timezone.localdate()
        if data["client"]:
            letters = letters.filter(client_id=data["client"])
        if data["q"].strip():
            letters = letters.matching(data["q"])
        if data["kind"]:
            letters = letters.filter(kind=data["kind"])
        if data["state"] == "open":
            letters = letters.open()
        elif data["state"]:
            letters = letters.filter(state=data["state"])
        if data["owner"] == "me":
            letters = letters.filter(owner=user)
        elif data["owner"] == "admins":
            letters = letters.filter(owner__isnull=True)
        elif data["owner"]:
            letters = letters.filter(owner_id=int(data["owner"]))
        if data["due"] == "overdue":
            letters = letters.overdue(today)
        elif data["due"] == "week":
            letters = letters.open().filter(due__gte=today, due__lte=today + timedelta(days=7))
        if data["issued_from"]:
            letters = letters.filter(issued__gte=data["issued_from"])
        if data["issued_to"]:
            letters = letters.filter(issued__lte=data["issued_to"])
        if data["unmatched"]:
            letters = letters.filter(client__isnull=True)
        if data["told"] == "no":
            letters = letters.to_pass_on()
        elif data["told"] == "yes":
            letters = letters.filter(told_on__isnull=False)
        return letters


def _after(letters: LetterQuerySet, cursor: str) -> LetterQuerySet:
    """Keyset paging in the inbox's order (newest issue first): the page after the letter ``cursor`` names."""
    try:
        day, pk = cursor.split(".")
        issued, last = date.fromisoformat(day), int(pk)
    except ValueError:
        return letters
    return letters.filter(issued__lte=issued).filter(Q(issued__lt=issued) | Q(issued=issued, pk__lt=last))


STATE_LABELS: dict[str, str] = dict(LetterState.choices)
OPEN_STATE_VALUES = frozenset(str(state) for state in OPEN_STATES)
# What a row of the inbox shows of a letter, its client and its owner, read as plain tuples: the rest (the search
# vector, the note, the document's state) is not read for a page, and making a model instance of each letter, its
# client and its owner cost more than the page's query.
ROW_FIELDS = (
    "pk", "issued", "kind", "client_id", "client__display_name", "name", "title", "account", "state", "due",
    "to_practice", "told_on", "owner_id", "owner__first_name", "owner__last_name", "owner__username",
)  # fmt: skip
LetterValues = tuple[
    int, date, str, int | None, str | None, str, str, str, str, date | None, bool, date | None, int | None,
    str | None, str | None, str | None,
]  # fmt: skip


@dataclass(frozen=True)
class InboxRow:
    """One row of the inbox, its words, dates and link made in Python: the template only places them (per row,
    ``{% url %}``, the ``date`` filter, ``get_state_display`` and the letter's properties cost more than the
    page's query)."""

    pk: int
    url: str
    issued: str
    kind: str
    client: str  # the register's name; empty when the letter is unmatched
    name: str  # the ATO's name for the client
    title: str
    account: str
    state: str
    pass_on: bool
    owner: str
    due: str
    overdue: bool


def _owner_name(first: str | None, last: str | None, username: str | None) -> str:
    """User.display_name from the owner's columns."""
    return f"{first} {last}".strip() or username or ""


def inbox_rows(letters: list[LetterValues]) -> list[InboxRow]:
    """The rows of a page read as ROW_FIELDS' tuples; each says what the Letter's properties say."""
    prefix = reverse("communications:letter", args=[0]).removesuffix("0/")  # one reverse for the page
    today = timezone.localdate()
    dates: dict[date, str] = {}  # a page's letters share a few dates: each formatted once

    def day(value: date) -> str:
        found = dates.get(value)
        if found is None:
            found = dates[value] = date_format(value, "j M Y")
        return found

    return [
        InboxRow(
            pk=pk,
            url=f"{prefix}{pk}/",
            issued=day(issued),
            kind=kind_in_words(kind),
            client=(client_name or "") if client_id is not None else "",
            name=name,
            title=title,
            account=account,
            state=STATE_LABELS.get(state, state),
            pass_on=to_practice and told_on is None,
            owner=_owner_name(first, last, username) if owner_id is not None else "",
            due=day(due) if due else "",
            overdue=state in OPEN_STATE_VALUES and due is not None and due < today,
        )
        for (
            pk,
            issued,
            kind,
            client_id,
            client_name,
            name,
            title,
            account,
            state,
            due,
            to_practice,
            told_on,
            owner_id,
            first,
            last,
            username,
        ) in letters
    ]


def inbox_rows_html(rows: list[InboxRow], *, can_act: bool, why: Mapping[int, object] | None) -> SafeString:
    """The rows of the table, every value escaped (the standard library's escape, which writes what Django's does,
    without the lazy-string wrapping that made Django's cost more than the rest of a row): through the template
    language each of a row's dozen values and conditions costs as much as a whole row here. ``why``: what sends each
    letter to the practice, for a column of its own (the letters to pass on)."""
    out = []
    for row in rows:
        pk, title, name = row.pk, escape(row.title), escape(row.name)
        choose = (
            f'<td><input type="checkbox" name="letters" value="{pk}" id="choose-{pk}" '
            f'aria-label="Choose {title}, {name}"></td>'
            if can_act
            else ""
        )
        client = escape(row.client) if row.client else f'<span class="badge warn">Unmatched</span> {name}'
        state = escape(row.state) + (' <span class="badge warn">To pass on</span>' if row.pass_on else "")
        due = escape(row.due) + (' <strong class="bad">overdue</strong>' if row.overdue else "")
        reason = f'<td data-testid="why-pass-on">{escape(str(why.get(pk)))}</td>' if why is not None else ""
        out.append(
            f'<tr data-testid="letter-row">\n{choose}\n<td>{escape(row.issued)}</td><td>{escape(row.kind)}</td>\n'
            f'<td>{client}</td>\n<td><a href="{escape(row.url)}">{title}</a></td><td>{escape(row.account)}</td>\n'
            f"<td>{state}</td><td>{escape(row.owner or 'Practice admins')}</td>\n<td>{due}</td>{reason}</tr>"
        )
    return SafeString("".join(out))


# The filter form as HTML, by what it shows (the filters asked for and the staff it offers as owners). Its widgets'
# templates cost more than the rest of the page; every page of one inbox, and every next page, shows the same form.
_FILTERS_HTML: dict[tuple[object, ...], SafeString] = {}
_FILTERS_KEPT = 256


def filters_html(form: FilterForm, asked: QueryDict, owners: list[User]) -> SafeString:
    """The form ``form`` (bound to ``asked``, or unbound) renders, rendered once for each ``asked`` and owners."""
    shown = tuple(sorted((k, tuple(v)) for k, v in asked.lists() if k != "after")) if form.is_bound else None
    key = (shown, tuple((u.pk, u.display_name) for u in owners))
    found = _FILTERS_HTML.get(key)
    if found is None:
        found = SafeString(render_to_string("portal/_form.html", {"form": form}))
        if len(_FILTERS_HTML) >= _FILTERS_KEPT:
            del _FILTERS_HTML[next(iter(_FILTERS_HTML))]  # the oldest
        _FILTERS_HTML[key] = found
    return found


@capability_required(Capability.VIEW_CLIENTS)
def inbox(request: PortalRequest) -> HttpResponse:
    user = request.user
    owners = _owners(user)
    form = FilterForm(request.GET or None, owners=owners)
    letters = Letter.objects.visible_to(user).order_by("-issued", "-pk")
    if form.is_valid():
        letters = form.apply(letters, user)
    elif form.is_bound:
        letters = letters.none()
    page: list[LetterValues] = _after(letters, request.GET.get("after", "")).newest(PAGE + 1, ROW_FIELDS)
    more = len(page) > PAGE
    page = page[:PAGE]
    query = request.GET.copy()
    query.pop("after", None)
    if more:
        query["after"] = f"{page[-1][1].isoformat()}.{page[-1][0]}"
    passing_on = form.is_valid() and form.cleaned_data["told"] == "no"
    rows = inbox_rows(page)
    # Letters to pass on say why: their category and the preference that sends it to the practice (all that is
    # read of each letter: its id, client and type).
    destinations = (
        services.letters_destinations(
            practice=user.tenant, letters=[Letter(pk=row[0], kind=row[2], client_id=row[3]) for row in page]
        )
        if passing_on
        else None
    )
    can_act = user.has_capability(Capability.EDIT_CLIENTS)
    context = {
        "form": form,
        "filters": filters_html(form, request.GET, owners),
        "letters": rows,
        "rows_html": inbox_rows_html(rows, can_act=can_act, why=destinations),
        "destinations": destinations,
        "next_query": query.urlencode() if more else "",
        "owners": owners,
        "can_act": can_act,
        "can_sync": user.has_capability(Capability.OPERATE_GATEWAY),
        "last_sync": SyncRun.objects.filter(practice=user.tenant).first(),
        "states": LetterState.choices,
    }
    return render(request, "communications/inbox.html", context)


class ChangeForm(forms.Form):
    state = forms.ChoiceField(label="State", choices=LetterState.choices, widget=forms.RadioSelect, required=False)
    note = forms.CharField(
        label="Note", required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Needed to mark it done."
    )
    owner = forms.ChoiceField(label="Owner", required=False)

    def __init__(self, *args: Any, owners: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ChoiceField)
        owner.choices = [
            ("", "Leave as it is"),
            ("admins", "The practice admins"),
            *[(str(u.pk), u.display_name) for u in owners],
        ]


def _change(request: PortalRequest, letters: list[Letter], form: ChangeForm, owners: list[User]) -> int:
    data = form.cleaned_data
    owner_choice = data["owner"]
    owner = next((u for u in owners if str(u.pk) == owner_choice), None)
    return services.letters_change(
        user=request.user,
        letters=letters,
        state=data["state"] or None,
        note=data["note"],
        owner=owner,
        assign=bool(owner_choice),
    )


class ToldForm(forms.Form):
    on = forms.DateField(label="Told on", widget=forms.DateInput(attrs={"type": "date"}))
    how = forms.ChoiceField(label="The client was told", choices=ToldHow.choices, widget=forms.RadioSelect)
    by = forms.ChoiceField(label="Told by")

    def __init__(self, *args: Any, owners: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        by = self.fields["by"]
        assert isinstance(by, forms.ChoiceField)
        by.choices = [(str(u.pk), u.display_name) for u in owners]


def _told_form(user: User, owners: list[User], data: QueryDict | None = None) -> ToldForm:
    return ToldForm(data, owners=owners, initial={"on": timezone.localdate(), "by": str(user.pk)})


def _destination(user: User, letter: Letter) -> Destination:
    return services.letters_destinations(practice=user.tenant, letters=[letter])[letter.pk]


@capability_required(Capability.VIEW_CLIENTS)
def letter_detail(request: PortalRequest, pk: int) -> HttpResponse:
    user = request.user
    letter = get_letter_or_404(user, pk)
    owners = _owners(user)
    can_act = user.has_capability(Capability.EDIT_CLIENTS)
    form = ChangeForm(request.POST or None, owners=owners, initial={"state": letter.state, "note": letter.note})
    if request.method == "POST":
        if not can_act:
            return HttpResponse("You can see letters but not change them.", status=403)
        if form.is_valid():
            try:
                _change(request, [letter], form, owners)
            except services.LetterError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "The letter is updated.")
                return redirect("communications:letter", pk=letter.pk)
    context = {
        "letter": letter,
        "destination": _destination(user, letter),
        "form": form,
        "told_form": _told_form(user, owners),
        "can_act": can_act,
        "has_document": hasattr(letter, "document"),
    }
    return render(request, "communications/letter.html", context)


@capability_required(Capability.EDIT_CLIENTS)
@require_POST
def letter_told(request: PortalRequest, pk: int) -> HttpResponse:
    """Record that the client was told of a letter the ATO sent to the practice instead."""
    user = request.user
    letter = get_letter_or_404(user, pk)
    owners = _owners(user)
    told_form = _told_form(user, owners, request.POST)
    if told_form.is_valid():
        data = told_form.cleaned_data
        try:
            told_by = next(u for u in owners if str(u.pk) == data["by"])
            services.letter_told_record(user=user, letter=letter, on=data["on"], how=data["how"], told_by=told_by)
        except services.LetterError as exc:
            told_form.add_error(None, str(exc))
        else:
            messages.success(request, "Recorded: the client has been told of this letter.")
            return redirect("communications:letter", pk=letter.pk)
    form = ChangeForm(owners=owners, initial={"state": letter.state, "note": letter.note})
    context = {
        "letter": letter,
        "destination": _destination(user, letter),
        "form": form,
        "told_form": told_form,
        "can_act": True,
        "has_document": hasattr(letter, "document"),
    }
    return render(request, "communications/letter.html", context, status=400)


@capability_required(Capability.VIEW_CLIENTS)
def letter_pdf(request: PortalRequest, pk: int) -> HttpResponse:
    """The letter's PDF, unsealed, shown in the page (inline); each opening is audited."""
    letter = get_letter_or_404(request.user, pk)
    try:
        document, content = services.letter_document_open(user=request.user, letter=letter)
    except services.LetterError as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{document.file_name}"'
    response["Cache-Control"] = "no-store"
    response["X-Frame-Options"] = "SAMEORIGIN"  # the letter's own page frames it
    return response


@capability_required(Capability.EDIT_CLIENTS)
@require_POST
def letter_refetch(request: PortalRequest, pk: int) -> HttpResponse:
    letter = get_letter_or_404(request.user, pk)
    try:
        services.letter_document_refetch(user=request.user, letter=letter)
        messages.success(request, "The document is being fetched from the ATO again.")
    except services.LetterError as exc:
        messages.error(request, str(exc))
    return redirect("communications:letter", pk=letter.pk)


@capability_required(Capability.EDIT_CLIENTS)
@require_POST
def letters_bulk(request: PortalRequest) -> HttpResponse:
    owners = _owners(request.user)
    ids = [int(v) for v in request.POST.getlist("letters") if v.isdigit()]
    form = ChangeForm(request.POST, owners=owners)
    letters = list(Letter.objects.visible_to(request.user).filter(pk__in=ids))
    if not form.is_valid():
        messages.error(request, "Choose a state or an owner for the chosen letters.")
    else:
        try:
            count = _change(request, letters, form, owners)
            messages.success(request, f"{count} letter{'s' if count != 1 else ''} updated.")
        except services.LetterError as exc:
            messages.error(request, str(exc))
    back = QueryDict(request.POST.get("back", "")).urlencode()  # the inbox's filters, re-encoded: only a query
    return redirect(reverse("communications:inbox") + (f"?{back}" if back else ""))


@capability_required(Capability.VIEW_CLIENTS)
def client_tab(request: PortalRequest, pk: int) -> HttpResponse:
    client = get_client_or_404(request.user, pk)
    letters = Letter.objects.visible_to(request.user).filter(client=client).select_related("owner")
    context = {
        "client": client,
        "letters": list(letters.order_by("-issued", "-pk")[:100]),
        "total": letters.count(),
        "preference": Preference.objects.filter(practice=client.practice, client=client).first(),
    }
    return render(request, "communications/_client_tab.html", context)


@capability_required(Capability.VIEW_CLIENTS)
def syncs(request: PortalRequest) -> HttpResponse:
    runs = SyncRun.objects.filter(practice=request.user.tenant).select_related("started_by")[:20]
    can_sync = request.user.has_capability(Capability.OPERATE_GATEWAY)
    return render(request, "communications/syncs.html", {"runs": runs, "can_sync": can_sync})


@capability_required(Capability.OPERATE_GATEWAY)
@require_POST
def sync_start(request: PortalRequest) -> HttpResponse:
    run = services.sync_start(practice=request.user.tenant, actor=request.user)
    return redirect("communications:sync", pk=run.pk)


@capability_required(Capability.OPERATE_GATEWAY)
@require_POST
def sync_resume(request: PortalRequest, pk: int) -> HttpResponse:
    run = services.sync_resume(run=get_sync_or_404(request.user, pk), actor=request.user)
    return redirect("communications:sync", pk=run.pk)


@capability_required(Capability.VIEW_CLIENTS)
def sync_detail(request: PortalRequest, pk: int) -> HttpResponse:
    run = get_sync_or_404(request.user, pk)
    can_sync = request.user.has_capability(Capability.OPERATE_GATEWAY)
    return render(request, "communications/sync.html", {"run": run, "can_sync": can_sync})


@capability_required(Capability.VIEW_CLIENTS)
def sync_progress(request: PortalRequest, pk: int) -> HttpResponse:
    run = get_sync_or_404(request.user, pk)
    can_sync = request.user.has_capability(Capability.OPERATE_GATEWAY)
    return render(request, "communications/_sync_progress.html", {"run": run, "can_sync": can_sync})


@capability_required(Capability.VIEW_CLIENTS)
def preferences(request: PortalRequest) -> HttpResponse:
    """The coverage report: where the ATO sends the clients' letters, and the clients whose letters the practice
    does not see (their preference sends them to the client), in pages of PAGE by name."""
    user = request.user
    elsewhere = (
        Preference.objects.filter(practice=user.tenant, client__in=Client.objects.visible_to(user))
        .exclude(channel=TO_PRACTICE_CHANNEL)
        .filter(own=True)
        .select_related("client")
        .order_by("client__sort_name", "client_id")
    )
    after = request.GET.get("after", "")
    if after.isdigit() and (last := elsewhere.filter(client_id=int(after)).first()) and last.client:
        name = last.client.sort_name
        elsewhere = elsewhere.filter(
            Q(client__sort_name__gt=name) | Q(client__sort_name=name, client_id__gt=last.client_id)
        )
    page = list(elsewhere[: PAGE + 1])
    context = {
        **services.preferences_coverage(user=user),
        "elsewhere_page": page[:PAGE],
        "next_after": page[PAGE - 1].client_id if len(page) > PAGE else None,
        "can_ask": user.has_capability(Capability.EDIT_CLIENTS),
    }
    return render(request, "communications/preferences.html", context)


@capability_required(Capability.EXPORT_CLIENTS)
def preferences_csv(request: PortalRequest) -> StreamingHttpResponse:
    """The coverage report as CSV: every client the user sees, every category of letters."""
    rows = services.preferences_coverage_rows(user=request.user)
    response = StreamingHttpResponse(write_csv(rows), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="where-the-ato-sends-the-letters.csv"'
    return response


@capability_required(Capability.EDIT_CLIENTS)
@require_POST
def preferences_ask(request: PortalRequest) -> HttpResponse:
    clients = Client.objects.visible_to(request.user).exclude(tfn_hash="")
    questions = services.preferences_refresh(user=request.user, clients=clients.iterator(chunk_size=2000))
    messages.success(
        request,
        f"Asking the ATO where it sends the letters of {len(questions) - 1} clients; "
        "this page shows the answers as they come.",
    )
    return redirect("communications:preferences")


def dashboard_panel(request: PortalRequest) -> dict[str, Any]:
    return {"title": "ATO letters", "template": "communications/_panel.html", **services.letters_for_user(request.user)}
