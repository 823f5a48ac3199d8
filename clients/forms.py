from __future__ import annotations

from typing import Any

from django import forms

from clients.csv_io import ClientRow
from clients.models import AccountKind, AccountRoleKind, ClientGroup, ClientKind
from clients.validation import clean_abn, clean_birth_date, clean_branch, clean_tfn, clean_wpn


class ClientForm(forms.Form):
    kind = forms.ChoiceField(choices=ClientKind.choices)
    family_name = forms.CharField(max_length=100, required=False)
    given_names = forms.CharField(max_length=150, required=False)
    organisation_name = forms.CharField(max_length=200, required=False)
    date_of_birth = forms.CharField(
        required=False,
        help_text="YYYY-MM-DD or DD/MM/YYYY",
        widget=forms.TextInput(attrs={"placeholder": "DD/MM/YYYY"}),
    )
    # Never rendered back into the page: after an error the TFN must be typed again, like a password.
    tfn = forms.CharField(
        label="TFN",
        max_length=20,
        required=False,
        help_text="Not shown again after an error, for privacy: type it again if asked.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    abn = forms.CharField(label="ABN", max_length=20, required=False)
    wpn = forms.CharField(label="WPN", max_length=20, required=False)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["tfn"].help_text = "Leave blank to keep the TFN on record. Not shown after an error."

    def clean_tfn(self) -> str:
        return clean_tfn(self.cleaned_data["tfn"])

    def clean_abn(self) -> str:
        return clean_abn(self.cleaned_data["abn"])

    def clean_wpn(self) -> str:
        return clean_wpn(self.cleaned_data["wpn"])

    def clean_date_of_birth(self) -> Any:
        return clean_birth_date(self.cleaned_data["date_of_birth"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == ClientKind.INDIVIDUAL:
            if not data.get("family_name"):
                self.add_error("family_name", "An individual needs a family name.")
        elif data.get("kind") and not data.get("organisation_name"):
            self.add_error("organisation_name", "An organisation needs its name.")
        return data

    def to_row(self, *, keep_tfn: bool = False) -> ClientRow:
        d = self.cleaned_data
        individual = d["kind"] == ClientKind.INDIVIDUAL
        return ClientRow(
            kind=d["kind"],
            family_name=d["family_name"] if individual else "",
            given_names=d["given_names"] if individual else "",
            organisation_name="" if individual else d["organisation_name"],
            date_of_birth=d["date_of_birth"] if individual else None,
            tfn=d["tfn"],
            abn=d["abn"],
            wpn=d["wpn"],
            group="",
        )


class AccountForm(forms.Form):
    kind = forms.ChoiceField(choices=AccountKind.choices)
    branch = forms.CharField(
        max_length=3, required=False, initial="001", help_text="Activity statement accounts only: the 3-digit branch."
    )
    roles = forms.MultipleChoiceField(
        choices=AccountRoleKind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, client_abn: str = "", **kwargs: Any) -> None:
        self.client_abn = client_abn
        super().__init__(*args, **kwargs)

    def clean_branch(self) -> str:
        return clean_branch(self.cleaned_data["branch"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == AccountKind.ACTIVITY_STATEMENT:
            if not self.client_abn:
                self.add_error("kind", "An activity statement account needs the client's ABN; add it first.")
        elif data.get("roles"):
            self.add_error("roles", "Roles belong to activity statement accounts only.")
        return data


class RolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=AccountRoleKind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )


class GroupForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=300, required=False)

    def __init__(self, *args: Any, practice_id: int, **kwargs: Any) -> None:
        self.practice_id = practice_id
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if ClientGroup.objects.filter(practice_id=self.practice_id, name__iexact=name).exists():
            raise forms.ValidationError("There is already a group of that name.")
        return name


class GroupChoiceForm(forms.Form):
    groups = forms.ModelMultipleChoiceField(
        queryset=ClientGroup.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, groups: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = groups  # type: ignore[attr-defined]


class StaffGroupsForm(GroupChoiceForm):
    restricted = forms.BooleanField(required=False, label="Restrict this person to the groups ticked below")


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))
