from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.text import slugify
from ipware.ip import get_client_ip
from stdnum.au import abn as abn_check

from portal.capabilities import ROLE_CAPABILITIES, Capability, Role

if TYPE_CHECKING:
    from django.http import HttpRequest


def validate_abn(value: str) -> None:
    if not abn_check.is_valid(value):
        raise ValidationError("This is not a valid ABN: it must be 11 digits and pass the ABN check.")


class Practice(models.Model):
    """A tax or BAS agent practice: the tenant. Every other object belongs to exactly one practice."""

    name = models.CharField(max_length=200)
    abn = models.CharField("ABN", max_length=11, validators=[validate_abn])
    agent_number = models.CharField("Registered agent number", max_length=12, blank=True)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=30, blank=True)
    # Typed at sign-in beside the username: usernames are unique only within a practice, so that choosing one never
    # tells a practice which names another practice uses. Not a secret (it is on every invitation).
    code = models.SlugField("Practice code", max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.code:
            self.code = practice_code_for(self.name)
        super().save(*args, **kwargs)


def practice_code_for(name: str) -> str:
    """A sign-in code from the practice's name ("Harbour Tax" -> "harbour-tax"), numbered if another has it."""
    base = slugify(name)[:34].strip("-") or "practice"
    code, n = base, 1
    while Practice.objects.filter(code=code).exists():
        n += 1
        code = f"{base}-{n}"
    return code


class StaffQuerySet(models.QuerySet["User"]):
    def in_practice(self, practice: Practice) -> StaffQuerySet:
        return self.filter(practice=practice)

    def unused_since(self, cutoff: Any) -> StaffQuerySet:
        return self.filter(models.Q(last_login__lt=cutoff) | models.Q(last_login__isnull=True, date_joined__lt=cutoff))


class StaffManager(UserManager["User"]):
    def get_queryset(self) -> StaffQuerySet:
        return StaffQuerySet(self.model, using=self._db)

    def in_practice(self, practice: Practice) -> StaffQuerySet:
        return self.get_queryset().in_practice(practice)

    def for_sign_in(self, *, practice_code: str, username: str) -> User | None:
        """The one account a practice code and username name (both compared without case), or None."""
        return (
            self.get_queryset()
            .filter(practice__code__iexact=practice_code.strip(), username__iexact=username.strip())
            .select_related("practice")
            .first()
        )


class User(AbstractUser):
    """A member of a practice's staff. Access is granted by role, which maps to named capabilities."""

    # Unique within the practice only (Meta.constraints), not across practices: see Practice.code.
    username = models.CharField(
        "username",
        max_length=150,
        validators=[AbstractUser.username_validator],
        help_text="150 characters or fewer. Letters, digits and @/./+/-/_ only.",
    )
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, null=True, related_name="staff")
    role = models.CharField(max_length=20, choices=[(r.value, r.label) for r in Role], default=Role.READ_ONLY)
    # When set, the person sees only clients in the groups they are assigned to (clients.ClientGroup.staff).
    restricted_to_groups = models.BooleanField(default=False)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Part of the session hash: raising it ends every session the person holds, at once (deactivation, MFA reset).
    session_epoch = models.PositiveIntegerField(default=0)
    invite_token_hash = models.CharField(max_length=64, blank=True)
    invite_expires_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[StaffManager] = StaffManager()  # type: ignore[assignment]

    class Meta:
        ordering = ["last_name", "first_name", "username"]
        constraints = [
            models.UniqueConstraint(Lower("username"), "practice", name="username_unique_in_practice"),
            # Accounts of no practice (none can sign in to the portal) count as one practice of their own.
            models.UniqueConstraint(
                Lower("username"), condition=models.Q(practice__isnull=True), name="username_unique_without_practice"
            ),
        ]

    if TYPE_CHECKING:

        def is_verified(self) -> bool: ...  # attached to each request's user by django_otp's OTPMiddleware

    def get_session_auth_hash(self) -> str:
        from django.utils.crypto import salted_hmac

        return salted_hmac(
            "portal.User.session", f"{self.password}:{self.session_epoch}", algorithm="sha256"
        ).hexdigest()

    def end_sessions(self) -> None:
        """Every session this person holds fails its next request (Django compares the session hash)."""
        User.objects.filter(pk=self.pk).update(session_epoch=models.F("session_epoch") + 1)

    @property
    def tenant(self) -> Practice:
        """The practice this person acts for. Views behind a capability check always have one."""
        if self.practice is None:
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("This account belongs to no practice.")
        return self.practice

    @property
    def capabilities(self) -> frozenset[Capability]:
        if not self.is_active or self.practice_id is None:
            return frozenset()
        return ROLE_CAPABILITIES[Role(self.role)]

    def has_capability(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @property
    def role_label(self) -> str:
        return Role(self.role).label

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    def is_unused(self, now: Any = None) -> bool:
        cutoff = (now or timezone.now()) - timedelta(days=settings.STAFF_UNUSED_DAYS)
        return (self.last_login or self.date_joined) < cutoff


def get_staff_or_404(user: User, pk: int) -> User:
    """The one way to look up a staff member: only within the acting user's practice."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(User.objects.in_practice(user.tenant), pk=pk)  # type: ignore[arg-type]


class AppendOnlyQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("The audit trail is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit trail is append-only.")

    def for_practice(self, practice: Practice) -> AppendOnlyQuerySet:
        return self.filter(practice=practice)


class AuditChainHead(models.Model):
    """The tip of one hash chain (one per practice, key 0 for events outside any practice). Locking this row
    serialises appends to the chain without locking the whole audit table."""

    chain = models.BigIntegerField(primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit chain {self.chain} at {self.last_seq}"


class AuditEvent(models.Model):
    """One append-only, hash-chained record of who did what to which object, when and from where."""

    # Every ATO message adds an event, so each index here is paid on every message: only the ones queries use
    # (the chain's unique (chain, seq) also serves reads by chain; see Meta).
    chain = models.BigIntegerField()
    seq = models.BigIntegerField()
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, null=True, related_name="+", db_index=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # Which of settings.AUDIT_CHAIN_KEYS chained this event; 0 for events chained before the chain was keyed.
    key_version = models.PositiveSmallIntegerField(default=0)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique")]
        # The audit log page: one practice's events, newest first (also serves the practice foreign key).
        indexes = [models.Index(fields=["practice", "-created_at", "-id"], name="audit_practice_recent")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit trail is append-only.")

    def canonical(self) -> bytes:
        """The fields the hash covers, in a stable encoding that does not depend on the database."""
        body = {
            "chain": self.chain,
            "seq": self.seq,
            "practice": self.practice_id,
            "actor": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_repr": self.object_repr,
            "ip": self.ip_address,
            "user_agent": self.user_agent,
            "details": self.details,
            "created_at": self.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "prev": self.prev_hash,
        }
        if self.key_version:
            body["key_version"] = self.key_version
        return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()

    def compute_hash(self) -> str:
        """HMAC-SHA256 under the event's key version, so a chain cannot be recomputed by someone who holds only the
        database. Version 0 (events from before keying) is plain SHA-256. Raises KeyError for a version whose key
        is no longer configured."""
        if self.key_version == 0:
            return hashlib.sha256(self.canonical()).hexdigest()
        key = settings.AUDIT_CHAIN_KEYS[self.key_version]
        return hmac.new(key, self.canonical(), hashlib.sha256).hexdigest()


def client_ip(request: HttpRequest | None) -> str | None:
    """The address of whoever sent the request, seen through settings.TRUSTED_PROXY_COUNT proxies of our own.

    django-ipware reads X-Forwarded-For and nothing else: of the other headers it would try (X-Real-IP and the
    like) none is written by our proxy, so any of them would be the client's word. A chain shorter than the proxies
    we trust was not written by them, and the connection's own address is taken instead."""
    if request is None:
        return None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        # Each proxy appends the address it was reached from; ipware's proxy_count counts the proxies listed before
        # the last one (which is REMOTE_ADDR), so the client is the entry `proxies` from the right.
        forwarded, _routable = get_client_ip(
            request,
            proxy_order="left-most",
            proxy_count=proxies - 1,
            request_header_order=["HTTP_X_FORWARDED_FOR"],
            strict=False,
        )
        if forwarded is not None:
            return forwarded
    return request.META.get("REMOTE_ADDR") or None
