from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clients.tfn import decrypt_tfn, encrypt_tfn, looks_like_tfn, mask_tfn, tfn_lookup_hash
from clients.validation import clean_tfn
from portal.models import Practice, User
from portal.sealing import SealedField


class ClientKind(models.TextChoices):
    INDIVIDUAL = "individual", "Individual"
    COMPANY = "company", "Company"
    TRUST = "trust", "Trust"
    PARTNERSHIP = "partnership", "Partnership"
    SUPER_FUND = "super_fund", "Super fund"
    OTHER = "other", "Other"


class ClientQuerySet(models.QuerySet["Client"]):
    def visible_to(self, user: User) -> ClientQuerySet:
        """The one scoping rule for clients: the user's practice, narrowed to their groups if restricted."""
        qs = self.filter(practice_id=user.practice_id)
        if user.practice_id is None:
            return qs.none()
        if user.restricted_to_groups:
            membership = ClientGroup.clients.through.objects.filter(client_id=OuterRef("pk"), clientgroup__staff=user)
            qs = qs.filter(Exists(membership))
        return qs

    def search(self, query: str) -> ClientQuerySet:
        """A TFN or ABN finds by exact identifier; anything else matches part of the name."""
        query = query.strip()
        if not query:
            return self
        digits = query.replace(" ", "").replace("-", "")
        if looks_like_tfn(digits):
            try:
                return self.filter(tfn_hash=tfn_lookup_hash(clean_tfn(digits)))
            except Exception:  # noqa: BLE001 - not a valid TFN, so it cannot match one
                return self.none()
        if digits.isdigit() and len(digits) == 11:
            return self.filter(Q(abn=digits) | Q(wpn=digits))
        return self.filter(sort_name__contains=query.lower())

    def after(self, sort_name: str, pk: int) -> ClientQuerySet:
        # The redundant `sort_name >= ...` gives the (practice, sort_name, id) index a start key, so a page deep
        # in the register is read from where it begins instead of scanning every client before it.
        return self.filter(sort_name__gte=sort_name).filter(
            Q(sort_name__gt=sort_name) | Q(sort_name=sort_name, pk__gt=pk)
        )


class Client(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="clients")
    kind = models.CharField(max_length=20, choices=ClientKind.choices, default=ClientKind.INDIVIDUAL)
    family_name = models.CharField(max_length=100, blank=True)
    given_names = models.CharField(max_length=150, blank=True)
    organisation_name = models.CharField(max_length=200, blank=True)
    display_name = models.CharField(max_length=250)
    # Lower-cased display name: the keyset-pagination order and the target of name search.
    sort_name = models.CharField(max_length=250)
    date_of_birth = models.DateField(null=True, blank=True)
    tfn_ciphertext = SealedField(blank=True)
    tfn_hash = models.CharField(max_length=64, blank=True, db_index=True)
    tfn_last3 = models.CharField(max_length=3, blank=True)
    abn = models.CharField("ABN", max_length=11, blank=True, db_index=True)
    wpn = models.CharField("WPN", max_length=11, blank=True, db_index=True)  # ABN search matches ABN or WPN
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    objects = ClientQuerySet.as_manager()

    class Meta:
        indexes = [
            # The list's order and keyset, covering every column a list row shows: a page or a name search reads
            # the index alone (PostgreSQL; SQLite ignores `include`). A name search for "smi" over 50,000 clients
            # took 3.1 ms of the database reading table rows to filter, 0.36 ms from the index.
            models.Index(
                fields=["practice", "sort_name", "id"],
                include=["display_name", "kind", "tfn_last3", "abn"],
                name="client_list_covering",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "tfn_hash"], condition=~Q(tfn_hash=""), name="client_unique_tfn_per_practice"
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.set_names()
        super().save(*args, **kwargs)

    @property
    def is_individual(self) -> bool:
        return self.kind == ClientKind.INDIVIDUAL

    def set_names(self) -> None:
        if self.is_individual:
            self.display_name = f"{self.family_name.upper()}, {self.given_names}".strip(", ")
        else:
            self.display_name = self.organisation_name
        self.sort_name = self.display_name.lower()

    def set_tfn(self, tfn: str) -> None:
        if tfn:
            self.tfn_ciphertext = encrypt_tfn(tfn)
            self.tfn_hash = tfn_lookup_hash(tfn)
            self.tfn_last3 = tfn[-3:]
        else:
            self.tfn_ciphertext = self.tfn_hash = self.tfn_last3 = ""

    @property
    def masked_tfn(self) -> str:
        return mask_tfn(self.tfn_last3)

    def reveal_tfn(self) -> str:
        """The full TFN. Call only through clients.services.client_reveal_tfn, which checks and audits."""
        return decrypt_tfn(self.tfn_ciphertext) if self.tfn_ciphertext else ""


def get_client_or_404(user: User, pk: int) -> Client:
    return get_object_or_404(Client.objects.visible_to(user), pk=pk)


class AccountKind(models.TextChoices):
    INCOME_TAX = "income_tax", "Income tax"
    ACTIVITY_STATEMENT = "activity_statement", "Activity statement"
    FBT = "fbt", "Fringe benefits tax"


class AccountRoleKind(models.TextChoices):
    GST = "GST", "Goods and services tax"
    PAYGW = "PAYGW", "PAYG withholding"
    PAYGI = "PAYGI", "PAYG instalments"
    FBTI = "FBTI", "FBT instalments"
    FTC = "FTC", "Fuel tax credits"
    WET = "WET", "Wine equalisation tax"
    LCT = "LCT", "Luxury car tax"


class ClientAccount(models.Model):
    """An ATO account of the client; activity statement accounts are the ABN plus a 3-digit branch."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="accounts")
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    branch = models.CharField(max_length=3, blank=True)

    class Meta:
        ordering = ["kind", "branch"]
        constraints = [models.UniqueConstraint(fields=["client", "kind", "branch"], name="account_unique")]

    def __str__(self) -> str:
        if self.kind == AccountKind.ACTIVITY_STATEMENT:
            return f"Activity statement {self.client.abn} {self.branch}"
        return self.get_kind_display()


class AccountRole(models.Model):
    account = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=8, choices=AccountRoleKind.choices)

    class Meta:
        ordering = ["role"]
        constraints = [models.UniqueConstraint(fields=["account", "role"], name="account_role_unique")]

    def __str__(self) -> str:
        return self.get_role_display()


class ClientGroupQuerySet(models.QuerySet["ClientGroup"]):
    def visible_to(self, user: User) -> ClientGroupQuerySet:
        qs = self.filter(practice_id=user.practice_id)
        if user.practice_id is None:
            return qs.none()
        return qs.filter(staff=user) if user.restricted_to_groups else qs

    def choices_for(self, user: User) -> list[tuple[int, str]]:
        """(id, name) of the groups visible_to(user), in name order: the client list's group filter, on every full
        page. The same rule as visible_to() in one statement of raw SQL, because the ORM's building and compiling of
        that two-column query cost ~1.1M instructions against ~0.2M here, a tenth of the client list's request
        (callgrind); tests/test_client_list_queries.py checks that both give the same groups for every kind of user."""
        if user.practice_id is None:
            return []
        connection = connections[self.db]
        quote = connection.ops.quote_name
        groups, staff = quote(ClientGroup._meta.db_table), quote(ClientGroup.staff.through._meta.db_table)
        sql = f"SELECT g.id, g.name FROM {groups} g WHERE g.practice_id = %s"  # noqa: S608 - table names, quoted
        params: list[int] = [user.practice_id]
        if user.restricted_to_groups:
            sql += f" AND EXISTS (SELECT 1 FROM {staff} s WHERE s.clientgroup_id = g.id AND s.user_id = %s)"  # noqa: S608
            params.append(user.pk)
        with connection.cursor() as cursor:
            cursor.execute(sql + " ORDER BY g.name", params)
            return [(int(pk), name) for pk, name in cursor.fetchall()]

    def names_by_client(self, client_ids: Iterable[int]) -> dict[int, list[str]]:
        """{client id: the names of its groups, in name order} for clients already read through
        Client.objects.visible_to(); one query, whatever the number of clients (what prefetch_related("groups")
        read, without building a group object per row).

        Raw SQL with the ids written into it, because the ORM's `client_id__in=ids` spent ~45k instructions per id
        (Django prepares each value, psycopg binds each parameter): ~4M for a page of 51 clients against ~0.4M
        here, a fifth of the client list's request (callgrind). Each id goes through int(), so nothing but digits
        reaches the SQL text. (A `g.practice_id = ...` condition here led PostgreSQL to walk every member of every
        group, 20x slower.)"""
        ids = ",".join(str(int(pk)) for pk in client_ids)
        if not ids:
            return {}
        connection = connections[self.db]
        quote = connection.ops.quote_name
        members, groups = quote(ClientGroup.clients.through._meta.db_table), quote(ClientGroup._meta.db_table)
        sql = (
            f"SELECT m.client_id, g.name FROM {members} m JOIN {groups} g ON g.id = m.clientgroup_id"  # noqa: S608
            f" WHERE m.client_id IN ({ids}) ORDER BY g.name"
        )
        names: dict[int, list[str]] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql)
            for client_id, name in cursor.fetchall():
                names.setdefault(client_id, []).append(name)
        return names


class ClientGroup(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="client_groups")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    clients = models.ManyToManyField(Client, related_name="groups", blank=True)
    # Staff restricted to groups see the clients of the groups they are listed in.
    staff = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="client_groups", blank=True)

    objects = ClientGroupQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["practice", "name"], name="group_unique_name")]

    def __str__(self) -> str:
        return self.name


def get_group_or_404(user: User, pk: int) -> ClientGroup:
    return get_object_or_404(ClientGroup.objects.visible_to(user), pk=pk)


STALL_AFTER = timedelta(minutes=2)
# An upload left unconfirmed, or a failed import left unresumed, this long loses its file (and its TFNs).
ABANDONED_AFTER = timedelta(days=7)


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Awaiting confirmation"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    DONE = "done", "Finished"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Abandoned (file deleted)"


class ImportJobQuerySet(models.QuerySet["ImportJob"]):
    def visible_to(self, user: User) -> ImportJobQuerySet:
        """The practice's imports; staff restricted to groups see only the imports they uploaded themselves. An
        import belongs to no group (each row names its own, or none), and its preview and errors show rows of
        any group, so whose upload it is is the only rule that shows them nothing of another group's clients."""
        if user.practice_id is None:
            return self.none()
        qs = self.filter(practice_id=user.practice_id)
        return qs.filter(created_by=user) if user.restricted_to_groups else qs

    def abandoned(self, now: datetime | None = None) -> ImportJobQuerySet:
        """Still holding their file, and untouched for ABANDONED_AFTER while waiting for someone: unconfirmed
        uploads and failed runs. (Queued and running imports are the stall sweeper's; it resumes them.)"""
        cutoff = (now or timezone.now()) - ABANDONED_AFTER
        last_touched = Coalesce("heartbeat_at", "created_at")
        return (
            self.filter(status__in=[ImportStatus.UPLOADED, ImportStatus.FAILED])
            .exclude(content="")
            .alias(last_touched=last_touched)
            .filter(last_touched__lt=cutoff)
        )


class ImportJob(models.Model):
    """One CSV upload. The file is kept, sealed (it holds full TFNs), so that the import can resume from
    `next_row` after a worker dies: rows before it were committed together with that counter, so no row is
    imported twice. It is deleted when the import finishes, and from an abandoned import after ABANDONED_AFTER."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    filename = models.CharField(max_length=200)
    content = SealedField(blank=True)  # the uploaded CSV, sealed; "" once deleted
    status = models.CharField(max_length=12, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)  # rows that fail their own checks, counted at upload
    next_row = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True)
    # The run that owns the job. A resumed run takes a new token, and a superseded runner that wakes up finds
    # its token gone at its next chunk and stops without writing.
    run_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ImportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import of {self.filename}"

    @property
    def importable_rows(self) -> int:
        return self.total_rows - self.invalid_rows

    @property
    def percent(self) -> int:
        return int(100 * self.next_row / self.total_rows) if self.total_rows else 0

    @property
    def is_active(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING) and not self.is_stalled

    @property
    def is_stalled(self) -> bool:
        """Queued or running with no sign of life for STALL_AFTER: its worker died or its job was lost."""
        last = self.heartbeat_at or self.created_at
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING) and last < timezone.now() - STALL_AFTER


def get_import_or_404(user: User, pk: int) -> ImportJob:
    # The file (sealed, up to tens of megabytes) is read only where it is used, the preview: the progress
    # fragment asks for the job every second while it runs.
    return get_object_or_404(ImportJob.objects.visible_to(user).defer("content"), pk=pk)


class ImportRowError(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField()
    field = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=300)

    class Meta:
        ordering = ["row_number", "id"]

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.message}"
