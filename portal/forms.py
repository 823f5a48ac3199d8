from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation

from portal.capabilities import Role
from portal.models import Practice, User

ROLE_CHOICES = [(r.value, r.label) for r in Role]


class LoginForm(forms.Form):
    practice = forms.CharField(
        label="Practice code",
        max_length=40,
        help_text="Your practice's code, on your invitation and on Your account.",
        widget=forms.TextInput(attrs={"autocomplete": "organization", "autocapitalize": "none"}),
    )
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"})
    )
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class StaffInviteForm(forms.Form):
    username = forms.RegexField(regex=r"^[\w.@+-]+$", max_length=150)
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    email = forms.EmailField()
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.AGENT.value)

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        self.practice = practice
        super().__init__(*args, **kwargs)

    def clean_username(self) -> str:
        # Only this practice's staff: usernames in other practices are theirs to know, and do not clash.
        username: str = self.cleaned_data["username"]
        if User.objects.in_practice(self.practice).filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label="Your password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's: the current password, then the new one twice, checked by AUTH_PASSWORD_VALIDATORS."""


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class SetPasswordForm(forms.Form):
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2:
            if p1 != p2:
                self.add_error("password2", "The two passwords differ.")
            else:
                try:
                    password_validation.validate_password(p1, self.user)
                except forms.ValidationError as exc:
                    self.add_error("password1", exc)
        return data


class AuditSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Action or object")
    actor = forms.CharField(required=False, label="Staff username")
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
