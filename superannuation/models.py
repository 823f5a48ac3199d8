"""Super funds the practice administers, their member account register, the MAAS batches that report it to the ATO,
and the worklist of the TFN validation responses and errors that the fund must act on within 30 days (seed 003,
CRT Alert 071/2018; s390-115 Taxation Administration Act 1953).

The table of seed 003 is ``classify``: one function from a transaction's result (and whether it was part of the
foundation data load, and whether a TFN was given) to what it means and whether it needs action. The clock is
``WorkItem.due_on``: 30 days from the moment the response was pulled from the gateway, which is when the ATO deems the
fund aware, or the later date the ATO agreed to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef
from django.utils import timezone

from clients.models import Client
from clients.tfn import decrypt_tfn, encrypt_tfn, mask_tfn, tfn_lookup_hash
from portal.models import Practice, User
from portal.sealing import SealedField

# The ATO deems the fund aware when it pulls the responses; it then has 30 days (seed 003).
REMEDIATION_DAYS = 30
REMINDER_DAYS_LEFT = 7


class SuperFundQuerySet(models.QuerySet["SuperFund"]):
    def visible_to(self, user: User) -> SuperFundQuerySet:
        """The practice's funds; staff restricted to client groups see the funds whose register client is in one of
        their groups (a fund with no client of the register is for unrestricted staff only)."""
        if user.practice_id is None:
            return self.none()
        qs = self.filter(practice_id=user.practice_id)
        if user.restricted_to_groups:
            qs = qs.filter(client__in=Client.objects.visible_to(user))
        return qs


class SuperFund(models.Model):
    """An APRA-regulated fund whose member accounts the practice reports through MAAS."""

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    # The fund as a client of the register, when it is one: group-restricted staff reach the fund through it.
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    abn = models.CharField("ABN", max_length=11)
    usi = models.CharField("USI", max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    objects = SuperFundQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["practice", "usi"], name="superfund_usi_unique")]

    def __str__(self) -> str:
        return self.name


class AccountStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    REOPENED = "reopened", "Reopened"


class AccountPhase(models.TextChoices):
    ACCUMULATION = "accumulation", "Accumulation"
    RETIREMENT = "retirement", "Retirement (pension)"


class LostStatus(models.TextChoices):
    NOT_LOST = "not_lost", "Not lost"
    UNCONTACTABLE = "uncontactable", "Lost: uncontactable"
    INACTIVE = "inactive", "Lost: inactive"


class TfnValidation(models.TextChoices):
    """The ATO's TFN validation of the member's last processed transaction (seed 003)."""

    MATCHED = "matched", "Matched"
    CORRECTED = "corrected", "Matched and corrected"
    PROVIDED = "provided", "Matched, TFN supplied"
    UNMATCHED = "unmatched", "Unmatched"


# The account attributes MAAS reports that are yes or no (the member file's columns and a change's fields).
FLAG_ATTRIBUTES = (
    "contributions_accepted",
    "inward_rollovers_accepted",
    "outward_rollovers_accepted",
    "government_rollovers_accepted",
    "defined_benefit",
    "insurance",
    "grandfathered",
    "innovative_income_stream",
)


class MemberQuerySet(models.QuerySet["Member"]):
    def visible_to(self, user: User) -> MemberQuerySet:
        return self.filter(fund__in=SuperFund.objects.visible_to(user))


class Member(models.Model):
    """A member account of a fund: the member (TFN sealed like a client's), the account number and status, and the
    attributes MAAS reports."""

    fund = models.ForeignKey(SuperFund, on_delete=models.PROTECT, related_name="members")
    member_number = models.CharField(max_length=40)
    family_name = models.CharField(max_length=100)
    given_names = models.CharField(max_length=150, blank=True)
    date_of_birth = models.DateField()
    address_line1 = models.CharField(max_length=100, blank=True)
    address_line2 = models.CharField(max_length=100, blank=True)
    locality = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=3, blank=True)
    postcode = models.CharField(max_length=4, blank=True)
    tfn_ciphertext = SealedField(blank=True)
    tfn_hash = models.CharField(max_length=64, blank=True, db_index=True)
    tfn_last3 = models.CharField(max_length=3, blank=True)
    # A TFN the ATO supplied (s299TA, s299TC): the fund keeps it but must not give it to employers.
    tfn_from_ato = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=AccountStatus.choices, default=AccountStatus.OPEN)
    opened_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)
    # The attributes the ATO names for MAAS.
    phase = models.CharField(max_length=12, choices=AccountPhase.choices, default=AccountPhase.ACCUMULATION)
    contributions_accepted = models.BooleanField(default=True)
    inward_rollovers_accepted = models.BooleanField(default=True)
    outward_rollovers_accepted = models.BooleanField(default=True)
    government_rollovers_accepted = models.BooleanField(default=True)
    lost_status = models.CharField(max_length=13, choices=LostStatus.choices, default=LostStatus.NOT_LOST)
    defined_benefit = models.BooleanField("Defined benefit interest", default=False)
    insurance = models.BooleanField(default=False)
    grandfathered = models.BooleanField("Grandfathering", default=False)
    innovative_income_stream = models.BooleanField("Innovative income stream product", default=False)
    # The ATO's last TFN validation of this account, and when the account was first reported.
    tfn_validation = models.CharField(max_length=10, choices=TfnValidation.choices, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MemberQuerySet.as_manager()

    class Meta:
        ordering = ["family_name", "given_names", "pk"]
        constraints = [models.UniqueConstraint(fields=["fund", "member_number"], name="member_number_unique")]
        indexes = [models.Index(fields=["fund", "family_name", "given_names", "id"], name="member_by_name")]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.member_number})"

    @property
    def display_name(self) -> str:
        return f"{self.given_names} {self.family_name}".strip()

    def set_tfn(self, tfn: str) -> None:
        """The TFN sealed, its keyed hash and last three digits (empty: no TFN quoted)."""
        self.tfn_ciphertext = encrypt_tfn(tfn) if tfn else ""
        self.tfn_hash = tfn_lookup_hash(tfn) if tfn else ""
        self.tfn_last3 = tfn[-3:] if tfn else ""

    @property
    def masked_tfn(self) -> str:
        return mask_tfn(self.tfn_last3)

    def reveal_tfn(self) -> str:
        """The TFN in clear: callers audit the reveal (services.member_reveal_tfn)."""
        return decrypt_tfn(self.tfn_ciphertext) if self.tfn_ciphertext else ""


class TfnChange(models.Model):
    """The member's TFN history: every change, with the value before it (sealed), why and by whom."""

    class Source(models.TextChoices):
        IMPORT = "import", "Member file"
        EDIT = "edit", "Edited by staff"
        ATO_CORRECTED = "ato_corrected", "Corrected by the ATO (s299TA)"
        ATO_PROVIDED = "ato_provided", "Supplied by the ATO (s299TC)"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tfn_changes")
    old_ciphertext = SealedField(blank=True)
    old_last3 = models.CharField(max_length=3, blank=True)
    new_last3 = models.CharField(max_length=3, blank=True)
    source = models.CharField(max_length=14, choices=Source.choices)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"TFN of member {self.member_id} changed {self.changed_at:%Y-%m-%d}"


class ReportKind(models.TextChoices):
    FOUNDATION = "foundation", "Foundation data load"
    REALTIME = "realtime", "Real-time reporting"


class EventKind(models.TextChoices):
    OPENED = "opened", "New account"
    CHANGED = "changed", "Change of attributes"
    CLOSED = "closed", "Closed"
    REOPENED = "reopened", "Reopened"


class BatchState(models.TextChoices):
    SENDING = "sending", "Being sent to the ATO"
    AWAITING = "awaiting", "Lodged: waiting for the ATO's responses"
    ANSWERED = "answered", "Responses received"
    REFUSED = "refused", "Refused whole by the ATO"
    FAILED = "failed", "Could not be sent"


class BatchQuerySet(models.QuerySet["Batch"]):
    def visible_to(self, user: User) -> BatchQuerySet:
        return self.filter(fund__in=SuperFund.objects.visible_to(user))


class Batch(models.Model):
    """One MAAS Submit message: transactions reported together, pushed through the gateway and its responses
    pulled. A foundation data load or a day's real-time events spans as many batches as it needs."""

    fund = models.ForeignKey(SuperFund, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    # The report this batch belongs to (a foundation data load of 100,000 accounts is one report, many batches).
    report = models.ForeignKey("Report", on_delete=models.PROTECT, related_name="batches")
    question = models.OneToOneField(
        "ato_gateway.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=9, choices=BatchState.choices, default=BatchState.SENDING)
    size = models.PositiveIntegerField(default=0)
    # The technical receipt: the obligation to lodge is met at that moment.
    receipt_at = models.DateTimeField(null=True, blank=True)
    # When the responses were pulled: the ATO deems the fund aware then, and the 30-day clock starts.
    pulled_at = models.DateTimeField(null=True, blank=True)
    refusal = models.JSONField(default=list, blank=True)  # the ATO's words when the batch was refused whole
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} batch {self.pk} of {self.fund}"


class Report(models.Model):
    """What a person started: a foundation data load of a fund, or the sending of its pending real-time events, or a
    resubmission of corrected transactions. Its batches carry the transactions; its progress is theirs."""

    fund = models.ForeignKey(SuperFund, on_delete=models.PROTECT, related_name="reports")
    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    total = models.PositiveIntegerField(default=0)  # transactions to report
    # Where the building of batches has got to (members by pk), so a report interrupted resumes, never repeats.
    cursor = models.BigIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)  # every transaction is in a batch
    finished_at = models.DateTimeField(null=True, blank=True)  # every batch answered, refused or failed

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.fund} started {self.started_at:%Y-%m-%d %H:%M}"


class Meaning(models.TextChoices):
    """What a transaction's response means, row by row of seed 003's table, and the errors it names."""

    MATCHED = "matched", "Matched (s299TD notice)"
    MATCHED_NO_NOTICE = "matched_no_notice", "Matched (no TFN given; not a s299TD notice)"
    CORRECTED = "corrected", "Matched and corrected (s299TA notice)"
    PROVIDED = "provided", "Matched, TFN supplied (s299TC notice)"
    UNMATCHED_FOUNDATION = "unmatched_foundation", "Unmatched during the foundation data load"
    UNMATCHED = "unmatched", "Unmatched during real-time reporting"
    PLEASE_RESOLVE = "please_resolve", "Please resolve (unmatched, TFN given)"
    VALIDATION_ERROR = "validation_error", "Failed validation: not processed"
    OTHER_HOLDER = "other_holder", "Account belongs to a different holder (096604)"
    MORE_RECENT = "more_recent", "A more recent request was already processed (099264)"


# The meanings that need the fund to act, and so open a work item with the 30-day clock.
NEEDS_ACTION = frozenset(
    {
        Meaning.CORRECTED,
        Meaning.PROVIDED,
        Meaning.UNMATCHED,
        Meaning.PLEASE_RESOLVE,
        Meaning.VALIDATION_ERROR,
        Meaning.OTHER_HOLDER,
        Meaning.MORE_RECENT,
    }
)

OTHER_HOLDER_CODE = "CMN.ATO.SPRMBRINFO.096604"
MORE_RECENT_CODE = "CMN.ATO.SPRMBRINFO.099264"


@dataclass(frozen=True)
class Outcome:
    """The parts of one transaction's result that seed 003's table reads."""

    processed: bool
    tfn_validation: str | None  # MATCHED, CORRECTED, PROVIDED, UNMATCHED (the document's codes)
    codes: tuple[str, ...]


def classify(outcome: Outcome, *, kind: str, tfn_given: bool) -> Meaning:
    """Seed 003's table: what a transaction's response means. ``kind`` is the report's (foundation or real time)."""
    if OTHER_HOLDER_CODE in outcome.codes:
        return Meaning.OTHER_HOLDER
    if MORE_RECENT_CODE in outcome.codes:
        return Meaning.MORE_RECENT
    if not outcome.processed:
        return Meaning.VALIDATION_ERROR
    if outcome.tfn_validation == "CORRECTED":
        return Meaning.CORRECTED
    if outcome.tfn_validation == "PROVIDED":
        return Meaning.PROVIDED
    if outcome.tfn_validation == "MATCHED":
        return Meaning.MATCHED if tfn_given else Meaning.MATCHED_NO_NOTICE
    if kind == ReportKind.FOUNDATION:
        return Meaning.UNMATCHED_FOUNDATION
    return Meaning.PLEASE_RESOLVE if tfn_given else Meaning.UNMATCHED


class TransactionQuerySet(models.QuerySet["Transaction"]):
    def visible_to(self, user: User) -> TransactionQuerySet:
        return self.filter(member__in=Member.objects.visible_to(user))

    def pending(self) -> TransactionQuerySet:
        """Events recorded but not yet claimed by a report: the next real-time report sends them."""
        return self.filter(batch__isnull=True, report__isnull=True)


class Transaction(models.Model):
    """One reported event of one member account, and the ATO's response to it."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="transactions")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions")
    # The report that will send it (claimed by a real-time report or made by a resubmission), until it is in a batch.
    report = models.ForeignKey("Report", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions")
    # 096604 remediated by closing the account under the other holder: that holder's name and date of birth
    # ({"family_name", "given_names", "date_of_birth"}) are reported in place of the member's.
    holder = models.JSONField(default=dict, blank=True)
    # The MAAS TransactionId: unique, so a resubmission is a new transaction pointing at the one it corrects.
    transaction_id = models.CharField(max_length=40, unique=True)
    event = models.CharField(max_length=8, choices=EventKind.choices)
    event_on = models.DateField()
    tfn_given = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
    # The response, once pulled.
    processed = models.BooleanField(null=True)
    tfn_validation = models.CharField(max_length=10, choices=TfnValidation.choices, blank=True)
    corrected_tfn = SealedField(blank=True)  # the TFN the ATO supplied, until it is applied
    items = models.JSONField(default=list, blank=True)  # [{"code", "severity", "text", "parameters"}]
    meaning = models.CharField(max_length=20, choices=Meaning.choices, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    resubmission_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resubmitted_as"
    )

    objects = TransactionQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["batch", "id"], name="transaction_batch"),
            models.Index(fields=["member", "-id"], name="transaction_member"),
            models.Index(fields=["report", "id"], name="transaction_report"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} of member {self.member_id} ({self.transaction_id})"


def remediation_due(aware_at: datetime) -> date:
    """The 30-day clock: 30 days from the day the responses were pulled (in the practice's time zone), the moment
    the ATO deems the fund aware; not the day of the send nor of the technical receipt."""
    return timezone.localdate(aware_at) + timedelta(days=REMEDIATION_DAYS)


class ItemState(models.TextChoices):
    OPEN = "open", "To do"
    RESOLVED = "resolved", "Resolved"


class WorkItemQuerySet(models.QuerySet["WorkItem"]):
    def visible_to(self, user: User) -> WorkItemQuerySet:
        return self.filter(fund__in=SuperFund.objects.visible_to(user))

    def open(self) -> WorkItemQuerySet:
        return self.filter(state=ItemState.OPEN)

    def by_days_left(self) -> WorkItemQuerySet:
        return self.order_by("due_on", "pk")

    def overdue(self, today: date | None = None) -> WorkItemQuerySet:
        return self.open().filter(due_on__lt=today or timezone.localdate())

    def due_within(self, days: int, today: date | None = None) -> WorkItemQuerySet:
        today = today or timezone.localdate()
        return self.open().filter(due_on__gte=today, due_on__lte=today + timedelta(days=days))

    def with_steps(self) -> WorkItemQuerySet:
        return self.annotate(has_steps=Exists(ReasonableStep.objects.filter(item=OuterRef("pk"))))


class WorkItem(models.Model):
    """A response or error the fund must act on, with the 30-day clock (seed 003)."""

    class Remediation(models.TextChoices):
        CLOSED_UNDER_HOLDER = "closed_under_holder", "Reported closed under the other holder"
        IDENTITY_CONFIRMED = "identity_confirmed", "Identity confirmed with the ATO"

    fund = models.ForeignKey(SuperFund, on_delete=models.PROTECT, related_name="work_items")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="work_items")
    transaction = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="work_item")
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    aware_at = models.DateTimeField()  # the pull: the ATO deems the fund aware then
    due_on = models.DateField()  # 30 days after aware_at, or the date the ATO agreed to
    state = models.CharField(max_length=8, choices=ItemState.choices, default=ItemState.OPEN)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)  # the reminder at 7 days left was sent
    escalated_at = models.DateTimeField(null=True, blank=True)  # overdue: the admins were told
    # 096604's guided remediation: what was done before the message may be resubmitted.
    remediation = models.CharField(max_length=20, choices=Remediation.choices, blank=True)
    remediation_note = models.TextField(blank=True)

    objects = WorkItemQuerySet.as_manager()

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [
            models.Index(fields=["fund", "state", "due_on", "id"], name="workitem_worklist"),
            models.Index(fields=["state", "due_on", "id"], name="workitem_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_meaning_display()} for member {self.member_id}, due {self.due_on:%Y-%m-%d}"

    @staticmethod
    def due_from(aware_at: datetime) -> date:
        return remediation_due(aware_at)

    def days_left(self, today: date | None = None) -> int:
        return (self.due_on - (today or timezone.localdate())).days

    @property
    def may_resubmit(self) -> bool:
        """096604's message cannot be resubmitted until one of its two remediations is recorded."""
        return self.meaning != Meaning.OTHER_HOLDER or bool(self.remediation)


class ReasonableStep(models.Model):
    """A step taken to resolve an item: contact with the member, what was found, evidence attached (sealed)."""

    item = models.ForeignKey(WorkItem, on_delete=models.CASCADE, related_name="steps")
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    taken_at = models.DateTimeField(default=timezone.now)
    contact = models.CharField(max_length=200)  # whom, how: "Member by phone on the number on file"
    found = models.TextField()
    evidence_name = models.CharField(max_length=200, blank=True)
    evidence = SealedField(blank=True)  # the file, sealed: evidence can carry a TFN

    class Meta:
        ordering = ["taken_at", "pk"]

    def __str__(self) -> str:
        return f"Step on item {self.item_id} at {self.taken_at:%Y-%m-%d}"


class Extension(models.Model):
    """More time the ATO agreed to (SuperCRT@ato.gov.au): when it was asked, of whom, the new date. The item's clock
    follows the newest one."""

    item = models.ForeignKey(WorkItem, on_delete=models.CASCADE, related_name="extensions")
    requested_on = models.DateField()
    requested_of = models.CharField(max_length=200)
    new_due_on = models.DateField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recorded_at", "pk"]

    def __str__(self) -> str:
        return f"Extension of item {self.item_id} to {self.new_due_on:%Y-%m-%d}"


class MemberImport(models.Model):
    """A CSV of members being imported into a fund: sealed until done (it carries TFNs), per-row errors kept."""

    fund = models.ForeignKey(SuperFund, on_delete=models.PROTECT, related_name="+")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    filename = models.CharField(max_length=200)
    content = SealedField(blank=True)  # emptied when the import finishes
    total_rows = models.PositiveIntegerField(default=0)
    done_rows = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"row": n, "member_number": ..., "messages": [...]}]
    finished_at = models.DateTimeField(null=True, blank=True)
    failure = models.TextField(blank=True)  # the whole file could not be read

    class Meta:
        ordering = ["-uploaded_at", "-pk"]

    def __str__(self) -> str:
        return f"Import of {self.filename} into {self.fund_id}"
