"""What the ATO holds about a client, kept as dated snapshots: one model per service, each pointing at the question
whose typed answer it is (``api.reply(snapshot.question)``), with ``facts``, the answer in the flat form two
snapshots are compared in (one dict a row, each with its ``summary`` in words)."""

from __future__ import annotations

from typing import Any

from django.db import models

from clients.models import Client


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

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} of client {self.client_id} asked {self.asked_at:%Y-%m-%d %H:%M}"

    def fact_keys(self) -> set[str]:
        return {str(f["summary"]) for f in self.facts or []}


class DetailsSnapshot(Snapshot):
    """CUDTL Get: the 2017 document, or the 2016 one where the 2017 one was refused."""


class AddressesSnapshot(Snapshot):
    """CUADDR List at client level: business, residential, postal, phone, email and web addresses, with history."""


class BankAccountsSnapshot(Snapshot):
    """CUFI List at client level, with history."""


class ContactsSnapshot(Snapshot):
    """CUADDR List of the authorised contact's usage (CNT): the ATO lists no other way to read the contacts."""


class AssociatesSnapshot(Snapshot):
    """CUASSOC List, with history."""


SNAPSHOT_MODELS: dict[str, type[Snapshot]] = {
    Service.DETAILS: DetailsSnapshot,
    Service.ADDRESSES: AddressesSnapshot,
    Service.BANK: BankAccountsSnapshot,
    Service.CONTACTS: ContactsSnapshot,
    Service.ASSOCIATES: AssociatesSnapshot,
}
