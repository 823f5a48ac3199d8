"""What the ATO holds about a client, kept as dated snapshots: one model per service, each pointing at the question
whose typed answer it is (``api.reply(snapshot.question)``), with ``facts``, the answer in the flat form two
snapshots are compared in (one dict a row, each with its ``summary`` in words)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from clients.models import Client
from portal.models import User


class Service(models.TextChoices):
    DETAILS = "details", "Details"
    ADDRESSES = "addresses", "Addresses"
    BANK = "bank", "Bank accounts"
    CONTACTS = "contacts", "Authorised contacts"
    ASSOCIATES = "associates", "Associates"


class SnapshotQuerySet(models.QuerySet[Any]):
    def answered(self) -> SnapshotQuerySet:
        return self.filter(answered_at__isnull=False)

    def newest_first(self) -> SnapshotQuerySet:
        return self.order_by("-asked_at", "-pk")


class Snapshot(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    question = models.OneToOneField("ato_gateway.Question", on_delete=models.PROTECT, related_name="+")
    asked_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # The answer's rows as compared with the snapshot before (None until the ATO answered).
    facts = models.JSONField(null=True, blank=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        abstract = True
        # The snapshot before one (its client's newest answered, asked before it) is the first of its client in
        # this order that qualifies: read from the index, not found among every night's snapshot of the client.
        indexes = [models.Index(fields=["client", "-asked_at", "-id"], name="%(class)s_before")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} of client {self.client_id} asked {self.asked_at:%Y-%m-%d %H:%M}"

    def fact_keys(self) -> set[str]:
        return {str(f["summary"]) for f in self.facts or []}

    def same_level(self) -> dict[str, str]:
        """The filter of the snapshots this one is compared with: the ATO holds these services at client level."""
        return {}


# The ATO's account kinds in words, for "Activity statement account 001".
ACCOUNT_NAMES = {"ITX": "Income tax", "AS": "Activity statement", "FBT": "Fringe benefits tax"}


def level_words(kind: str, branch: str) -> str:
    if not kind:
        return "Client level"
    return " ".join(p for p in (ACCOUNT_NAMES.get(kind, kind), "account", branch) if p)


class AccountLevelSnapshot(Snapshot):
    """A service the ATO holds at client level and for each ATO account: one snapshot a level, each compared with
    the one before at its own level (an account's address is not the client's address changed)."""

    # The ATO's codes (AS and branch 001, ITX with none); both blank: the client level.
    account_kind = models.CharField(max_length=3, blank=True)
    account_branch = models.CharField(max_length=3, blank=True)

    class Meta(Snapshot.Meta):
        abstract = True

    @property
    def level(self) -> str:
        return level_words(self.account_kind, self.account_branch)

    def same_level(self) -> dict[str, str]:
        return {"account_kind": self.account_kind, "account_branch": self.account_branch}


class DetailsSnapshot(Snapshot):
    """CUDTL Get: the 2017 document, or the 2016 one where the 2017 one was refused."""


class AddressesSnapshot(AccountLevelSnapshot):
    """CUADDR List at one level: business, residential, postal, phone, email and web addresses, with history."""


class BankAccountsSnapshot(AccountLevelSnapshot):
    """CUFI List at one level, with history."""


class ContactsSnapshot(AccountLevelSnapshot):
    """CUADDR List of the authorised contact's usage (CNT) at one level: the ATO lists no other way to read the
    contacts CUAUTHCNTCT changes."""


class AssociatesSnapshot(Snapshot):
    """CUASSOC List, with history."""


SNAPSHOT_MODELS: dict[str, type[Snapshot]] = {
    Service.DETAILS: DetailsSnapshot,
    Service.ADDRESSES: AddressesSnapshot,
    Service.BANK: BankAccountsSnapshot,
    Service.CONTACTS: ContactsSnapshot,
    Service.ASSOCIATES: AssociatesSnapshot,
}


class BankChangeStatus(models.TextChoices):
    VALIDATING = "validating", "Being checked by the ATO"
    PROPOSED = "proposed", "Waiting for the call-back and approval"
    REFUSED = "refused", "Refused by the ATO"
    SUBMITTING = "submitting", "Approved: sent to the ATO"
    ACCEPTED = "accepted", "Accepted by the ATO"
    EXPIRED = "expired", "Expired unapproved"


class BankChangeQuerySet(models.QuerySet["BankChange"]):
    def visible_to(self, user: Any) -> BankChangeQuerySet:
        return self.filter(client__in=Client.objects.visible_to(user))


class BankChange(models.Model):
    """A replacement of the client-level bank account, under four-eyes control: proposed by one member, checked by
    the ATO (Validate), confirmed with the client by a call-back to a number on file before the proposal, approved
    by another member who holds "approve changes" and re-enters their authenticator code, then submitted."""

    EXPIRES_AFTER_DAYS = 7

    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=BankChangeStatus.choices, default=BankChangeStatus.VALIDATING)
    bsb = models.CharField("BSB", max_length=6)
    number = models.CharField("Account number", max_length=9)
    account_name = models.CharField(max_length=32)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # The phone numbers the ATO held for the client before the proposal: the only numbers a call-back may use.
    numbers_on_file = models.JSONField(default=list)
    called_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    called_at = models.DateTimeField(null=True, blank=True)
    called_number = models.CharField(max_length=40, blank=True)
    recorded_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    validate_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submit_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notified_to = models.CharField(max_length=254, blank=True)  # the email on file the client was told at

    objects = BankChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-proposed_at", "-pk"]

    def __str__(self) -> str:
        return f"Bank change for {self.client} proposed {self.proposed_at:%Y-%m-%d}"

    @property
    def masked_number(self) -> str:
        return "…" + self.number[-3:]

    @property
    def bsb_display(self) -> str:
        return f"{self.bsb[:3]}-{self.bsb[3:]}"

    def is_expired(self, now: datetime | None = None) -> bool:
        open_ = self.status in (BankChangeStatus.VALIDATING, BankChangeStatus.PROPOSED)
        return open_ and (now or timezone.now()) >= self.expires_at


class AddressChangeStatus(models.TextChoices):
    VALIDATING = "validating", "Being checked by the ATO"
    VALIDATED = "validated", "Checked: ready to submit"
    SUBMITTING = "submitting", "Sent to the ATO"
    ACCEPTED = "accepted", "Changed at the ATO"
    REFUSED = "refused", "Refused by the ATO"
    FAILED = "failed", "Could not be completed"


class AddressBulk(models.Model):
    """One new address for many clients (a practice that moves office): each client's change is its own row,
    checked and then submitted on its own, so one refused client leaves the others changed."""

    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    usage = models.CharField(max_length=3, default="POS")
    line1 = models.CharField(max_length=38)
    line2 = models.CharField(max_length=38, blank=True)
    locality = models.CharField(max_length=46)
    state = models.CharField(max_length=3)
    postcode = models.CharField(max_length=4)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Bulk address change of {self.created_at:%Y-%m-%d %H:%M}"

    def counts(self, user: User | None = None) -> dict[str, int]:
        """How many clients' changes are in each state; with ``user``, of the clients that user sees (a member
        restricted to groups is told nothing of the others, not even how many there are)."""
        changes = self.changes.all()  # type: ignore[attr-defined]
        if user is not None:
            changes = changes.filter(client__in=Client.objects.visible_to(user))
        found = dict(changes.values("status").annotate(n=models.Count("pk")).values_list("status", "n"))
        return {status: int(found.get(status, 0)) for status in AddressChangeStatus.values}


class AddressChange(models.Model):
    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    bulk = models.ForeignKey(AddressBulk, null=True, blank=True, on_delete=models.CASCADE, related_name="changes")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=12, choices=AddressChangeStatus.choices, default=AddressChangeStatus.VALIDATING
    )
    usage = models.CharField(max_length=3, default="POS")
    line1 = models.CharField(max_length=38)
    line2 = models.CharField(max_length=38, blank=True)
    locality = models.CharField(max_length=46)
    state = models.CharField(max_length=3)
    postcode = models.CharField(max_length=4)
    # The ATO accounts the change is for, as [kind, branch] in the ATO's codes (["AS", "001"], ["ITX", ""]), at
    # most the ATO's limit a message; none: the client level.
    accounts = models.JSONField(default=list, blank=True)
    validate_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submit_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Address change for {self.client}"

    @property
    def level_text(self) -> str:
        if not self.accounts:
            return "Client level"
        return ", ".join(f"{kind} {branch}".strip() for kind, branch in self.accounts)

    @property
    def address_text(self) -> str:
        return ", ".join(p for p in (self.line1, self.line2, self.locality, self.state, self.postcode) if p)

    @property
    def question(self) -> Any:
        return self.submit_question or self.validate_question


class DriftRun(models.Model):
    """One watch of every client of a practice: ``last_client_id`` is how far it has asked, so a run that stopped
    resumes there and asks no client twice."""

    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_client_id = models.BigIntegerField(default=0)
    clients_asked = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"Drift watch of {self.started_at:%Y-%m-%d %H:%M}"


class DriftAlertQuerySet(models.QuerySet["DriftAlert"]):
    def unread_by(self, user: Any) -> DriftAlertQuerySet:
        return self.exclude(reads__user=user)


class DriftAlert(models.Model):
    """A change at the ATO that no accepted change of the portal's explains; urgent when it is a bank account.

    Each member who is told marks it read for themselves: one member's having seen a possible fraud must not hide
    it from the others who were told."""

    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    service = models.CharField(max_length=12, choices=Service.choices)
    urgent = models.BooleanField(default=False)
    before = models.JSONField(default=list)  # what the ATO held at the snapshot before, in words
    after = models.JSONField(default=list)  # what it holds now
    found_at = models.DateTimeField(auto_now_add=True)

    objects = DriftAlertQuerySet.as_manager()

    class Meta:
        ordering = ["-urgent", "-found_at", "-pk"]

    def __str__(self) -> str:
        return f"{'Urgent: ' if self.urgent else ''}{self.get_service_display()} changed at the ATO for {self.client}"


class DriftAlertRead(models.Model):
    alert = models.ForeignKey(DriftAlert, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "user"], name="drift_alert_read_once")]

    def __str__(self) -> str:
        return f"Alert {self.alert_id} read by user {self.user_id}"


class ProfileChange(models.Model):
    """A change of the client's details (CUDTL) or of its authorised contact (CUAUTHCNTCT), Validate first, then
    Submit, as an address change goes: ``values`` are what was entered, in the form's own names, and a contact's
    ``account`` ("AS:001") where it is an ATO account's contact rather than the client level's."""

    class Kind(models.TextChoices):
        DETAILS = "details", "Details"
        CONTACT = "contact", "Authorised contact"

    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=12, choices=AddressChangeStatus.choices, default=AddressChangeStatus.VALIDATING
    )
    values = models.JSONField(default=dict)
    validate_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submit_question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} change for {self.client}"

    @property
    def question(self) -> Any:
        return self.submit_question or self.validate_question

    @property
    def account(self) -> tuple[str, str] | None:
        """The ATO account (kind and branch, in the ATO's codes) an authorised contact's change is for; None at
        client level (and for a details change)."""
        account = self.values.get("account")
        if not account:
            return None
        kind, _, branch = str(account).partition(":")
        return kind, branch

    @property
    def summary(self) -> str:
        shown = {name: value for name, value in self.values.items() if value and name != "account"}
        text = ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in shown.items())
        return f"{level_words(*self.account)}: {text}" if self.account else text
