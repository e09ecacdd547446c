"""On-call: teams, their rotations and overrides, people's contact methods and paging
rules, pages, team activation and escalation policies."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from incidents.models import ChannelKind, ChannelTarget, Incident, IncidentType, Role, Service
from incidents.models.policy import validate_time_zone


class OnCallRole(models.TextChoices):
    """The incident roles (incidents.Role) a rotation can staff, and a plain responder."""

    COMMANDER = Role.COMMANDER.value, Role.COMMANDER.label
    TECHNICAL_LEAD = Role.TECHNICAL_LEAD.value, Role.TECHNICAL_LEAD.label
    COMMUNICATIONS_LEAD = Role.COMMUNICATIONS_LEAD.value, Role.COMMUNICATIONS_LEAD.label
    SECURITY_LEAD = Role.SECURITY_LEAD.value, Role.SECURITY_LEAD.label
    SCRIBE = Role.SCRIBE.value, Role.SCRIBE.label
    RESPONDER = "responder", "Responder (on-call engineer)"


class Urgency(models.TextChoices):
    HIGH = "high", "High urgency (SEV1/SEV2, critical triage)"
    LOW = "low", "Low urgency"


class Team(models.Model):
    """People who own services and take turns on call for them."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="oncall_teams"
    )
    services = models.ManyToManyField(
        Service, blank=True, related_name="oncall_teams", help_text="The services it owns."
    )
    escalation_policy = models.ForeignKey(
        "EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="teams",
        help_text="Empty: the default policy.",
    )
    is_default = models.BooleanField(
        default=False,
        help_text="Activated for incidents whose services no team owns (one team at most).",
    )

    history = HistoricalRecords(m2m_fields=[members, services])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_team"
            ),
        ]

    def __str__(self):
        return self.name


class Rotation(models.Model):
    """Members of a team who take one role in turn: a shift each, handed over at the same
    local time every period. Several rotations of one team and role are layers: where a
    higher layer has someone on call (within its daily window, if it has one), it wins."""

    class Period(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        CUSTOM = "custom", "Every N days"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rotations")
    role = models.CharField(max_length=20, choices=OnCallRole.choices)
    name = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    starts_on = models.DateField(help_text="The first shift starts on this day…")
    handoff_time = models.TimeField(help_text="…at this local time, as does every handover.")
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.WEEKLY)
    period_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="For “every N days”: N."
    )
    ends_on = models.DateField(null=True, blank=True, help_text="Empty: runs on.")
    layer = models.PositiveSmallIntegerField(
        default=1, help_text="Where layers overlap, the higher one is on call."
    )
    window_starts = models.TimeField(
        null=True, blank=True, help_text="On call only from this local time each day…"
    )
    window_ends = models.TimeField(
        null=True, blank=True, help_text="…to this one (follow-the-sun). Empty: all day."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["team", "role", "-layer", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="one_rotation_name_per_team"),
            models.CheckConstraint(
                condition=~Q(period="custom") | Q(period_days__gte=1),
                name="custom_period_has_days",
            ),
            models.CheckConstraint(
                condition=Q(window_starts__isnull=True, window_ends__isnull=True)
                | Q(window_starts__isnull=False, window_ends__isnull=False),
                name="window_has_both_ends",
            ),
        ]

    def __str__(self):
        return f"{self.team}: {self.name}"

    def clean(self):
        if self.period == self.Period.CUSTOM and not self.period_days:
            raise ValidationError({"period_days": "Say every how many days the shift changes."})
        if (self.window_starts is None) != (self.window_ends is None):
            raise ValidationError("Give the daily window both ends, or neither.")
        if self.window_starts is not None and self.window_starts == self.window_ends:
            raise ValidationError("The daily window must not start and end at the same time.")
        if self.ends_on and self.ends_on <= self.starts_on:
            raise ValidationError({"ends_on": "The rotation must end after it starts."})

    @property
    def days_per_shift(self) -> int:
        return {self.Period.DAILY: 1, self.Period.WEEKLY: 7}.get(self.period, self.period_days)


class RotationMember(models.Model):
    """One person's place in a rotation's order."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rotation_places"
    )
    position = models.PositiveSmallIntegerField()

    history = HistoricalRecords()

    class Meta:
        ordering = ["rotation", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["rotation", "position"], name="one_member_per_position"
            ),
        ]

    def __str__(self):
        return f"{self.rotation} #{self.position}: {self.user}"


class Override(models.Model):
    """Someone covering a rotation (or one person's shifts in it) for a while; it wins
    over the rotation. Overlapping overrides apply in the order they were made, so a
    later one can cover the cover."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="oncall_overrides",
        help_text="Who is on call instead.",
    )
    covers = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Whose shifts it takes (a swap). Empty: whoever is on call.",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="override_ends_after_start"
            ),
        ]
        indexes = [
            # "Who is on call at X" reads the overrides in force at X.
            models.Index(fields=["ends_at", "starts_at"], name="override_in_force"),
        ]

    def __str__(self):
        return f"{self.user} covers {self.covers or 'the rotation'} ({self.rotation})"


def new_feed_salt() -> str:
    return secrets.token_hex(16)


class ContactMethod(models.Model):
    """Where a person can be paged: an address on one of the delivery channels."""

    KINDS = [
        ChannelKind.EMAIL,
        ChannelKind.SMS,
        ChannelKind.VOICE,
        ChannelKind.SLACK,
        ChannelKind.WEBHOOK,
    ]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_methods"
    )
    kind = models.CharField(max_length=10, choices=[(kind.value, kind.label) for kind in KINDS])
    address = models.CharField(max_length=500)
    label = models.CharField(max_length=100, blank=True, help_text="e.g. “work phone”.")
    verified_at = models.DateTimeField(
        null=True, blank=True, help_text="When its owner followed the test message's link."
    )
    verification_sent_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["user", "kind", "address"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "address"], name="one_contact_method_per_address"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.address}"


class PagingRule(models.Model):
    """One step of how a person wants to be paged: by this method, this long after the
    page, repeated every so often a number of times, until they acknowledge."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="paging_rules"
    )
    urgency = models.CharField(max_length=10, choices=Urgency.choices)
    contact_method = models.ForeignKey(
        ContactMethod, on_delete=models.CASCADE, related_name="paging_rules"
    )
    delay = models.DurationField(default=timedelta(0), help_text="After the page starts.")
    repeat_every = models.DurationField(null=True, blank=True)
    repeat_times = models.PositiveSmallIntegerField(
        default=0, help_text="How many more times, every “repeat every”."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["user", "urgency", "delay", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(repeat_times=0) | Q(repeat_every__isnull=False),
                name="repeat_has_interval",
            ),
        ]

    def __str__(self):
        return f"{self.get_urgency_display()}: {self.contact_method} after {self.delay}"


class OnCallProfile(models.Model):
    """A person's on-call settings: the salt of their secret calendar feed URL."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oncall_profile"
    )
    feed_salt = models.CharField(max_length=32, default=new_feed_salt)

    history = HistoricalRecords(excluded_fields=["feed_salt"])

    def __str__(self):
        return f"On-call profile of {self.user}"


class EscalationPolicy(models.Model):
    """Who is paged, level by level, while an incident waits or is stuck."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(
        default=False, help_text="Used for incidents whose team has no policy of its own."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_policy"
            ),
        ]

    def __str__(self):
        return self.name


class PolicyLevel(models.Model):
    """A level of a policy: paged when the incident is still unacknowledged `delay` after
    its declaration (empty: the severity's own timing, the core ladder's rule), or stuck."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="levels")
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    delay = models.DurationField(
        null=True,
        blank=True,
        help_text="After the declaration. Empty: at the severity's acknowledgement deadline, "
        "then one escalation delay per level.",
    )
    incident_team = models.BooleanField(
        default=False, help_text="Whoever is on call for the incident's own team (any role)."
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    rotations = models.ManyToManyField(
        Rotation, blank=True, related_name="+", help_text="Whoever is on call in it."
    )
    teams = models.ManyToManyField(
        Team, blank=True, related_name="+", help_text="Whoever is on call for the team."
    )
    targets = models.ManyToManyField(ChannelTarget, blank=True, related_name="+")

    history = HistoricalRecords(m2m_fields=[users, rotations, teams, targets])

    class Meta:
        ordering = ["policy", "number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="one_level_number"),
        ]

    def __str__(self):
        return f"L{self.number} {self.name}"


class ActivationRule(models.Model):
    """The reference's team activation, as data: declaring (or raising to) this severity
    staffs this role from the on-call rotation, for the types listed (empty: all)."""

    severity = models.ForeignKey(
        "incidents.Severity", on_delete=models.CASCADE, related_name="activation_rules"
    )
    role = models.CharField(
        max_length=20, choices=[(value, label) for value, label in Role.choices if value != "sme"]
    )
    incident_types = models.ManyToManyField(
        IncidentType, blank=True, related_name="+", help_text="Empty: every type."
    )

    history = HistoricalRecords(m2m_fields=[incident_types])

    class Meta:
        ordering = ["severity", "role"]
        constraints = [
            models.UniqueConstraint(fields=["severity", "role"], name="one_rule_per_role"),
        ]

    def __str__(self):
        return f"{self.severity.key}: {self.get_role_display()}"


class StuckRule(models.Model):
    """When an acknowledged incident of a severity counts as stuck, and whom it pages."""

    severity = models.OneToOneField(
        "incidents.Severity", on_delete=models.CASCADE, related_name="stuck_rule"
    )
    no_update_for = models.DurationField(
        null=True, blank=True, help_text="Stuck with no status update for this long."
    )
    not_mitigated_in = models.DurationField(
        null=True, blank=True, help_text="Stuck when not mitigated this long after declaration."
    )
    level = models.PositiveSmallIntegerField(
        default=2, help_text="The policy level paged when it is stuck."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["severity"]

    def __str__(self):
        return f"{self.severity.key} stuck rule"


class Page(models.Model):
    """One person paged about one incident: its plan of messages (what their paging rules
    said when it started), sent step by step until they acknowledge or it is stopped."""

    class Reason(models.TextChoices):
        ACTIVATION = "activation", "Team activation"
        TRIAGE = "triage", "Triage"
        ESCALATION = "escalation", "Not acknowledged"
        STUCK = "stuck", "Stuck"
        MANUAL = "manual", "Paged by hand"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="pages")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pages"
    )
    reason = models.CharField(max_length=12, choices=Reason.choices)
    urgency = models.CharField(max_length=10, choices=Urgency.choices)
    role = models.CharField(max_length=20, blank=True)
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    # [{"after": seconds, "channel": …, "address": …}], sorted by "after".
    plan = models.JSONField(default=list)
    steps_sent = models.PositiveSmallIntegerField(default=0)
    # The next step's time; empty once every step is sent, or the page is answered.
    next_step_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_via = models.CharField(max_length=20, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_because = models.CharField(max_length=200, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The paging watchdog reads only the pages with a step due: its cost follows
            # them, not the incidents or the pages already answered.
            models.Index(
                fields=["next_step_at"], condition=Q(next_step_at__isnull=False), name="page_due"
            ),
            models.Index(fields=["incident", "user"], name="page_of_incident"),
        ]

    def __str__(self):
        return f"Page {self.pk}: {self.user} for {self.incident.reference}"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None and self.stopped_at is None

    @property
    def state(self) -> str:
        """ "acknowledged", "stopped" (before anyone answered) or "open"."""
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "stopped" if self.stopped_at is not None else "open"


class Escalation(models.Model):
    """That an incident reached a level of its policy for a reason: written once, so a
    watchdog that runs twice pages nobody twice. Pages by hand are not recorded here."""

    class Reason(models.TextChoices):
        UNACKNOWLEDGED = "unacknowledged", "Not acknowledged"
        NO_UPDATE = "no_update", "Stuck: no status update"
        NOT_MITIGATED = "not_mitigated", "Stuck: not mitigated"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    level = models.PositiveSmallIntegerField()
    # For "no update": the update deadline missed, so each missed deadline escalates once.
    due_at = models.DateTimeField()
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["incident", "fired_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "reason", "level", "due_at"], name="one_escalation_per_step"
            ),
        ]

    def __str__(self):
        return f"{self.incident.reference} L{self.level} ({self.get_reason_display()})"
