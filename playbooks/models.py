"""Playbooks (the checklists per incident type and severity) and each incident's own
copy of the steps it runs.

A playbook is a template: declaring an incident copies the steps of every playbook that
matches it into `ChecklistStep` rows, so editing a playbook later never changes the
checklist of an incident already running.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from simple_history.models import HistoricalRecords

from incidents.models import Incident, IncidentType, Severity, Status

TITLE_TEXT = 200
GUIDANCE_TEXT = 5_000
# The longest time-box a step may have: a week (the reference's post-incident phase).
MAX_DUE_MINUTES = 7 * 24 * 60


class Phase(models.TextChoices):
    """The reference's response phases, in the order a checklist shows them."""

    DETECTION = "detection", "Detection & Triage"
    INVESTIGATION = "investigation", "Investigation"
    CONTAINMENT = "containment", "Containment & Recovery"
    COMMUNICATION = "communication", "Communication"
    POST_INCIDENT = "post_incident", "Post-Incident"


PHASE_ORDER = {phase: index for index, phase in enumerate(Phase.values)}

# A triage candidate has no checklist yet; a closed or cancelled incident's is history.
# A resolved one's is still worked: its post-incident steps come after resolution.
NOT_WORKED = frozenset({Status.TRIAGE, Status.CLOSED, Status.CANCELLED})
WORKED_STATUSES = [status for status in Status.values if status not in NOT_WORKED]


class Playbook(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    incident_type = models.ForeignKey(
        IncidentType, on_delete=models.PROTECT, related_name="playbooks"
    )
    min_severity = models.ForeignKey(
        Severity,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="from severity",
        help_text="Runs for incidents of this severity and every more severe one.",
    )
    description = models.TextField(blank=True, max_length=GUIDANCE_TEXT)
    is_active = models.BooleanField(
        "active", default=True, help_text="An inactive playbook starts on no new incident."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["incident_type__name", "name"]

    def __str__(self):
        return self.name


class PlaybookStep(models.Model):
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="steps")
    phase = models.CharField(max_length=20, choices=Phase.choices)
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Order within the phase, smallest first."
    )
    title = models.CharField(max_length=TITLE_TEXT)
    guidance = models.TextField(blank=True, max_length=GUIDANCE_TEXT)
    runbook_url = models.URLField("runbook", blank=True, max_length=500)
    required = models.BooleanField(
        default=True,
        help_text="A required step is ticked, or skipped with a reason, before an incident "
        "of a severity that demands it may close.",
    )
    due_within = models.PositiveIntegerField(
        "due within (minutes)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DUE_MINUTES)],
        help_text="Time-box: minutes after the playbook starts (the declaration, or the "
        "re-rating that brought it in). Empty: no deadline.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["playbook", "phase", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(due_within__isnull=True)
                | Q(due_within__gte=1, due_within__lte=MAX_DUE_MINUTES),
                name="playbook_step_due_within_range",
            ),
        ]

    def __str__(self):
        return self.title


class CloseRequirement(models.Model):
    """Whether incidents of one severity may close with required steps still open."""

    severity = models.OneToOneField(
        Severity, on_delete=models.CASCADE, related_name="checklist_requirement"
    )
    steps_before_close = models.BooleanField(
        "required steps before close",
        default=False,
        help_text="Every required checklist step is ticked, or skipped with a reason, "
        "before the incident may close.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["severity__rank"]

    def __str__(self):
        rule = "required steps first" if self.steps_before_close else "may close"
        return f"{self.severity.key}: {rule}"


class ChecklistStep(models.Model):
    """One step of an incident's checklist: a copy of a playbook step (or added by hand),
    ticked or skipped through playbooks.services."""

    class Status(models.TextChoices):
        PENDING = "pending", "To do"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="checklist")
    # Where the step was copied from; the copy keeps its own text either way.
    playbook = models.ForeignKey(
        Playbook, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    playbook_step = models.ForeignKey(
        PlaybookStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    playbook_name = models.CharField(max_length=100, blank=True)
    phase = models.CharField(max_length=20, choices=Phase.choices)
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=TITLE_TEXT)
    guidance = models.TextField(blank=True)
    runbook_url = models.URLField("runbook", blank=True, max_length=500)
    required = models.BooleanField(default=True)
    due_within = models.PositiveIntegerField("due within (minutes)", null=True, blank=True)
    started_at = models.DateTimeField(help_text="When the step's clock started.")
    due_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="What was done, or why it was skipped.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["incident", "phase", "position", "pk"]
        indexes = [
            # The incident's checklist and the list column's counts.
            models.Index(fields=["incident", "status"], name="checklist_incident_status"),
            # The dashboard's overdue steps: pending, time-boxed, soonest first.
            models.Index(
                fields=["due_at"],
                condition=Q(status="pending", due_at__isnull=False),
                name="checklist_pending_due",
            ),
        ]
        constraints = [
            # A playbook's step is copied into an incident once, however often the
            # playbook is applied (a re-rating, two commanders applying it at once).
            models.UniqueConstraint(
                fields=["incident", "playbook_step"],
                condition=Q(playbook_step__isnull=False),
                name="checklist_step_once_per_incident",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", completed_at__isnull=True)
                | (~Q(status="pending") & Q(completed_at__isnull=False)),
                name="checklist_step_completed_when_not_pending",
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("admin:playbooks_checklist", args=[self.incident_id])

    @property
    def is_resolved(self) -> bool:
        return self.status != self.Status.PENDING

    def is_overdue(self, now: datetime) -> bool:
        return self.status == self.Status.PENDING and self.due_at is not None and self.due_at < now

    def was_late(self) -> bool:
        """Say whether the step was ticked after its time-box ran out."""
        return (
            self.status == self.Status.DONE
            and self.due_at is not None
            and self.completed_at is not None
            and self.completed_at > self.due_at
        )


def due_at(started_at: datetime, due_within: int | None) -> datetime | None:
    return None if due_within is None else started_at + timedelta(minutes=due_within)
