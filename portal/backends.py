"""Signing staff in by practice code, username and password: usernames are unique only within a practice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.backends import ModelBackend

from portal.models import User

if TYPE_CHECKING:
    from django.http import HttpRequest


class PracticeBackend(ModelBackend):
    """Django's ModelBackend (permissions, get_user, the inactive check), finding the account by practice code and
    username together: a username alone may name a person in each of several practices."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        practice: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not (username and password and practice):
            return None
        user = User.objects.for_sign_in(practice_code=practice, username=username)
        if user is None:
            # As ModelBackend does: hash anyway, so that the answer's timing does not tell which accounts exist.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    """What axes locks out, with the address: one account, named by its practice code and username, so that five
    wrong passwords for "alice" at one practice do not lock out an "alice" at another."""
    source: Any = credentials if credentials else request.POST
    practice = str(source.get("practice") or "").strip().lower()
    username = str(source.get("username") or "").strip().lower()
    return f"{practice}/{username}"
