"""The evidence locker (items and their chain of custody) and the breach notification
clock of an incident."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from incidents.models import Incident, Source

from .storage import evidence_storage


class EvidenceItem(models.Model):
    """Something collected for the investigation: a file in the locker, hashed as it was
    uploaded, or a thing held elsewhere (a disk in a safe, a bucket) described here."""

    class Kind(models.TextChoices):
        SYSTEM_LOGS = "system_logs", "System logs"
        APPLICATION_LOGS = "application_logs", "Application logs"
        NETWORK_CAPTURE = "network_capture", "Network capture"
        DATABASE_OUTPUT = "database_output", "Database output"
        MEMORY_DUMP = "memory_dump", "Memory dump"
        SCREENSHOT = "screenshot", "Screenshot"
        OTHER = "other", "Other"

    class Integrity(models.TextChoices):
        OK = "ok", "Intact"
        MISMATCH = "mismatch", "Hash mismatch"
        MISSING = "missing", "File missing"
        EXTERNAL = "external", "Held elsewhere"

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.TextField(help_text="What it is, where it came from, why it matters.")
    # Stored under a name the server chose (incident reference / random); the client's
    # name is kept as data, for the download's file name.
    file = models.FileField(storage=evidence_storage, max_length=255, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    external_location = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Where it is held when not uploaded: a bucket, a vault, a bag number.",
    )
    size = models.PositiveBigIntegerField(null=True, blank=True, help_text="In bytes.")
    sha256 = models.CharField(
        "SHA-256",
        max_length=64,
        blank=True,
        help_text="Of an upload: computed by Sitrep. Of an item held elsewhere: as stated.",
    )
    integrity = models.CharField(max_length=10, choices=Integrity.choices)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    collected_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["collected_at", "id"]
        verbose_name = "evidence item"
        indexes = [models.Index(fields=["incident", "collected_at"], name="evidence_incident")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(file="") & ~Q(external_location=""))
                | (~Q(file="") & Q(external_location="")),
                name="evidence_file_or_location",
                violation_error_message="Upload a file or give where the item is held, not both.",
            ),
            models.CheckConstraint(
                condition=Q(file="") | (Q(size__isnull=False) & ~Q(sha256="")),
                name="evidence_file_hashed",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.get_kind_display()} ({self.incident.reference})"

    @property
    def is_stored(self) -> bool:
        """Return True for an item whose file is in the locker."""
        return bool(self.file.name)

    @property
    def download_name(self) -> str:
        return self.original_filename or f"evidence-{self.pk}"


class CustodyRecord(models.Model):
    """One access to an evidence item: who, when, from which address, what. Written only
    by the services, never changed or deleted (the admin offers neither)."""

    class Action(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        REGISTERED = "registered", "Registered (held elsewhere)"
        VIEWED = "viewed", "Viewed"
        DOWNLOADED = "downloaded", "Downloaded"
        EXPORTED = "exported", "Exported"
        VERIFIED = "verified", "Verified"
        VERIFICATION_FAILED = "verification_failed", "Verification failed"

    evidence = models.ForeignKey(EvidenceItem, on_delete=models.PROTECT, related_name="custody")
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The username then: the record outlives a renamed or removed account.
    actor_name = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(default=timezone.now)
    address = models.GenericIPAddressField(null=True, blank=True, unpack_ipv4=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    detail = models.CharField(max_length=500, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "custody record"
        indexes = [models.Index(fields=["evidence", "at"], name="custody_evidence_at")]

    def __str__(self):
        who = self.actor_name or "Sitrep"
        return f"{self.get_action_display()} by {who} at {self.at:%Y-%m-%d %H:%M:%S}"


# The warnings the watchdog sends as the deadline nears, each once: (stage, how long
# before the deadline, the field that records it was sent).
WARNINGS = (
    ("24h", timedelta(hours=24), "warned_24h_at"),
    ("6h", timedelta(hours=6), "warned_6h_at"),
    ("missed", timedelta(0), "missed_at"),
)


@dataclass(frozen=True)
class Countdown:
    """Where a breach clock stands: `state` is "notified", "not_required", "overdue" or
    "due"."""

    state: str
    deadline_at: datetime
    left: timedelta  # negative once overdue


class BreachAssessment(models.Model):
    """Whether a security or data incident is a personal-data breach the regulator must
    hear of, the deadline for telling them, and when they and the people affected were."""

    incident = models.OneToOneField(
        Incident, on_delete=models.PROTECT, related_name="breach_assessment"
    )
    # Unknown (None) until someone assesses it: the clock runs meanwhile, as the
    # regulator's does.
    personal_data_affected = models.BooleanField(null=True, blank=True)
    regulator_notification_required = models.BooleanField(null=True, blank=True)
    assessment_notes = models.TextField(blank=True)
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assessed_at = models.DateTimeField(null=True, blank=True)
    clock_started_at = models.DateTimeField(
        "clock started", help_text="When we became aware of the breach: by default, detection."
    )
    deadline_at = models.DateTimeField(
        "regulator deadline", help_text="The clock's start plus BREACH_NOTIFICATION_HOURS."
    )
    regulator_notified_at = models.DateTimeField(null=True, blank=True)
    regulator_reference = models.CharField(max_length=200, blank=True)
    regulator_notes = models.TextField(blank=True)
    data_subjects_notified_at = models.DateTimeField(null=True, blank=True)
    data_subjects_reference = models.CharField(max_length=200, blank=True)
    data_subjects_notes = models.TextField(blank=True)
    # The watchdog's bookkeeping: each warning once (WARNINGS).
    warned_24h_at = models.DateTimeField(null=True, blank=True, editable=False)
    warned_6h_at = models.DateTimeField(null=True, blank=True, editable=False)
    missed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["deadline_at", "id"]
        indexes = [
            # The watchdog's scan: clocks still running, by deadline.
            models.Index(
                fields=["deadline_at"],
                condition=Q(regulator_notified_at__isnull=True),
                name="breach_running_deadline",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(deadline_at__gt=models.F("clock_started_at")),
                name="breach_deadline_after_start",
            ),
        ]

    def __str__(self):
        return f"Breach assessment of {self.incident.reference}"

    @property
    def clock_running(self) -> bool:
        """Return True while the regulator is owed a notification (or may be: unassessed)."""
        return self.regulator_notified_at is None and self.regulator_notification_required in (
            True,
            None,
        )

    def countdown(self, now: datetime | None = None) -> Countdown:
        now = now or timezone.now()
        left = self.deadline_at - now
        if self.regulator_notified_at is not None:
            state = "notified"
        elif self.regulator_notification_required is False:
            state = "not_required"
        else:
            state = "overdue" if left <= timedelta(0) else "due"
        return Countdown(state, self.deadline_at, left)
