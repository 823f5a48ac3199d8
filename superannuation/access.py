"""Who may do what with the funds: viewing needs VIEW_CLIENTS, every change MANAGE_SUPER_FUNDS, and both are scoped
by ``visible_to(user)`` so that a fund of another practice, or one outside a restricted member's groups, is a 404
and not a 403."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from portal.capabilities import Capability
from portal.models import User
from superannuation.models import Member, SuperFund, WorkItem


def require_view(user: User) -> None:
    if not user.has_capability(Capability.VIEW_CLIENTS):
        raise PermissionDenied("You do not have permission to view super funds.")


def require_manage(user: User) -> None:
    if not user.has_capability(Capability.MANAGE_SUPER_FUNDS):
        raise PermissionDenied("You do not have permission to manage super funds.")


def visible_fund(user: User, fund: SuperFund) -> SuperFund:
    """The fund as the user may see it, fresh from the database (a stale or foreign object is not trusted)."""
    found = SuperFund.objects.visible_to(user).filter(pk=fund.pk).first()
    if found is None:
        raise Http404("No such fund.")
    return found


def visible_member(user: User, member: Member) -> Member:
    found = Member.objects.visible_to(user).select_related("fund").filter(pk=member.pk).first()
    if found is None:
        raise Http404("No such member.")
    return found


def visible_item(user: User, item: WorkItem) -> WorkItem:
    found = WorkItem.objects.visible_to(user).select_related("fund", "member", "transaction").filter(pk=item.pk).first()
    if found is None:
        raise Http404("No such item.")
    return found
