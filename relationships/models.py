"""Client-agent relationships as the practice knows them, the questions put to the ATO about them, and their
history.

``Link`` is what the portal believes the ATO holds (a client, account or role-level link, current or ended);
``AtoRequest`` is one search, validate, submit, validate-remove or remove sent for a person, which a page waits on
and which keeps the ATO's answer; ``LinkChange`` is the history a client's page shows, with who made each change.
Accounts and roles are kept in the ATO's codes (ITX, AS + branch, FBT; GST, PAYGW, ...), as the ATO lists them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import get_object_or_404

from ato_gateway import api
from ato_gateway.api import Item, QuestionState, Reply
from clients.models import Client
from portal.models import Practice, User
from portal.sealing import SealedField, seal, unseal

ACCOUNT_NAMES = {"ITX": "Income tax", "AS": "Activity statement", "FBT": "Fringe benefits tax"}
ROLE_NAMES = {
    "GST": "GST",
    "PAYGW": "PAYG withholding",
    "PAYGI": "PAYG instalments",
    "FBTI": "FBT instalments",
    "FTC": "Fuel tax credits",
    "WET": "Wine equalisation tax",
    "LCT": "Luxury car tax",
}


class Level(models.TextChoices):
    CLIENT = "CLIENT", "Client"
    ACCOUNT = "ACCOUNT", "Account"
    ROLE = "ROLE", "Role"


def describe_level(level: str, account_kind: str = "", branch: str = "", role: str = "") -> str:
    """Plain words for a link's level: "the whole client", "activity statement account 001", "PAYG withholding
    on activity statement account 001"."""
    account = ACCOUNT_NAMES.get(account_kind, account_kind).lower()
    if branch:
        account = f"{account} account {branch}"
    elif account:
        account = f"{account} account"
    if level == Level.CLIENT:
        return "the whole client"
    if level == Level.ROLE:
        return f"{ROLE_NAMES.get(role, role)} on the {account}" if account else ROLE_NAMES.get(role, role)
    return f"the {account}"


class LinkQuerySet(models.QuerySet["Link"]):
    def for_practice(self, practice: Practice) -> LinkQuerySet:
        return self.filter(practice=practice)

    def current(self) -> LinkQuerySet:
        return self.filter(ended_on__isnull=True)


class Link(models.Model):
    """A client-agent link as the portal believes the ATO holds it."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="ato_links")
    level = models.CharField(max_length=8, choices=Level.choices)
    account_kind = models.CharField(max_length=3, blank=True)  # ITX, AS, FBT; blank at client level
    branch = models.CharField(max_length=3, blank=True)
    role = models.CharField(max_length=5, blank=True)
    started_on = models.DateField(null=True, blank=True)
    ended_on = models.DateField(null=True, blank=True)
    end_reason = models.CharField(max_length=12, blank=True)  # REMOVED, SUPERSEDED, CLIENT (as the ATO says)
    confirmed_at = models.DateTimeField(null=True, blank=True)  # last seen in the ATO's list
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LinkQuerySet.as_manager()

    class Meta:
        ordering = ["client", "level", "account_kind", "branch", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "level", "account_kind", "branch", "role"],
                condition=Q(ended_on__isnull=True),
                name="link_one_current_per_level",
            )
        ]
        indexes = [models.Index(fields=["practice", "ended_on"])]

    def __str__(self) -> str:
        return f"{self.client}: {self.describe()}"

    def describe(self) -> str:
        return describe_level(self.level, self.account_kind, self.branch, self.role)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.level, self.account_kind, self.branch, self.role)


class ChangeKind(models.TextChoices):
    ADDED = "added", "Linked"
    REMOVED = "removed", "Removed"
    ENDED_AT_ATO = "ended_at_ato", "Ended at the ATO"
    FOUND_AT_ATO = "found_at_ato", "Found at the ATO"
    SUPERSEDED_OTHER = "superseded_other", "Ended another agent's link"


class LinkChange(models.Model):
    """One entry in a client's relationship history."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="link_changes")
    kind = models.CharField(max_length=20, choices=ChangeKind.choices)
    level = models.CharField(max_length=8, choices=Level.choices)
    account_kind = models.CharField(max_length=3, blank=True)
    branch = models.CharField(max_length=3, blank=True)
    role = models.CharField(max_length=5, blank=True)
    note = models.CharField(max_length=300, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message_id = models.CharField(max_length=200, blank=True)  # the ebMS MessageId that made the change
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["client", "-at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.describe()}"

    def describe(self) -> str:
        return describe_level(self.level, self.account_kind, self.branch, self.role)


class RequestKind(models.TextChoices):
    SEARCH = "search", "Search"
    VALIDATE = "validate", "Validate"
    SUBMIT = "submit", "Link"
    VALIDATE_REMOVE = "validate_remove", "Validate removal"
    REMOVE = "remove", "Remove"


# A request's state is its question's: waiting, answered, refused by the ATO, or could not be completed.
RequestStatus = QuestionState


class AtoRequestQuerySet(models.QuerySet["AtoRequest"]):
    def for_practice(self, practice: Practice) -> AtoRequestQuerySet:
        return self.filter(practice=practice)

    def waiting(self) -> AtoRequestQuerySet:
        return self.filter(question__state=QuestionState.WAITING)

    def in_state(self, state: str) -> AtoRequestQuerySet:
        return self.filter(question__state=state)

    def visible_to(self, user: User) -> AtoRequestQuerySet:
        """The requests of the one-client pages a user may see and act on. A bulk link's rows are reached only
        through their bulk link (which has its own scoping, and where a warning must be ticked before Submit). Staff
        restricted to groups see requests about their groups' clients and their own; a colleague's search for
        someone the register does not hold yet (a name, a date of birth) belongs to no group, like a bulk file."""
        if user.practice_id is None:
            return self.none()
        qs = self.filter(practice_id=user.practice_id, bulk_row__isnull=True)
        if user.restricted_to_groups:
            visible = Client.objects.visible_to(user).filter(pk=OuterRef("client_id"))
            qs = qs.filter(Q(Exists(visible)) | Q(created_by=user))
        return qs


class AtoRequest(models.Model):
    """One question put to the ATO for a person, and its answer. The identifier the person typed is kept sealed
    (Fernet, the TFN key ring) so the next step (validate after search, submit after validate) can reuse it
    without asking again and without a TFN in clear anywhere."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    bulk_row = models.ForeignKey(
        "BulkRow", null=True, blank=True, on_delete=models.CASCADE, related_name="requests"
    )  # set when the request is part of a bulk link
    identifier_kind = models.CharField(max_length=3)  # TFN, ABN, WPN
    identifier_sealed = SealedField()
    identifier_last3 = models.CharField(max_length=3)
    family_name = models.CharField(max_length=100, blank=True)
    given_name = models.CharField(max_length=100, blank=True)
    organisation_name = models.CharField(max_length=200, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    links = models.JSONField(default=list)  # [[level, account_kind, branch, role], ...] asked to add or remove
    # The question put to the ATO: its state, its outbox message and the ATO's typed answer.
    question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AtoRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.identifier_kind} {self.masked_identifier}"

    def seal_identifier(self, kind: str, value: str) -> None:
        self.identifier_kind = kind
        self.identifier_sealed = seal(value)
        self.identifier_last3 = value[-3:]

    def identifier(self) -> str:
        """The identifier in clear, only to put it in a message to the ATO."""
        return unseal(self.identifier_sealed)

    @property
    def masked_identifier(self) -> str:
        return f"*** *** {self.identifier_last3}" if self.identifier_kind == "TFN" else self.identifier_unmasked

    @property
    def identifier_unmasked(self) -> str:
        """ABNs and WPNs are public identifiers and shown in full; a TFN never is."""
        return "" if self.identifier_kind == "TFN" else self.identifier()

    @property
    def status(self) -> str:
        return self.question.state if self.question is not None else QuestionState.WAITING

    @property
    def status_display(self) -> str:
        return QuestionState(self.status).label

    @property
    def is_settled(self) -> bool:
        return self.status != QuestionState.WAITING

    @property
    def answered_at(self) -> datetime | None:
        return self.question.answered_at if self.question is not None else None

    def reply(self) -> Reply[Any]:
        """The ATO's typed answer (decoded once per instance): an empty reply while waiting."""
        cached: Reply[Any] | None = getattr(self, "_reply", None)
        if cached is None:
            cached = api.reply(self.question) if self.question is not None and self.is_settled else Reply(None, [])
            self._reply = cached
        return cached

    def items(self, severity: str | None = None) -> list[Item]:
        return [i for i in self.reply().items if severity is None or i.severity == severity]


def get_request_or_404(user: User, pk: int) -> AtoRequest:
    return get_object_or_404(AtoRequest.objects.visible_to(user), pk=pk)


class BulkStatus(models.TextChoices):
    VALIDATING = "validating", "Validating"
    REVIEW = "review", "Ready for review"
    SUBMITTING = "submitting", "Linking"
    DONE = "done", "Done"


class BulkJob(models.Model):
    """A bulk link from a CSV of identifiers: every row validated first, then the chosen rows submitted."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=BulkStatus.choices, default=BulkStatus.VALIDATING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Bulk link {self.filename}"


class BulkRow(models.Model):
    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="rows")
    row_number = models.PositiveIntegerField()
    label = models.CharField(max_length=250)  # the name, for the review table
    identifier_kind = models.CharField(max_length=3, blank=True)
    identifier_last3 = models.CharField(max_length=3, blank=True)
    problem = models.CharField(max_length=300, blank=True)  # a row refused before asking the ATO
    chosen = models.BooleanField(default=False)

    class Meta:
        ordering = ["row_number"]
        constraints = [models.UniqueConstraint(fields=["job", "row_number"], name="bulk_row_unique")]

    def __str__(self) -> str:
        return f"Row {self.row_number}: {self.label}"


# The reconciliation's models live in their own module; imported here so that Django loads them with the app's.
from relationships.reconcile import models as reconcile_models  # noqa: E402, F401
