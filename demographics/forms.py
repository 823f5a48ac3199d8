from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils import timezone

from demographics.models import level_words


class BankChangeForm(forms.Form):
    bsb = forms.CharField(label="BSB", max_length=7, help_text="Six digits, for example 062-000.")
    number = forms.CharField(label="Account number", max_length=9, help_text="5 to 9 digits.")
    account_name = forms.CharField(
        label="Account name", max_length=32, help_text="As the bank holds it: the client's own name."
    )

    def clean_bsb(self) -> str:
        bsb = re.sub(r"[\s-]", "", self.cleaned_data["bsb"])
        if not re.fullmatch(r"[0-9]{6}", bsb):
            raise forms.ValidationError("Enter the BSB as six digits, for example 062-000.")
        return bsb

    def clean_number(self) -> str:
        number = self.cleaned_data["number"].replace(" ", "")
        if not re.fullmatch(r"[0-9]{5,9}", number):
            raise forms.ValidationError("Enter the account number as 5 to 9 digits.")
        return number


class CallbackForm(forms.Form):
    number = forms.ChoiceField(label="Number called", widget=forms.RadioSelect)
    called_at = forms.DateTimeField(
        label="When the client confirmed the new account",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="The date and time of the call.",
    )

    def __init__(self, *args: Any, numbers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["number"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(n, n) for n in numbers]
        field.help_text = "Only the numbers the ATO held before the change was proposed."
        if not self.is_bound:
            self.initial["called_at"] = timezone.localtime().strftime("%Y-%m-%dT%H:%M")


class ApproveForm(forms.Form):
    code = forms.CharField(
        label="Your authenticator code",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The six digits your authenticator app shows now.",
    )


STATES = [("", "Choose…")] + [(s, s) for s in ("ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA")]


class AddressForm(forms.Form):
    usage = forms.ChoiceField(
        label="Which address",
        choices=[("POS", "Postal"), ("BUS", "Business"), ("RES", "Residential")],
        widget=forms.RadioSelect,
        initial="POS",
    )
    line1 = forms.CharField(label="Address line 1", max_length=38)
    line2 = forms.CharField(label="Address line 2", max_length=38, required=False)
    locality = forms.CharField(label="Suburb or town", max_length=46)
    state = forms.ChoiceField(label="State or territory", choices=STATES)
    postcode = forms.RegexField(
        label="Postcode", regex=r"^[0-9]{4}$", error_messages={"invalid": "Enter the postcode as four digits."}
    )


class ClientAddressForm(AddressForm):
    every_account = forms.BooleanField(
        label="Also at every ATO account of the client",
        required=False,
        help_text="Each account the register holds (income tax, activity statements, FBT), besides the client level.",
    )


class BulkAddressForm(AddressForm):
    group = forms.ChoiceField(
        label="Which clients", help_text="Every client of the group you can act for, or every client you can see."
    )

    def __init__(self, *args: Any, groups: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["group"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("all", "Every client I can see")] + [(str(pk), name) for pk, name in groups]


class DetailsForm(forms.Form):
    """The details the ATO lets a practice change, each optional: only what is entered is sent."""

    family_name = forms.CharField(label="Family name", max_length=40, required=False)
    given_name = forms.CharField(label="Given name", max_length=40, required=False)
    death_date = forms.DateField(label="Date of death", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    organisation_name = forms.CharField(label="Organisation name", max_length=200, required=False)
    legal_name = forms.CharField(
        label="Legal name", max_length=200, required=False, help_text="Of a trust, a fund or a partnership."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("given_name") and not data.get("family_name"):
            self.add_error("family_name", "Enter the family name with the given name.")
        if not any(data.get(name) for name in self.fields):
            raise forms.ValidationError("Enter at least one detail to change.")
        return data

    def values(self) -> dict[str, str]:
        return {
            name: value.isoformat() if hasattr(value, "isoformat") else value
            for name, value in self.cleaned_data.items()
            if value
        }


class ContactForm(forms.Form):
    """The new authorised contact, at client level or for one of the client's ATO accounts the register holds."""

    level = forms.ChoiceField(
        label="Where the ATO holds it",
        widget=forms.RadioSelect,
        initial="",
        required=False,  # the client level's choice is the empty one
        help_text="The client itself, or one ATO account of the client: each has its own contact.",
    )
    family_name = forms.CharField(label="Family name", max_length=40)
    given_name = forms.CharField(label="Given name", max_length=40)
    position = forms.CharField(label="Position", max_length=50, required=False)
    phone = forms.CharField(label="Phone", max_length=16, required=False, help_text="For example 02 9999 0000.")
    email = forms.EmailField(label="Email", max_length=254, required=False)

    def __init__(self, *args: Any, levels: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["level"]
        assert isinstance(field, forms.ChoiceField)
        # The ATO's codes as "AS:001" ("" the client level), named as the Addresses and Contacts tabs name them.
        field.choices = [(f"{kind}:{branch}" if kind else "", level_words(kind, branch)) for kind, branch in levels]

    def clean_phone(self) -> str:
        # Written as the help text shows it; the ATO takes the digits only, and says so of anything else.
        phone: str = self.cleaned_data["phone"]
        return re.sub(r"[\s()-]", "", phone)

    def values(self) -> dict[str, str]:
        """The contact's values, and ``account`` ("AS:001") for an account's contact (none at client level)."""
        values = {name: value for name, value in self.cleaned_data.items() if value and name != "level"}
        if self.cleaned_data.get("level"):
            values["account"] = self.cleaned_data["level"]
        return values
