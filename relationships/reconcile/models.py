"""Reconciliation with the ATO: a run through the ATO's list of the practice's links, the differences it found (the
drift report), and the alerts those differences raise for the staff who look after the client.

A run keeps all of its state here, not in a worker's memory: which page is in flight (``current_question``), the
continuation that asked for it, and the counts so far. A page is applied in the transaction that settles its
message, so a run can stop anywhere (a dead worker, the ATO down) and carry on from the page it was at.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clients.models import Client
from portal.models import Practice, User


class RunStatus(models.TextChoices):
    RUNNING = "running", "Checking with the ATO"
    DONE = "done", "Finished"
    FAILED = "failed", "Stopped"


class ReconcileRunQuerySet(models.QuerySet["ReconcileRun"]):
    def for_practice(self, practice: Practice) -> ReconcileRunQuerySet:
        return self.filter(practice=practice)


class ReconcileRun(models.Model):
    """One pass through the ATO's list of the practice's links, compared with the register."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    started_by = models.ForeignKey(  # None: the nightly run
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    # Ended links are asked for from here on (the last finished run, less a margin); None asks for all of them.
    ended_from = models.DateField(null=True, blank=True)
    # The page in flight and the continuation that asked for it: what a resumed run asks again.
    current_question = models.ForeignKey(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    continuation = models.TextField(blank=True)
    pages = models.PositiveIntegerField(default=0)
    clients_seen = models.PositiveIntegerField(default=0)
    expected_clients = models.PositiveIntegerField(default=0)  # an estimate for the progress bar; 0 = unknown
    drift_count = models.PositiveIntegerField(default=0)
    lost_access_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    objects = ReconcileRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            # One run at a time per practice: a second start finds the first instead of racing it.
            models.UniqueConstraint(
                fields=["practice"], condition=Q(status="running"), name="reconcile_one_running_per_practice"
            )
        ]

    def __str__(self) -> str:
        return f"Reconciliation of {timezone.localtime(self.started_at):%d/%m/%Y %H:%M}"

    @property
    def is_running(self) -> bool:
        return self.status == RunStatus.RUNNING

    @property
    def percent(self) -> int | None:
        """None while the size is unknown (the first run of a practice with no links yet): an indeterminate bar."""
        if self.status == RunStatus.DONE:
            return 100
        if not self.expected_clients:
            return None
        return min(99, int(100 * self.clients_seen / self.expected_clients))

    @property
    def is_stuck(self) -> bool:
        """Running, but the page in flight has reached an end without being applied (its answer could not be
        recorded): nothing will move it on except Resume."""
        question = self.current_question
        return self.is_running and (question is None or question.is_settled)


def get_run_or_404(user: User, pk: int) -> ReconcileRun:
    return get_object_or_404(ReconcileRun.objects.for_practice(user.tenant).select_related("started_by"), pk=pk)


class DriftKind(models.TextChoices):
    LOST_ACCESS = "lost_access", "Ended at the ATO: access lost"
    LEVEL_CHANGED = "level_changed", "Level changed at the ATO"
    NOT_IN_PORTAL = "not_in_portal", "Linked at the ATO, not in the portal"
    NOT_IN_REGISTER = "not_in_register", "Linked at the ATO, client not in the register"


class DriftQuerySet(models.QuerySet["Drift"]):
    def visible_to(self, user: User) -> DriftQuerySet:
        """The practice's drift, narrowed for staff restricted to groups to their clients (clients the register
        does not hold yet belong to no group, so only unrestricted staff see them)."""
        qs = self.filter(run__practice_id=user.practice_id)
        if user.practice_id is None:
            return qs.none()
        if user.restricted_to_groups:
            qs = qs.filter(client__in=Client.objects.visible_to(user))
        return qs


class Drift(models.Model):
    """One difference between the ATO's list and the register, in words."""

    run = models.ForeignKey(ReconcileRun, on_delete=models.CASCADE, related_name="drift")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=DriftKind.choices)
    name = models.CharField(max_length=250)  # the register's name, or the ATO's for a client the register lacks
    identifier = models.CharField(max_length=40)  # "TFN *** *** 782", "ABN 53004085616": never a full TFN
    details = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DriftQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["run", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"


class AlertQuerySet(models.QuerySet["RelationshipAlert"]):
    def for_user(self, user: User) -> AlertQuerySet:
        """The user's own alerts, about clients they can still see."""
        if user.practice_id is None:
            return self.none()
        qs = self.filter(user=user, practice_id=user.practice_id)
        if user.restricted_to_groups:
            visible = Client.objects.visible_to(user).filter(pk=OuterRef("client_id"))
            qs = qs.filter(Q(client__isnull=True) | Exists(visible))
        return qs

    def unread(self) -> AlertQuerySet:
        return self.filter(read_at__isnull=True)


class RelationshipAlert(models.Model):
    """A notice to one member of staff (the staff of the client's groups, and the practice admins), read or not."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    drift = models.ForeignKey(Drift, on_delete=models.CASCADE, related_name="alerts")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    urgent = models.BooleanField(default=True)
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-urgent", "-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["user", "drift"], name="alert_once_per_user_and_drift")]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.text


def get_alert_or_404(user: User, pk: int) -> RelationshipAlert:
    return get_object_or_404(RelationshipAlert.objects.for_user(user), pk=pk)
