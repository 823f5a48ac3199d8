"""Forms of the relationship pages: who to look for at the ATO, which links to ask for, which link to remove."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from ato_gateway.wire.documents import curel
from clients.models import Client
from clients.tfn import tfn_lookup_hash
from clients.validation import clean_abn, clean_birth_date, clean_tfn, clean_wpn
from relationships.models import Level, Link, describe_level
from relationships.services import LinkKey, NotReady, client_identification

IDENTIFIER_KINDS = [("TFN", "TFN"), ("ABN", "ABN"), ("WPN", "WPN")]
ENTITY = [("individual", "An individual"), ("organisation", "An organisation (company, trust, partnership, fund)")]
_CLEANERS = {"TFN": clean_tfn, "ABN": clean_abn, "WPN": clean_wpn}


class SearchForm(forms.Form):
    """Who to look for: one identifier and the name, plus the date of birth of an individual. For a client already
    in the register the identifier on record may be used instead of typing it (it is never put in the page)."""

    entity = forms.ChoiceField(label="The client is", choices=ENTITY, widget=forms.RadioSelect, initial="individual")
    identifier_kind = forms.ChoiceField(label="Identifier", choices=IDENTIFIER_KINDS, initial="TFN")
    # Never rendered back into the page: after an error the number is typed again, like a password (a TFN).
    identifier = forms.CharField(
        label="Number",
        max_length=20,
        required=False,
        help_text="Not shown again after an error, for privacy: type it again if asked.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    family_name = forms.CharField(max_length=100, required=False)
    given_name = forms.CharField(max_length=100, required=False)
    date_of_birth = forms.CharField(
        required=False,
        help_text="Individuals only. YYYY-MM-DD or DD/MM/YYYY",
        widget=forms.TextInput(attrs={"placeholder": "DD/MM/YYYY"}),
    )
    organisation_name = forms.CharField(max_length=200, required=False, help_text="Organisations only.")

    def __init__(self, *args: Any, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        self.on_record = ""
        if client is not None and (client.tfn_last3 or client.abn or client.wpn):
            self.on_record = f"TFN {client.masked_tfn}" if client.tfn_last3 else client.abn or client.wpn
            self.fields["identifier"].help_text = (
                f"Leave blank to use the one on record ({self.on_record}). " + self.fields["identifier"].help_text
            )

    def clean_date_of_birth(self) -> date | None:
        return clean_birth_date(self.cleaned_data["date_of_birth"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, raw = data.get("identifier_kind", "TFN"), data.get("identifier", "")
        if raw:
            try:
                data["identifier"] = _CLEANERS[kind](raw)
            except forms.ValidationError as problem:
                self.add_error("identifier", problem)
            else:
                self._check_same_client(kind, data["identifier"])
        elif self.on_record and self.client is not None:
            try:
                data["identifier_kind"], data["identifier"] = client_identification(self.client)
            except NotReady as problem:
                self.add_error("identifier", str(problem))
        else:
            self.add_error("identifier", "Type the client's TFN, ABN or WPN.")
        if data.get("entity") == "individual":
            if not data.get("family_name"):
                self.add_error("family_name", "The ATO matches an individual by family name: type it.")
            if not data.get("date_of_birth") and "date_of_birth" not in self.errors:
                self.add_error("date_of_birth", "The ATO matches an individual by date of birth: type it.")
        elif not data.get("organisation_name"):
            self.add_error("organisation_name", "The ATO matches an organisation by its name: type it.")
        return data

    def _check_same_client(self, kind: str, value: str) -> None:
        """Started from a client's page, the links found are recorded against that client: a number typed that
        differs from the one on record for that client would link the wrong client, so it is refused here."""
        client = self.client
        if client is None:
            return
        held = {"TFN": client.tfn_hash, "ABN": client.abn, "WPN": client.wpn}[kind]
        typed = tfn_lookup_hash(value) if kind == "TFN" else value
        if held and held != typed:
            self.add_error(
                "identifier",
                f"This is not the {kind} on record for {client}. Leave it blank to use the one on record, or add "
                "someone else from Relationships.",
            )

    def search_fields(self) -> dict[str, Any]:
        """The keyword arguments of ``services.link_search`` (the identifier in clear, only for the service)."""
        d = self.cleaned_data
        individual = d["entity"] == "individual"
        return {
            "identifier_kind": d["identifier_kind"],
            "identifier": d["identifier"],
            "family_name": d["family_name"] if individual else "",
            "given_name": d["given_name"] if individual else "",
            "birth_date": d["date_of_birth"] if individual else None,
            "organisation_name": "" if individual else d["organisation_name"],
            "client": self.client,
        }


def encode_key(key: LinkKey) -> str:
    return "|".join(key)


def decode_key(value: str) -> LinkKey:
    level, kind, branch, role = [*value.split("|"), "", "", ""][:4]
    return (level, kind, branch, role)


def link_choices(found: curel.FoundClient | None) -> list[tuple[str, str]]:
    """Every level the ATO's search answer allows: the whole client, each account, each role of each account."""
    choices = [(encode_key((Level.CLIENT, "", "", "")), "The whole client: every account and role")]
    for account in found.accounts if found else []:
        kind, branch = account.kind, account.branch or ""
        key: LinkKey = (Level.ACCOUNT, kind, branch, "")
        choices.append((encode_key(key), describe_level(*key).capitalize() + ", with all its roles"))
        for role in account.roles:
            key = (Level.ROLE, kind, branch, role)
            choices.append((encode_key(key), describe_level(*key)))
    return choices


class LinkChoiceForm(forms.Form):
    """Which links to ask for, among those the client has at the ATO."""

    links = forms.MultipleChoiceField(
        label="Link the practice to",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose the client level, an account or at least one role."},
    )

    def __init__(self, *args: Any, found: curel.FoundClient | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["links"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = link_choices(found)

    def keys(self) -> list[LinkKey]:
        return [decode_key(v) for v in self.cleaned_data["links"]]


class RemoveForm(forms.Form):
    """One of the client's current links, to end at the ATO."""

    link = forms.ModelChoiceField(queryset=Link.objects.none(), error_messages={"invalid_choice": "No such link."})

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["link"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Link.objects.current().filter(client=client, practice=client.practice)
