"""Communications: status updates, who is told what (the matrix), channels and the outbox."""

import uuid

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from incidents import extensions

from .core import Incident, Severity, Status


class Audience(models.TextChoices):
    INTERNAL = "internal", "Internal"
    PUBLIC = "public", "Public (status page)"


class StatusUpdate(models.Model):
    """A numbered update on an incident, for responders or for the status page."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    number = models.PositiveIntegerField()
    audience = models.CharField(max_length=10, choices=Audience.choices)
    status = models.CharField(
        max_length=20, choices=Status.choices, help_text="The incident's status when posted."
    )
    summary = models.TextField()
    next_update_at = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    published_at = models.DateTimeField()

    history = HistoricalRecords()

    class Meta:
        ordering = ["incident", "number"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "number"], name="one_number_per_update"),
        ]

    def __str__(self):
        return f"{self.incident.reference} update #{self.number}"


class MessageTemplate(models.Model):
    """Editable Django-template text that pre-fills updates and notifications."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    audience = models.CharField(max_length=10, choices=Audience.choices)
    subject = models.CharField(max_length=200, help_text="Django template syntax.")
    body = models.TextField(help_text="Django template syntax; {{ incident.reference }} etc.")

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook (signed JSON)"
    SLACK = "slack", "Slack-compatible incoming webhook"
    SMS = "sms", "Text message (phone gateway)"
    VOICE = "voice", "Phone call (phone gateway)"


class ChannelTarget(models.Model):
    """Somewhere messages go besides a person's email: a list, a webhook, a Slack channel."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    address = models.CharField(
        max_length=500, help_text="Email address, https:// URL or phone number (+4420…)."
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="Webhook signing secret. Write-only: never shown again after saving.",
    )
    enabled = models.BooleanField(default=True)

    history = HistoricalRecords(excluded_fields=["secret"])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"


class StakeholderGroup(models.Model):
    """A row of the communication matrix: who hears about incidents of which severities."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    severities = models.ManyToManyField(
        Severity, blank=True, related_name="stakeholder_groups", help_text="The matrix ticks."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="stakeholder_groups"
    )
    targets = models.ManyToManyField(ChannelTarget, blank=True, related_name="groups")
    via_status_page = models.BooleanField(
        default=False, help_text="Reached through public updates on the status page."
    )
    confidential_ok = models.BooleanField(
        default=False, help_text="May be told about confidential incidents."
    )

    history = HistoricalRecords(m2m_fields=[severities, members, targets])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Notification(models.Model):
    """One message to one recipient: written with its cause, delivered by a worker."""

    class Event(models.TextChoices):
        DECLARED = "declared", "Incident declared"
        # To the first escalation level only: a candidate is not yet an incident.
        TRIAGE = "triage", "Triage candidate raised"
        SEVERITY_CHANGED = "severity_changed", "Severity changed"
        STATUS_CHANGED = "status_changed", "Status changed"
        ROLE_ASSIGNED = "role_assigned", "Role assigned to you"
        ROLE_RELIEVED = "role_relieved", "Stood down from a role"
        STATUS_UPDATE = "status_update", "Status update posted"
        ESCALATION = "escalation", "Escalation"
        UPDATE_REMINDER = "update_reminder", "Update overdue reminder"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    # Other incidents the message names (a digest of action items): whoever may not see
    # one of them may not read the message, unless it was sent to them.
    mentions = models.ManyToManyField(Incident, blank=True, related_name="+")
    # The core's events (Event) and those other apps register (incidents.extensions).
    event = models.CharField(
        max_length=extensions.notification_events.max_length,
        choices=extensions.notification_event_choices,
    )
    channel = models.CharField(max_length=10, choices=ChannelKind.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    target = models.ForeignKey(
        ChannelTarget, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    address = models.CharField(max_length=500)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    # Sent with every attempt so receivers can drop duplicates (delivery is at-least-once).
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Same person, same escalation step: one page only.
    dedup_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sweeper's query: what is due now.
            models.Index(fields=["state", "next_attempt_at"], name="notification_due"),
        ]

    def __str__(self):
        return f"{self.get_event_display()} → {self.address}"


class DeliveryAttempt(models.Model):
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["notification", "number"]

    def __str__(self):
        return f"attempt {self.number}: {'ok' if self.succeeded else self.error[:60]}"
