from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_otp import devices_for_user

from portal import services
from portal.apps import restricted_visible
from portal.audit import audit_record
from portal.audit_words import actions_matching
from portal.capabilities import CAPABILITY_LABELS, ROLE_CAPABILITIES, Capability, Role
from portal.decorators import capability_required
from portal.forms import (
    AuditSearchForm,
    ConfirmPasswordForm,
    LoginForm,
    PasswordChangeForm,
    RoleForm,
    SetPasswordForm,
    StaffInviteForm,
    TokenForm,
)
from portal.http import PortalRequest
from portal.models import AuditEvent, User, client_ip, get_staff_or_404
from portal.passkeys import passkey_registration_confirm, passkey_registration_confirmed, passkeys_of

# The practice code of the last sign-in in this browser, so that staff type it once, not at every sign-in.
PRACTICE_COOKIE = "portal_practice"


def login_view(request: PortalRequest) -> HttpResponse:
    remembered = request.COOKIES.get(PRACTICE_COOKIE, "")[:40]
    form = LoginForm(request.POST or None, initial={"practice": remembered})
    form.fields["username" if remembered else "practice"].widget.attrs["autofocus"] = True
    if request.method == "POST" and services.login_address_paused(ip=client_ip(request)):
        services.login_failed_record(
            request=request, practice_code=request.POST.get("practice", ""), username=request.POST.get("username", "")
        )
        return render(request, "portal/locked_out.html", {"address_paused": True}, status=429)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = authenticate(request, practice=data["practice"], username=data["username"], password=data["password"])
        if user is not None:
            login(request, user)
            response = redirect("portal:mfa_verify" if any(devices_for_user(user)) else "portal:mfa_enrol")
            response.set_cookie(
                PRACTICE_COOKIE,
                user.tenant.code,
                max_age=400 * 24 * 3600,
                secure=request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
            return response
        services.login_failed_record(request=request, practice_code=data["practice"], username=data["username"])
        # One message for every part: which part was wrong would tell whether a practice code or username exists.
        form.add_error(None, "The practice code, username or password is not right.")
    return render(request, "portal/login.html", {"form": form, "expired": "expired" in request.GET})


@require_POST
def logout_view(request: PortalRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit_record("logout", request=request)
    logout(request)
    return redirect("portal:login")


@login_required
def mfa_enrol(request: PortalRequest) -> HttpResponse:
    if request.user.is_verified():
        return redirect("portal:dashboard")
    if any(devices_for_user(request.user)):
        return redirect("portal:mfa_verify")
    device = services.mfa_enrolment_device(request.user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = services.mfa_confirm_enrolment(request=request, device=device, token=form.cleaned_data["token"])
        if codes is not None:
            return render(request, "portal/mfa_backup_codes.html", {"codes": codes})
        form.add_error("token", "That code is not right. Check the time on your phone and try the next code.")
    context = {"form": form, "qr_svg": services.mfa_qr_svg(device), "secret": services.mfa_typed_key(device)}
    return render(request, "portal/mfa_enrol.html", context)


@login_required
def mfa_verify(request: PortalRequest) -> HttpResponse:
    if request.user.is_verified():
        return redirect("portal:dashboard")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        problem = services.mfa_verify(request=request, token=form.cleaned_data["token"])
        if problem is None:
            return redirect("portal:dashboard")
        form.add_error("token", problem)
    context = {"form": form, "has_passkey": bool(passkeys_of(request.user))}
    return render(request, "portal/mfa_verify.html", context)


@login_required
@require_POST
def mfa_new_backup_codes(request: PortalRequest) -> HttpResponse:
    """New backup codes replace a second factor, so they need the password again: a session left open on a shared
    desk must not be enough to take a set away."""
    form = ConfirmPasswordForm(request.POST)
    if not (
        form.is_valid() and services.staff_password_confirmed(request=request, password=form.cleaned_data["password"])
    ):
        form.add_error("password", "That password is not right.")
        audit_record("mfa.backup_codes_refused", request=request, target=request.user)
        context = {
            "reauth_form": form,
            "passkey_form": ConfirmPasswordForm(prefix="passkey"),
            "passkeys": passkeys_of(request.user),
        }
        return render(request, "portal/account.html", context, status=400)
    codes = services.mfa_replace_backup_codes(user=request.user)
    audit_record("mfa.backup_codes_replaced", request=request, target=request.user)
    return render(request, "portal/mfa_backup_codes.html", {"codes": codes})


@login_required
def password_change(request: PortalRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.staff_change_password(request=request, password=form.cleaned_data["new_password1"])
        messages.success(request, "Your password is changed. Every other session you had is signed out.")
        return redirect("portal:account")
    return render(request, "portal/password_change.html", {"form": form})


@login_required
@require_POST
def keep_alive(request: PortalRequest) -> HttpResponse:
    """The warning's "Stay signed in" before the idle sign-out: this request is the activity that keeps the session.
    Written at once, not at most once a minute as SessionIdleTimeoutMiddleware does, so the full time is granted."""
    request.session["last_seen"] = int(time.time())
    return HttpResponse(status=204)


@login_required
def account(request: PortalRequest) -> HttpResponse:
    context = {
        "reauth_form": ConfirmPasswordForm(),
        "passkey_form": ConfirmPasswordForm(prefix="passkey"),
        "passkey_confirmed": passkey_registration_confirmed(request),
        "passkeys": passkeys_of(request.user),
    }
    return render(request, "portal/account.html", context)


@login_required
@require_POST
def passkey_confirm_password(request: PortalRequest) -> HttpResponse:
    """The password again before adding a passkey, as before new backup codes: a second factor of one's own must not
    be had from a session left open on a shared desk."""
    form = ConfirmPasswordForm(request.POST, prefix="passkey")
    if not (
        form.is_valid() and services.staff_password_confirmed(request=request, password=form.cleaned_data["password"])
    ):
        form.add_error("password", "That password is not right.")
        audit_record("mfa.passkey_refused", request=request, target=request.user, details={"reason": "password"})
        context = {"reauth_form": ConfirmPasswordForm(), "passkey_form": form, "passkeys": passkeys_of(request.user)}
        return render(request, "portal/account.html", context, status=400)
    passkey_registration_confirm(request)
    return redirect(f"{reverse('portal:account')}#passkeys")


@login_required
@require_POST
def passkey_remove(request: PortalRequest, pk: int) -> HttpResponse:
    if not services.passkey_remove(user=request.user, pk=pk):
        raise Http404("You have no passkey of that number.")  # another person's is as absent as one never made
    messages.success(request, "The passkey is removed. Sign in with your authenticator app or another passkey.")
    return redirect("portal:account")


def accept_invite(request: PortalRequest, token: str) -> HttpResponse:
    user = services.staff_for_invite(token)
    if user is None:
        return render(request, "portal/invite_invalid.html", status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.staff_accept_invite(request=request, user=user, password=form.cleaned_data["password1"])
        return redirect("portal:mfa_enrol")
    return render(request, "portal/accept_invite.html", {"form": form, "invitee": user})


@login_required
def dashboard(request: PortalRequest) -> HttpResponse:
    return render(request, "portal/dashboard.html", {"widgets": dashboard_widgets(request)})


def dashboard_widgets(request: PortalRequest) -> list[dict[str, object]]:
    """Each installed app may add a dashboard panel; see PortalConfig for the registry."""
    from portal.apps import DASHBOARD_PANELS

    return [panel(request) for panel in DASHBOARD_PANELS]


@capability_required(Capability.MANAGE_STAFF)
def staff_list(request: PortalRequest) -> HttpResponse:
    staff = User.objects.in_practice(request.user.tenant)
    return render(request, "portal/staff_list.html", {"staff": staff})


@capability_required(Capability.MANAGE_STAFF)
def staff_add(request: PortalRequest) -> HttpResponse:
    form = StaffInviteForm(request.user.tenant, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user, token = services.staff_invite(
            admin=request.user,
            username=data["username"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            email=data["email"],
            role=Role(data["role"]),
        )
        link = request.build_absolute_uri(reverse("portal:accept_invite", args=[token]))
        services.staff_invite_email(user=user, link=link)
        return render(request, "portal/staff_invited.html", {"invitee": user, "link": link})
    return render(request, "portal/staff_add.html", {"form": form})


@capability_required(Capability.MANAGE_STAFF)
def staff_detail(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    form = RoleForm(request.POST or None, initial={"role": member.role})
    if request.method == "POST" and form.is_valid():
        if member == request.user:
            form.add_error("role", "You cannot change your own role; ask another practice admin.")
        else:
            services.staff_change_role(admin=request.user, user=member, role=Role(form.cleaned_data["role"]))
            messages.success(request, f"{member.display_name} is now {member.role_label}.")
            return redirect("portal:staff_detail", pk=member.pk)
    context = {"member": member, "form": form, "invite_pending": services.staff_invite_pending(member)}
    return render(request, "portal/staff_detail.html", context)


def _confirm_page(request: PortalRequest, member: User, *, action: str, button: str, consequence: str) -> HttpResponse:
    """The step before a change an admin cannot take back from the staff page: what it does, and the one button
    that does it. The staff page's buttons come here by GET (no JavaScript needed); only this page's form posts."""
    context = {"member": member, "action": action, "button": button, "consequence": consequence}
    return render(request, "portal/staff_confirm.html", context)


@capability_required(Capability.MANAGE_STAFF)
def staff_deactivate(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    if request.method != "POST" and member != request.user and member.is_active:
        consequence = "They are signed out everywhere at once and cannot sign in until an admin reactivates them."
        return _confirm_page(
            request, member, action="portal:staff_deactivate", button="Deactivate", consequence=consequence
        )
    if member == request.user:
        messages.error(request, "You cannot deactivate yourself.")
    elif member.is_active:
        services.staff_deactivate(admin=request.user, user=member)
        messages.success(request, f"{member.display_name} is deactivated and signed out everywhere.")
    return redirect("portal:staff_detail", pk=member.pk)


@capability_required(Capability.MANAGE_STAFF)
@require_POST
def staff_reactivate(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    services.staff_reactivate(admin=request.user, user=member)
    messages.success(request, f"{member.display_name} can sign in again.")
    return redirect("portal:staff_detail", pk=member.pk)


@capability_required(Capability.MANAGE_STAFF)
def staff_reset_mfa(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    if request.method != "POST":
        consequence = (
            "Their authenticator, backup codes and passkeys stop working and they are signed out everywhere; at their "
            "next sign-in, after their password, they set up an authenticator again."
        )
        return _confirm_page(
            request, member, action="portal:staff_reset_mfa", button="Reset two-step sign-in", consequence=consequence
        )
    services.staff_reset_mfa(admin=request.user, user=member)
    messages.success(request, f"{member.display_name} must enrol an authenticator at their next sign-in.")
    return redirect("portal:staff_detail", pk=member.pk)


@capability_required(Capability.MANAGE_STAFF)
@require_POST
def staff_invite_resend(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    if services.staff_invite_pending(member):
        token = services.staff_invite_renew(admin=request.user, user=member)
        link = request.build_absolute_uri(reverse("portal:accept_invite", args=[token]))
        services.staff_invite_email(user=member, link=link)
        return render(request, "portal/staff_invited.html", {"invitee": member, "link": link})
    return redirect("portal:staff_detail", pk=member.pk)


@capability_required(Capability.MANAGE_STAFF)
def staff_invite_withdraw(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    if not services.staff_invite_pending(member):
        return redirect("portal:staff_detail", pk=member.pk)
    if request.method != "POST":
        consequence = "The link in their invitation stops working, and the account waiting for it is deactivated."
        button = "Withdraw the invitation"
        return _confirm_page(
            request, member, action="portal:staff_invite_withdraw", button=button, consequence=consequence
        )
    services.staff_invite_withdraw(admin=request.user, user=member)
    messages.success(request, f"The invitation to {member.display_name} is withdrawn: its link no longer works.")
    return redirect("portal:staff_detail", pk=member.pk)


@capability_required(Capability.MANAGE_STAFF)
@require_POST
def staff_reset_password(request: PortalRequest, pk: int) -> HttpResponse:
    member = get_staff_or_404(request.user, pk)
    if member == request.user:
        messages.error(request, "Change your own password under Your account.")
        return redirect("portal:staff_detail", pk=member.pk)
    token = services.staff_reset_password(admin=request.user, user=member)
    link = request.build_absolute_uri(reverse("portal:accept_invite", args=[token]))
    return render(request, "portal/staff_password_reset.html", {"member": member, "link": link})


@capability_required(Capability.MANAGE_STAFF)
def access_review(request: PortalRequest) -> HttpResponse:
    staff = User.objects.in_practice(request.user.tenant).prefetch_related("client_groups")
    cutoff = timezone.now() - timedelta(days=settings.STAFF_UNUSED_DAYS)
    rows = [
        {"member": m, "caps": ROLE_CAPABILITIES[Role(m.role)] if m.is_active else frozenset(), "unused": m.is_unused()}
        for m in staff
    ]
    context = {
        "rows": rows,
        "capabilities": list(Capability),
        "labels": CAPABILITY_LABELS,
        "unused_days": settings.STAFF_UNUSED_DAYS,
        "cutoff": cutoff,
        "unused_count": sum(1 for m in staff if m.is_active and m.is_unused()),
    }
    return render(request, "portal/access_review.html", context)


@capability_required(Capability.VIEW_AUDIT)
def audit_search(request: PortalRequest) -> HttpResponse:
    form = AuditSearchForm(request.GET or None)
    events = AuditEvent.objects.for_practice(request.user.tenant).select_related("actor")
    if request.user.restricted_to_groups:
        # Their own actions, and events about what their groups let them see: not the whole practice's trail.
        scope = restricted_visible(request.user, type_field="object_type", id_field="object_id")
        events = events.filter(Q(actor=request.user) | scope)
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            by_words = Q(action__in=actions_matching(data["q"]))
            events = events.filter(Q(action__icontains=data["q"]) | by_words | Q(object_repr__icontains=data["q"]))
        if data["actor"]:
            events = events.filter(actor_label__iexact=data["actor"])
        if data["date_from"]:
            events = events.filter(created_at__date__gte=data["date_from"])
        if data["date_to"]:
            events = events.filter(created_at__date__lte=data["date_to"])
    return render(request, "portal/audit_search.html", {"form": form, "events": events[:200]})


def healthz(request: PortalRequest) -> HttpResponse:
    """For load balancers and docker-compose: the process is up and can reach its database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")
