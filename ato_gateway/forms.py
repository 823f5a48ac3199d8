from __future__ import annotations

from django import forms

from ato_gateway.models import MessageStatus


class MessageFilterForm(forms.Form):
    service = forms.CharField(required=False)
    action = forms.CharField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *MessageStatus.choices])
    client = forms.CharField(required=False, label="Client or subject")
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class CredentialImportForm(forms.Form):
    file = forms.FileField(label="Keystore (keystore.xml) or PKCS#12 (.p12/.pfx)")
    password = forms.CharField(widget=forms.PasswordInput(render_value=False))
