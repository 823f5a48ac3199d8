"""The superannuation pages' forms: a fund, a member's details, the worklist's steps, extensions, the 096604
remediation and a resolution. Validation a person reads is here; what the ATO requires (ABN, USI, TFN) is checked
again by the services, whose ValidationError messages the views put back on the form."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from superannuation.models import AccountPhase, LostStatus, Member, WorkItem

# A date field's value as the browser's date control reads it (ISO), whatever the locale's date format.
DATE = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


def put_errors(form: forms.Form, problem: ValidationError) -> None:
    """The services' ValidationError on the form: by field where the form has the field, else at the top."""
    if not hasattr(problem, "error_dict"):
        form.add_error(None, problem.messages)
        return
    for field, errors in problem.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class FundForm(forms.Form):
    name = forms.CharField(label="Fund name", max_length=200)
    abn = forms.CharField(label="ABN", max_length=14, help_text="The fund's ABN: 11 digits.")
    usi = forms.CharField(
        label="USI", max_length=20, help_text="The Unique Superannuation Identifier: the fund's ABN and 3 digits."
    )

    link_client = forms.BooleanField(
        label="Link the fund to its client in the register (the client with the fund's ABN)",
        required=False,
        help_text="Staff restricted to client groups see the fund through that client's groups; others see every fund.",
    )

    def clean_abn(self) -> str:
        return self.cleaned_data["abn"].replace(" ", "")

    def clean_usi(self) -> str:
        return self.cleaned_data["usi"].replace(" ", "").upper()


class ImportForm(forms.Form):
    file = forms.FileField(label="Member file (CSV)", help_text="Use the template's columns; at most 50 MB.")


class MemberSearchForm(forms.Form):
    q = forms.CharField(label="Name or member number", required=False, max_length=100)


class MemberForm(forms.Form):
    """What staff may change of a member account: the member's name and address, and the MAAS attributes."""

    family_name = forms.CharField(label="Family name", max_length=100)
    given_names = forms.CharField(label="Given names", max_length=150, required=False)
    date_of_birth = forms.DateField(label="Date of birth", widget=DATE)
    address_line1 = forms.CharField(label="Address", max_length=100, required=False)
    address_line2 = forms.CharField(label="Address line 2", max_length=100, required=False)
    locality = forms.CharField(label="Suburb or town", max_length=60, required=False)
    state = forms.CharField(label="State", max_length=3, required=False)
    postcode = forms.CharField(label="Postcode", max_length=4, required=False)
    phase = forms.ChoiceField(label="Account phase", choices=AccountPhase.choices)
    lost_status = forms.ChoiceField(label="Lost status", choices=LostStatus.choices)
    contributions_accepted = forms.BooleanField(label="Contributions accepted", required=False)
    inward_rollovers_accepted = forms.BooleanField(label="Inward rollovers accepted", required=False)
    outward_rollovers_accepted = forms.BooleanField(label="Member outward rollovers accepted", required=False)
    government_rollovers_accepted = forms.BooleanField(label="Government rollovers accepted", required=False)
    defined_benefit = forms.BooleanField(label="Defined benefit interest", required=False)
    insurance = forms.BooleanField(label="Insurance", required=False)
    grandfathered = forms.BooleanField(label="Grandfathering", required=False)
    innovative_income_stream = forms.BooleanField(label="Innovative income stream product", required=False)

    @classmethod
    def initial_for(cls, member: Member) -> dict[str, object]:
        return {name: getattr(member, name) for name in cls.base_fields}

    def changed_fields(self) -> dict[str, object]:
        return {name: self.cleaned_data[name] for name in self.changed_data}


class MemberAddForm(MemberForm):
    """A new member account: its number, the day it opened and the TFN as quoted, besides what may be changed."""

    member_number = forms.CharField(label="Member account number", max_length=40)
    opened_on = forms.DateField(label="Opened on", widget=DATE)
    tfn = forms.CharField(
        label="TFN (optional)",
        max_length=11,
        required=False,
        help_text="As the member quoted it; leave it empty if they did not. It is stored sealed and shown masked.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )

    field_order = ["member_number", "opened_on", "family_name", "given_names", "date_of_birth", "tfn"]


class StatusForm(forms.Form):
    on = forms.DateField(label="On", widget=DATE, help_text="The day the account was closed or reopened.")


class StepForm(forms.Form):
    contact = forms.CharField(
        label="Contact made",
        max_length=200,
        help_text="Whom, and how: for example “the member, by phone on the number on file”.",
    )
    found = forms.CharField(label="What was found", widget=forms.Textarea(attrs={"rows": 3}))
    evidence = forms.FileField(label="Evidence (optional)", required=False, help_text="A letter, an email, a note.")


class ExtensionForm(forms.Form):
    requested_on = forms.DateField(label="Asked on", widget=DATE)
    requested_of = forms.CharField(
        label="Asked of", max_length=200, help_text="For example SuperCRT@ato.gov.au, and the officer's name."
    )
    new_due_on = forms.DateField(label="New date agreed", widget=DATE)


class RemediationForm(forms.Form):
    remediation = forms.ChoiceField(
        label="What the fund did", choices=WorkItem.Remediation.choices, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label="Note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Needed when the identity was confirmed: whom at the ATO, when, and what they confirmed.",
    )
    holder_family_name = forms.CharField(label="Other holder's family name", max_length=100, required=False)
    holder_given_names = forms.CharField(label="Other holder's given names", max_length=150, required=False)
    holder_date_of_birth = forms.DateField(label="Other holder's date of birth", widget=DATE, required=False)

    def clean(self) -> dict[str, object] | None:
        data = super().clean() or {}
        if data.get("remediation") == WorkItem.Remediation.CLOSED_UNDER_HOLDER:
            for name in ("holder_family_name", "holder_date_of_birth"):
                if not data.get(name):
                    self.add_error(name, "Needed to report the account closed under the other holder.")
        elif data.get("remediation") == WorkItem.Remediation.IDENTITY_CONFIRMED and not data.get("note"):
            self.add_error("note", "Say whom at the ATO confirmed the identity, and when.")
        return data

    def holder(self) -> dict[str, object] | None:
        if self.cleaned_data["remediation"] != WorkItem.Remediation.CLOSED_UNDER_HOLDER:
            return None
        return {
            "family_name": self.cleaned_data["holder_family_name"],
            "given_names": self.cleaned_data["holder_given_names"],
            "date_of_birth": self.cleaned_data["holder_date_of_birth"],
        }


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        label="How it was resolved", widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept with the item."
    )
