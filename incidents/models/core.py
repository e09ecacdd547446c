"""The incident core: catalogue, severity policy, incidents, roles and the timeline."""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from incidents import extensions


class Service(models.Model):
    """Something that can break: an API, a database, a payment provider."""

    class Tier(models.IntegerChoices):
        TIER_1 = 1, "Tier 1 – business critical"
        TIER_2 = 2, "Tier 2 – important"
        TIER_3 = 3, "Tier 3 – internal / best effort"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    owning_team = models.CharField(max_length=100, blank=True)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, default=Tier.TIER_2)
    public = models.BooleanField(default=True, help_text="Listed on the public status page.")

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class SeverityQuerySet(models.QuerySet):
    def resolve(self, value: str) -> "Severity | None":
        """Return the severity named by key, label or alias (case-insensitive), or None."""
        wanted = (value or "").strip().lower()
        for severity in self:
            names = {severity.key.lower(), severity.label.lower()}
            names.update(alias.lower() for alias in severity.aliases)
            if wanted in names:
                return severity
        return None

    def names(self) -> list[str]:
        """Return every accepted name, for error messages."""
        return [name for severity in self for name in [severity.key, *severity.aliases]]


class Severity(models.Model):
    """One row of the severity policy (SEV1–SEV4); data, so commanders can tune it."""

    key = models.CharField(max_length=10, unique=True, help_text="Short key, e.g. SEV1.")
    label = models.CharField(max_length=50)
    rank = models.PositiveSmallIntegerField(unique=True, help_text="1 is the most severe.")
    aliases = models.JSONField(
        default=list, blank=True, help_text='Other accepted names, e.g. ["critical", "p1"].'
    )
    description = models.TextField(blank=True)
    color = models.CharField(max_length=7, default="#6b7280", help_text="Hex colour in lists.")
    acknowledge_within = models.DurationField(help_text="Response time: acknowledge within.")
    update_every = models.DurationField(help_text="Status update cadence while open.")
    escalate_after = models.DurationField(help_text="Escalate when unacknowledged this long.")
    response_in_business_hours = models.BooleanField(
        default=False, help_text="Count the response time in business hours only."
    )
    postmortem_required = models.BooleanField(default=False)
    postmortem_due_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days after resolution the post-mortem is due."
    )

    objects = SeverityQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["rank"]
        verbose_name_plural = "severities"

    def __str__(self):
        return f"{self.key} {self.label}"

    def clean(self):
        aliases = self.aliases
        if not isinstance(aliases, list) or not all(
            isinstance(alias, str) and alias.strip() for alias in aliases
        ):
            raise ValidationError({"aliases": 'Give a list of names, e.g. ["critical", "p1"].'})
        self.aliases = [alias.strip().lower() for alias in aliases]
        taken = {
            name.lower()
            for other in Severity.objects.exclude(pk=self.pk)
            for name in [other.key, other.label, *other.aliases]
        }
        clashes = sorted(taken & {self.key.lower(), *self.aliases})
        if clashes:
            raise ValidationError(f"Already used by another severity: {', '.join(clashes)}.")


class IncidentType(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    confidential_by_default = models.BooleanField(
        default=False, help_text="New incidents of this type start confidential (e.g. security)."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Status(models.TextChoices):
    TRIAGE = "triage", "Triage"
    DECLARED = "declared", "Declared"
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = frozenset(
    {
        Status.TRIAGE,
        Status.DECLARED,
        Status.INVESTIGATING,
        Status.IDENTIFIED,
        Status.MONITORING,
    }
)


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"


class DetectionSource(models.TextChoices):
    MONITORING_ALERT = "monitoring_alert", "Monitoring alert"
    CUSTOMER_REPORT = "customer_report", "Customer report"
    INTERNAL_REPORT = "internal_report", "Internal report"
    AUTOMATED_CHECK = "automated_check", "Automated check"


class Source(models.TextChoices):
    """Where a change came from."""

    ADMIN = "admin", "Admin"
    API = "api", "API"
    CLI = "cli", "CLI"
    SYSTEM = "system", "System"


class IncidentQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def closed(self):
        """Return resolved, closed and cancelled incidents."""
        return self.exclude(status__in=OPEN_STATUSES)


class Incident(models.Model):
    reference = models.CharField(max_length=20, unique=True, editable=False)
    title = models.CharField(max_length=200)
    # What the public status page calls the incident; until it is set (or a public
    # update is posted) the incident stays off that page: the internal title is never
    # shown there (DESIGN.md: the public sees only what was written for it).
    public_title = models.CharField(
        max_length=200,
        blank=True,
        help_text="The title on the public status page; empty keeps the incident off it "
        "until a public update is posted.",
    )
    summary = models.TextField(blank=True)
    severity = models.ForeignKey(Severity, on_delete=models.PROTECT, related_name="incidents")
    incident_type = models.ForeignKey(
        IncidentType, on_delete=models.PROTECT, related_name="incidents", verbose_name="type"
    )
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.PRODUCTION
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DECLARED)
    services = models.ManyToManyField(Service, blank=True, related_name="incidents")
    customer_impact = models.TextField(blank=True)
    estimated_users_affected = models.PositiveIntegerField(null=True, blank=True)
    detection_source = models.CharField(
        max_length=20, choices=DetectionSource.choices, default=DetectionSource.INTERNAL_REPORT
    )
    confidential = models.BooleanField(
        default=False,
        help_text="Visible only to the security group and this incident's participants.",
    )
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="declared_incidents",
    )

    started_at = models.DateTimeField(help_text="When the impact began.")
    detected_at = models.DateTimeField(help_text="When we first knew.")
    declared_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    identified_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IncidentQuerySet.as_manager()
    history = HistoricalRecords(m2m_fields=[services])

    class Meta:
        # Triage candidates (not yet declared) first, on SQLite and PostgreSQL alike; then
        # the newest (ids follow creation), so one index gives every list its first page.
        ordering = [models.F("declared_at").desc(nulls_first=True), "-id"]
        indexes = [
            # The default order, walked forward (newest first) or backward (?ordering=
            # declared_at, with the key as tie-break): PostgreSQL's DESC is NULLS FIRST.
            # Without it the API's first page sorted every visible incident.
            models.Index(fields=["-declared_at", "-id"], name="incident_declared_order"),
            # The commander's list: open incidents, newest first.
            models.Index(fields=["status", "-declared_at"], name="incident_status_declared"),
            # ?ordering=status (the key breaks ties): the closed ones are 90 % of all.
            models.Index(fields=["status", "id"], name="incident_status_order"),
            # ?ordering=updated_at: what changed last.
            models.Index(fields=["updated_at"], name="incident_updated"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(detected_at__gte=models.F("started_at")),
                name="incident_detected_after_start",
            ),
        ]

    def __str__(self):
        return f"{self.reference} {self.title}"

    def get_absolute_url(self):
        # The war-room page: where links in notifications and pages send a responder.
        return reverse("admin:incidents_incident_warroom", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def ack_due_at(self) -> datetime | None:
        """Return when the severity policy wants this incident acknowledged."""
        if self.declared_at is None:
            return None
        from incidents.business_time import deadline

        return deadline(
            self.declared_at,
            self.severity.acknowledge_within,
            business_hours=self.severity.response_in_business_hours,
        )

    def is_ack_overdue(self, now: datetime | None = None) -> bool:
        due = self.ack_due_at
        if self.acknowledged_at is not None or due is None or not self.is_open:
            return False
        return (now or timezone.now()) > due


class ReferenceCounter(models.Model):
    """The last incident number handed out in a year; locked to allocate the next."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.year}: {self.last_number}"


class Role(models.TextChoices):
    COMMANDER = "commander", "Incident commander"
    TECHNICAL_LEAD = "technical_lead", "Technical lead"
    COMMUNICATIONS_LEAD = "communications_lead", "Communications lead"
    SECURITY_LEAD = "security_lead", "Security lead"
    SCRIBE = "scribe", "Scribe"
    SME = "sme", "Subject-matter expert"


# Every role has one holder at a time, except subject-matter experts.
MULTI_HOLDER_ROLES = frozenset({Role.SME})


class RoleAssignment(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=30, choices=Role.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="incident_roles"
    )
    assigned_at = models.DateTimeField()
    relieved_at = models.DateTimeField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["assigned_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "role"],
                condition=Q(relieved_at__isnull=True) & ~Q(role__in=sorted(MULTI_HOLDER_ROLES)),
                name="one_active_holder_per_role",
            ),
            models.UniqueConstraint(
                fields=["incident", "role", "user"],
                condition=Q(relieved_at__isnull=True),
                name="no_duplicate_active_assignment",
            ),
        ]
        indexes = [models.Index(fields=["incident", "role", "assigned_at"])]

    def __str__(self):
        return f"{self.get_role_display()}: {self.user}"

    @property
    def is_active(self) -> bool:
        return self.relieved_at is None


class TimelineEvent(models.Model):
    """One line of the incident's story; append-only."""

    class Kind(models.TextChoices):
        DECLARED = "declared", "Declared"
        STATUS_CHANGE = "status_change", "Status change"
        SEVERITY_CHANGE = "severity_change", "Severity change"
        ROLE_CHANGE = "role_change", "Role change"
        DETAILS_CHANGE = "details_change", "Details changed"
        NOTE = "note", "Note"
        ACTION = "action", "Action taken"
        DECISION = "decision", "Decision"
        COMMUNICATION = "communication", "Communication"
        ALERT = "alert", "Alert"
        ESCALATION = "escalation", "Escalation"
        CHECKLIST = "checklist", "Checklist"

    # What a person may write by hand; the rest are written by services.
    MANUAL_KINDS = (Kind.NOTE, Kind.ACTION, Kind.DECISION, Kind.COMMUNICATION)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    occurred_at = models.DateTimeField(help_text="When it happened.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was recorded.")
    # The core's kinds (Kind) and those other apps register (incidents.extensions).
    kind = models.CharField(
        max_length=extensions.timeline_kinds.max_length,
        choices=extensions.timeline_kind_choices,
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="timeline_events",
    )
    summary = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ADMIN)

    history = HistoricalRecords()

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["incident", "occurred_at"])]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.get_kind_display()}: {self.summary[:60]}"


# Named choice sets for the API schema (settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]);
# every timeline kind is incidents.extensions.timeline_kind_choices.
MANUAL_TIMELINE_KINDS = [(kind.value, kind.label) for kind in TimelineEvent.MANUAL_KINDS]
