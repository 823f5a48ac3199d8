"""Forms of the preference changes: where the ATO sends the letters, for which categories, for which clients, and
the clients' written authorisation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from communications.models import CATEGORY_WORDS, CHANNEL_WORDS
from portal.models import User

CHANNEL_CHOICES = [*CHANNEL_WORDS.items(), ("", "Back to the practice default")]


class PreferenceForm(forms.Form):
    channel = forms.ChoiceField(label="Where the ATO sends the letters", choices=CHANNEL_CHOICES, required=False)
    email = forms.EmailField(label="Email address", required=False, help_text="Only when letters go by email.")
    categories = forms.MultipleChoiceField(
        label="Categories of letters",
        choices=list(CATEGORY_WORDS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every category.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("channel") == "EMAIL" and not data.get("email"):
            self.add_error("email", "Enter the email address the ATO sends the letters to.")
        return data


class AuthorityForm(forms.Form):
    """The written authorisation: the signed document, or the date and who holds it."""

    signed_on = forms.DateField(label="Signed on", widget=forms.DateInput(attrs={"type": "date"}))
    held_by = forms.ModelChoiceField(label="Held by", queryset=User.objects.none(), required=False)
    document = forms.FileField(label="The signed authorisation", required=False)

    def __init__(self, *args: Any, staff: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["held_by"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = staff

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("signed_on") and data["signed_on"] > timezone.localdate():
            self.add_error("signed_on", "The authorisation cannot be signed after today.")
        if not data.get("document") and not data.get("held_by"):
            self.add_error(None, "Upload the signed authorisation, or choose the member of staff who holds it.")
        return data


class BulkPreferenceForm(PreferenceForm):
    group = forms.ChoiceField(label="Which clients", required=False)
    clients_csv = forms.CharField(
        label="Or these clients",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Client numbers or TFNs, separated by commas or new lines (a CSV's text).",
    )
    csv_file = forms.FileField(label="Or a CSV file of client numbers or TFNs", required=False)
    signed_on = forms.DateField(
        label="Authorisations signed on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="When letters go to the practice's inbox: the clients' written authorisations are required.",
    )
    held_by = forms.ModelChoiceField(label="Authorisations held by", queryset=User.objects.none(), required=False)

    def __init__(self, *args: Any, groups: list[tuple[int, str]], staff: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        group = self.fields["group"]
        assert isinstance(group, forms.ChoiceField)
        group.choices = [
            ("all", "Every client I can see"),
            ("elsewhere", "Clients whose letters go to them (the coverage report's list)"),
            ("never", "Clients never asked about"),
        ] + [(str(pk), name) for pk, name in groups]
        held_by = self.fields["held_by"]
        assert isinstance(held_by, forms.ModelChoiceField)
        held_by.queryset = staff
