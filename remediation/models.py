"""Action items: the follow-up work an incident or its review asks for, tracked to done."""

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from incidents.models import Incident
from postmortems.models import PostMortem

# Still to be done: what reminders, "overdue" and the report's open counts look at.
UNFINISHED_STATUSES = ("open", "in_progress", "blocked")


class ActionItemQuerySet(models.QuerySet):
    def unfinished(self):
        return self.filter(status__in=UNFINISHED_STATUSES)

    def overdue(self, today: date | None = None):
        return self.unfinished().filter(due_on__lt=today or timezone.localdate())

    def stale_blocked(self, now=None):
        """Return the items blocked for longer than ACTION_ITEM_BLOCKED_FLAG_DAYS."""
        cutoff = (now or timezone.now()) - settings.ACTION_ITEM_BLOCKED_FLAG
        return self.filter(status=ActionItem.Status.BLOCKED, blocked_at__lt=cutoff)


class ActionItem(models.Model):
    class Category(models.TextChoices):
        TECHNICAL = "technical", "Technical"
        PROCESS = "process", "Process"
        TRAINING = "training", "Training"

    class Priority(models.TextChoices):
        P1 = "P1", "P1 urgent"
        P2 = "P2", "P2 high"
        P3 = "P3", "P3 medium"
        P4 = "P4", "P4 low"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        BLOCKED = "blocked", "Blocked"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    class Effort(models.TextChoices):
        SMALL = "small", "Small"
        MEDIUM = "medium", "Medium"
        LARGE = "large", "Large"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="action_items")
    postmortem = models.ForeignKey(
        PostMortem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_items",
        help_text="The review that asked for it; empty for follow-ups noted during response.",
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    category = models.CharField(max_length=20, choices=Category.choices)
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_items",
    )
    team = models.CharField(max_length=100, blank=True)
    due_on = models.DateField(help_text="Default: from the priority (ACTION_ITEM_DUE_DAYS).")
    effort = models.CharField(max_length=10, choices=Effort.choices, default=Effort.MEDIUM)
    tracker_key = models.CharField(
        "tracker issue", max_length=50, blank=True, help_text="e.g. OPS-1234 in Jira."
    )
    tracker_url = models.URLField("tracker link", blank=True)
    blocked_reason = models.TextField(blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True, editable=False)
    wont_do_reason = models.TextField(blank=True)
    verification_note = models.TextField(
        blank=True, help_text="How we know the fix works (a test, a drill, a graph)."
    )
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ActionItemQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["due_on", "priority", "id"]
        indexes = [
            # Reminders and "overdue": unfinished items by due date.
            models.Index(fields=["status", "due_on"], name="actionitem_status_due"),
            models.Index(fields=["owner", "status"], name="actionitem_owner_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="done") | Q(completed_at__isnull=False),
                name="actionitem_done_has_completed_at",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in UNFINISHED_STATUSES

    def is_overdue(self, today: date | None = None) -> bool:
        return self.is_open and self.due_on < (today or timezone.localdate())


class ActionItemUpdate(models.Model):
    """One step in an item's progress: a status change or a note, by someone, at a time."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        STATUS = "status", "Status change"
        CHANGE = "change", "Changed"
        NOTE = "note", "Note"

    item = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="updates")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    note = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_item_updates",
    )
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} on #{self.item_id}: {self.note[:60]}"


class RemediationReport(ActionItem):
    """No table: the admin index's link to the remediation report page."""

    class Meta:
        proxy = True
        verbose_name = "remediation report"
        verbose_name_plural = "remediation report"
