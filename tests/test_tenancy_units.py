"""capability_required and the roles' capabilities, asked directly. The walk in test_tenancy.py goes through views
decorated when the URLconf was imported; these decorate a view in the test itself, so that what the decorator
does at decoration time is part of the test (and a mutant of it is seen, which the walk's views never show)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from portal.capabilities import ROLE_CAPABILITIES, Capability, Role
from portal.decorators import capability_required

pytestmark = pytest.mark.django_db


def statement(request: HttpRequest, pk: int, *, part: str) -> HttpResponse:
    """A view's own words and its arguments, so that a test sees the view itself was reached, with what."""
    return HttpResponse(f"statement {pk} {part}")


def test_granted_staff_reach_the_view_with_its_arguments(agent):
    view = capability_required(Capability.EDIT_CLIENTS)(statement)
    request = RequestFactory().get("/statement/7/")
    request.user = agent
    response = view(request, 7, part="gst")
    assert response.status_code == 200 and response.content == b"statement 7 gst"
    assert view.__name__ == "statement" and view.__doc__ == statement.__doc__


def test_staff_without_the_capability_are_refused_by_its_name(reader, agent):
    view = capability_required(Capability.MANAGE_STAFF)(statement)
    for user in (reader, agent):
        request = RequestFactory().post("/statement/7/")
        request.user = user
        with pytest.raises(PermissionDenied, match=r"^You need the “Manage staff and access” permission"):
            view(request, 7, part="gst")


def test_a_deactivated_admin_is_refused_and_a_stranger_is_sent_to_sign_in(admin):
    view = capability_required(Capability.VIEW_CLIENTS)(statement)
    admin.is_active = False
    request = RequestFactory().get("/statement/7/")
    request.user = admin
    with pytest.raises(PermissionDenied):
        view(request, 7, part="gst")
    request.user = AnonymousUser()
    response = view(request, 7, part="gst")
    assert response.status_code == 302 and response["Location"] == f"{reverse('portal:login')}?next=/statement/7/"


def test_what_each_role_may_do():
    """The table a practice's access rests on: read-only staff only look; agents do the practice's work but manage
    no staff, groups, credentials or gateway, see no audit trail and approve nobody's change; admins do all."""
    assert ROLE_CAPABILITIES[Role.READ_ONLY] == {Capability.VIEW_CLIENTS}
    assert ROLE_CAPABILITIES[Role.PRACTICE_ADMIN] == set(Capability)
    assert set(Capability) - ROLE_CAPABILITIES[Role.AGENT] == {
        Capability.MANAGE_GROUPS,
        Capability.APPROVE_CHANGES,
        Capability.MANAGE_STAFF,
        Capability.VIEW_AUDIT,
        Capability.OPERATE_GATEWAY,
        Capability.MANAGE_CREDENTIALS,
    }
