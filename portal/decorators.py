from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http.response import HttpResponseBase

from portal.capabilities import Capability
from portal.http import PortalRequest

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def capability_required(capability: Capability) -> Callable[[View], View]:
    """Signed in, verified by MFA (the middleware sees to that), a member of a practice and granted the
    capability; otherwise 403."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: PortalRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = request.user
            if not user.has_capability(capability):
                raise PermissionDenied(f"You need the “{capability.label}” permission for this page.")
            return view(request, *args, **kwargs)

        return cast(View, wrapped)

    return decorator
