"""Workflows over practices, staff and their second factors. Each writes its change and its audit record in
one transaction."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth import authenticate, login, update_session_auth_hash
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from portal.audit import audit_record
from portal.capabilities import Role
from portal.models import Practice, User, client_ip

if TYPE_CHECKING:
    from portal.http import PortalRequest

INVITE_LIFETIME = timedelta(days=7)
PASSWORD_RESET_LIFETIME = timedelta(days=1)
BACKUP_CODE_COUNT = 10


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _address_failures_key(ip: str) -> str:
    return f"login-failures-from-{ip}"


def login_address_paused(*, ip: str | None) -> bool:
    """Whether sign-in from this address is paused: LOGIN_ADDRESS_FAILURE_LIMIT failures, across any usernames,
    within the cool-off. Axes locks one username at one address; this catches one address trying many usernames."""
    if ip is None:
        return False
    return int(cache.get(_address_failures_key(ip), 0)) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT


def _address_failure_count(ip: str | None) -> None:
    if ip is None:
        return
    key, timeout = _address_failures_key(ip), int(settings.AXES_COOLOFF_TIME.total_seconds())
    # add() then incr(): the first failure starts the window, later ones count within it without extending it.
    cache.add(key, 0, timeout)
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls: this failure starts a new window
        cache.set(key, 1, timeout)


def login_failed_record(*, request: PortalRequest, practice_code: str, username: str) -> None:
    """Filed under the named account's practice, if there is one, so its admins see attempts on their staff."""
    _address_failure_count(client_ip(request))
    target = User.objects.for_sign_in(practice_code=practice_code, username=username)
    locked = getattr(request, "axes_locked_out", False)
    with transaction.atomic():
        audit_record(
            "login.locked_out" if locked else "login.failed",
            request=request,
            practice=target.practice if target is not None else None,
            target=target,
            details={"practice_code": practice_code[:40], "username": username[:150]},
        )


def staff_invite(
    *, admin: User, username: str, first_name: str, last_name: str, email: str, role: Role
) -> tuple[User, str]:
    """Create a staff account with no usable password and return it with a one-time invitation token. The
    token is stored only as a hash: whoever holds the link sets the password, then enrols MFA."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic(durable=True):
        user = User(
            username=username,
            first_name=first_name,
            last_name=last_name,
            email=email,
            role=role,
            practice=admin.practice,
            invite_token_hash=_token_hash(token),
            invite_expires_at=timezone.now() + INVITE_LIFETIME,
        )
        user.set_unusable_password()
        user.save()
        audit_record("staff.invited", actor=admin, target=user, details={"role": role.value})
    return user, token


def staff_for_invite(token: str) -> User | None:
    user = User.objects.filter(invite_token_hash=_token_hash(token), is_active=True).first()
    if user is None or user.invite_expires_at is None or user.invite_expires_at < timezone.now():
        return None
    return user


def staff_accept_invite(*, request: PortalRequest, user: User, password: str) -> None:
    # This one and the sign-in steps below take the request: they sign the person in, which is the session's.
    with transaction.atomic(durable=True):
        user.set_password(password)
        user.invite_token_hash = ""
        user.invite_expires_at = None
        user.save(update_fields=["password", "invite_token_hash", "invite_expires_at"])
        audit_record("staff.invite_accepted", request=request, actor=user, target=user)
    login(request, user, backend="portal.backends.PracticeBackend")


def staff_change_role(*, admin: User, user: User, role: Role) -> None:
    with transaction.atomic(durable=True):
        old = user.role
        user.role = role
        user.save(update_fields=["role"])
        audit_record("staff.role_changed", actor=admin, target=user, details={"from": old, "to": role.value})


def staff_deactivate(*, admin: User, user: User) -> None:
    """A leaver loses access at once: an inactive user fails authentication on the very next request of every
    session they hold (Django's ModelBackend refuses inactive users when it loads the session's user)."""
    with transaction.atomic(durable=True):
        user.is_active = False
        user.deactivated_at = timezone.now()
        user.invite_token_hash = ""
        user.save(update_fields=["is_active", "deactivated_at", "invite_token_hash"])
        user.end_sessions()
        audit_record("staff.deactivated", actor=admin, target=user)


def staff_reactivate(*, admin: User, user: User) -> None:
    with transaction.atomic(durable=True):
        user.is_active = True
        user.deactivated_at = None
        user.save(update_fields=["is_active", "deactivated_at"])
        audit_record("staff.reactivated", actor=admin, target=user)


def staff_invite_email(*, user: User, link: str) -> None:
    """The invitation goes by email (settings.EMAIL_BACKEND: the console in development), so that the admin need
    not carry the link to the person; the admin's page shows it too, for a person whose mail is slow."""
    send_mail(
        subject=f"You are invited to {user.tenant.name}'s Practice Portal",
        message=(
            f"Hello {user.first_name or user.username},\n\n{user.tenant.name} has made you an account in its "
            f"Practice Portal, with the username {user.username}.\n\nChoose your password here (the link works "
            f"once, for {INVITE_LIFETIME.days} days):\n{link}\n\nThen you set up an authenticator app on your "
            "phone for the second step of signing in.\n\nIf you did not expect this, ignore this email."
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def staff_invite_pending(user: User) -> bool:
    """An invitation not yet accepted (or withdrawn, then the account reactivated): no password chosen yet, never
    signed in."""
    return user.is_active and user.last_login is None and not user.has_usable_password()


def staff_invite_renew(*, admin: User, user: User) -> str:
    """A fresh link, valid for INVITE_LIFETIME again; the earlier link stops working (only the new hash is kept)."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic(durable=True):
        user.invite_token_hash = _token_hash(token)
        user.invite_expires_at = timezone.now() + INVITE_LIFETIME
        user.save(update_fields=["invite_token_hash", "invite_expires_at"])
        audit_record("staff.invite_resent", actor=admin, target=user)
    return token


def staff_invite_withdraw(*, admin: User, user: User) -> None:
    """The link stops working at once, and the account that was waiting for it is deactivated (it never had a
    password); an admin can reactivate it and invite again."""
    with transaction.atomic(durable=True):
        user.invite_token_hash = ""
        user.invite_expires_at = None
        user.is_active = False
        user.deactivated_at = timezone.now()
        user.save(update_fields=["invite_token_hash", "invite_expires_at", "is_active", "deactivated_at"])
        audit_record("staff.invite_withdrawn", actor=admin, target=user)


def staff_reset_password(*, admin: User, user: User) -> str:
    """For a forgotten password: the old one stops working, every session ends, and the admin hands over a one-time
    link (as an invitation's) where the person chooses a new one. Their second factor stays as it is."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic(durable=True):
        user.set_unusable_password()
        user.invite_token_hash = _token_hash(token)
        user.invite_expires_at = timezone.now() + PASSWORD_RESET_LIFETIME
        user.save(update_fields=["password", "invite_token_hash", "invite_expires_at"])
        user.end_sessions()
        audit_record("staff.password_reset", actor=admin, target=user)
    return token


def staff_password_confirmed(*, request: PortalRequest, password: str) -> bool:
    """The signed-in person typed their password again. Through authenticate(), so that wrong guesses count
    towards the same lockout as at sign-in."""
    user = request.user
    practice = user.tenant.code
    return authenticate(request, practice=practice, username=user.get_username(), password=password) == user


def staff_change_password(*, request: PortalRequest, password: str) -> None:
    """Every other session of the person ends; this one goes on (its hash is renewed)."""
    user = request.user
    with transaction.atomic(durable=True):
        user.set_password(password)
        user.save(update_fields=["password"])
        user.end_sessions()
        user.refresh_from_db(fields=["session_epoch"])
        audit_record("staff.password_changed", request=request, target=user)
    update_session_auth_hash(request, user)


def staff_reset_mfa(*, admin: User, user: User) -> None:
    """For a lost phone: removes every second factor, passkeys too, and ends every session, so that whoever has the
    phone (and perhaps a signed-in browser) cannot enrol an authenticator of their own: the next sign-in needs the
    password."""
    with transaction.atomic(durable=True):
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        # The count of the credentials themselves: delete()'s total includes their attestations.
        _, deleted = WebAuthnCredential.objects.filter(user=user).delete()
        passkeys = deleted.get(WebAuthnCredential._meta.label, 0)
        user.end_sessions()
        audit_record("staff.mfa_reset", actor=admin, target=user, details={"passkeys_removed": passkeys})


def mfa_enrolment_device(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def mfa_typed_key(device: TOTPDevice) -> str:
    """The key to type into an authenticator app by hand: base32 (RFC 4648, as in the QR code's otpauth URI, which
    is what the apps expect), in groups of four for reading."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def mfa_qr_svg(device: TOTPDevice) -> str:
    """The provisioning URI as an inline SVG, so no image or script comes from anywhere but this server."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def mfa_confirm_enrolment(*, request: PortalRequest, device: TOTPDevice, token: str) -> list[str] | None:
    """Confirm the authenticator with a first code; returns fresh backup codes, or None if the code is wrong."""
    if not device.verify_token(token):
        audit_record("mfa.enrolment_failed", request=request)
        return None
    with transaction.atomic(durable=True):
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = mfa_replace_backup_codes(user=device.user)
        audit_record("mfa.enrolled", request=request, target=device.user)
        audit_record("login.succeeded", request=request, details={"factor": "totp"})
    otp_login(request, device)
    return codes


def mfa_replace_backup_codes(*, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=code) for code in codes])
    return codes


def mfa_verify(*, request: PortalRequest, token: str) -> str | None:
    """Check a TOTP or backup code. Returns None on success, or what to tell the person.

    The code's shape picks the one device to try: six digits is the authenticator, anything else a backup code.
    (django_otp.match_token would try the authenticator with every backup code too, counting each as a wrong
    TOTP code, so a person without their phone would be throttled for longer each time.)"""
    user = request.user
    token = token.replace(" ", "")
    device: TOTPDevice | StaticDevice | None
    if token.isdigit() and len(token) == 6:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    else:
        device = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        audit_record("login.mfa_failed", request=request)
        return "That code is not right. Use the current code from your app, or a backup code."
    allowed, info = device.verify_is_allowed()
    if not allowed and info and "locked_until" in info:
        wait = max(1, int((info["locked_until"] - timezone.now()).total_seconds()) + 1)
        return f"Too many wrong codes. Wait {wait} second{'s' if wait != 1 else ''}, then try the next code."
    if not device.verify_token(token):
        audit_record("login.mfa_failed", request=request)
        return "That code is not right. Use the current code from your app, or a backup code."
    otp_login(request, device)
    factor = "backup_code" if isinstance(device, StaticDevice) else "totp"
    audit_record("login.succeeded", request=request, details={"factor": factor})
    return None


def passkey_remove(*, user: User, pk: int) -> bool:
    """Removes one of the person's own passkeys; False if they have none of that id. Their authenticator app stays,
    so this never leaves them without a second factor."""
    with transaction.atomic(durable=True):
        _, deleted = WebAuthnCredential.objects.filter(user=user, pk=pk).delete()
        removed = deleted.get(WebAuthnCredential._meta.label, 0)
        if removed:
            audit_record("mfa.passkey_removed", actor=user, target=user, details={"passkey": pk})
    return bool(removed)


def practice_create(*, name: str, abn: str, agent_number: str = "", contact_email: str = "") -> Practice:
    with transaction.atomic():
        practice = Practice.objects.create(name=name, abn=abn, agent_number=agent_number, contact_email=contact_email)
        audit_record("practice.created", practice=practice, target=practice)
    return practice
