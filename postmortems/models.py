"""Blameless post-incident reviews: one per incident, written in Markdown, reviewed,
then published to stakeholders."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from incidents import extensions
from incidents.metrics import RESPONSE_MILESTONES, RESPONSE_TIMES
from incidents.models import Incident, TimelineEvent

# The sections of the reference's post-mortem and root-cause templates, in reading order,
# with the question each answers (shown to the writer as help).
SECTIONS: dict[str, tuple[str, str]] = {
    "executive_summary": (
        "Executive summary",
        "What happened, who was affected, for how long, and what we are doing about it — "
        "in a few sentences an executive can read.",
    ),
    "impact": ("Impact", "Who and what was affected, how badly, for how long."),
    "root_cause": (
        "Root cause",
        "The conditions in our systems and processes that made this possible. Describe "
        "how it happened, not who did it.",
    ),
    "detection_gaps": (
        "Detection and response gaps",
        "How we found out, how long that took, and what slowed the response.",
    ),
    "went_well": ("What went well", "What helped: keep doing it."),
    "could_improve": ("What could be improved", "Where the response or the system fell short."),
    "lessons_learned": ("Lessons learned", "What we now know that we did not before."),
}

# Sections that cannot be empty when a review is submitted.
REQUIRED_SECTIONS = ("executive_summary", "impact", "root_cause")

BLAMELESS_NOTE = (
    "This review is blameless. It looks for the conditions in our systems and processes "
    "that let the incident happen, not for someone to blame: people acted reasonably on "
    "what they knew at the time."
)


class PostMortemQuerySet(models.QuerySet):
    def overdue(self, now: datetime | None = None):
        """Return the unpublished reviews past their due time."""
        return self.exclude(status=PostMortem.Status.PUBLISHED).filter(
            due_at__lt=now or timezone.now()
        )


class PostMortem(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"

    incident = models.OneToOneField(
        Incident, on_delete=models.CASCADE, related_name="postmortem", editable=False
    )
    related_incidents = models.ManyToManyField(
        Incident, blank=True, related_name="related_postmortems"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_postmortems",
        help_text="Writes the review and sees it through to publication.",
    )
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="postmortems_participated"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="postmortems_to_review",
        help_text="Each of them approves before the review can be published.",
    )
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="From the severity policy: days after resolution."
    )
    review_meeting_at = models.DateTimeField(null=True, blank=True)
    # Which submission is under review: approvals count for the current round only.
    review_round = models.PositiveSmallIntegerField(default=0, editable=False)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    reopen_reason = models.TextField(blank=True, editable=False)
    no_action_needed = models.BooleanField(
        default=False, help_text="Tick to publish without action items; say why below."
    )
    no_action_reason = models.TextField(blank=True)

    executive_summary = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    detection_gaps = models.TextField("detection and response gaps", blank=True)
    went_well = models.TextField("what went well", blank=True)
    could_improve = models.TextField("what could be improved", blank=True)
    lessons_learned = models.TextField(blank=True)

    # The incident's facts as of the last sync (severity, services, times, roles).
    facts = models.JSONField(default=dict, blank=True, editable=False)
    # What the last sync wrote into each section; a section still equal to it has not
    # been edited, so the next sync may refresh it.
    generated = models.JSONField(default=dict, blank=True, editable=False)
    synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PostMortemQuerySet.as_manager()
    # Not related_incidents: the history page would name confidential incidents to
    # anyone who may read the review.
    history = HistoricalRecords(m2m_fields=[participants, reviewers])

    class Meta:
        verbose_name = "post-mortem"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "due_at"], name="postmortem_status_due")]

    def __str__(self):
        return f"Post-mortem {self.incident.reference}"

    def get_absolute_url(self):
        return reverse("postmortems:detail", args=[self.incident.reference])

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    def is_overdue(self, now: datetime | None = None) -> bool:
        return (
            not self.is_published
            and self.due_at is not None
            and self.due_at < (now or timezone.now())
        )

    def sections(self) -> list[tuple[str, str, str]]:
        """Return (name, title, Markdown) for each section, in reading order."""
        return [(name, title, getattr(self, name)) for name, (title, _) in SECTIONS.items()]

    def milestones(self) -> list[tuple[str, datetime]]:
        """Return (label, time) for each milestone the facts hold, in order."""
        times = self.facts.get("times", {})
        return [
            (label, datetime.fromisoformat(times[name]))
            for name, label in RESPONSE_MILESTONES
            if times.get(name)
        ]

    def metrics(self) -> list[tuple[str, timedelta]]:
        """Return (label, duration) for the response times the facts hold."""
        durations = self.facts.get("durations", {})
        return [
            (metric.label, timedelta(seconds=durations[metric.key]))
            for metric in RESPONSE_TIMES
            if durations.get(metric.key) is not None
        ]


class ContributingFactor(models.Model):
    class Category(models.TextChoices):
        TECHNICAL = "technical", "Technical"
        PROCESS = "process", "Process"
        PEOPLE = "people", "People"
        EXTERNAL = "external", "External"

    postmortem = models.ForeignKey(
        PostMortem, on_delete=models.CASCADE, related_name="contributing_factors"
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    description = models.TextField(help_text="Markdown.")
    position = models.PositiveSmallIntegerField(default=0)

    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"{self.get_category_display()}: {self.description[:60]}"


class TimelineEntry(models.Model):
    """The review's copy of one incident timeline event, with the writer's marks."""

    postmortem = models.ForeignKey(PostMortem, on_delete=models.CASCADE, related_name="timeline")
    event = models.ForeignKey(
        TimelineEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=extensions.timeline_kind_choices)
    summary = models.TextField()
    is_key = models.BooleanField("key event", default=False)
    commentary = models.TextField(blank=True, help_text="Markdown: what this moment meant.")

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "timeline entries"
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["postmortem", "event"], name="one_entry_per_timeline_event"
            )
        ]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.summary[:60]}"


class ReviewDecision(models.Model):
    """A reviewer's verdict on one submission of the review."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    postmortem = models.ForeignKey(PostMortem, on_delete=models.CASCADE, related_name="decisions")
    round = models.PositiveSmallIntegerField()
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions"
    )
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField()

    history = HistoricalRecords()

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["postmortem", "round", "reviewer"], name="one_decision_per_round"
            )
        ]

    def __str__(self):
        return f"{self.reviewer}: {self.get_decision_display()} (round {self.round})"
