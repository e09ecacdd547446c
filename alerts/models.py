"""Monitoring intake: where alerts come from, the raw payloads, the alerts, the detection
rules that turn them into incidents, their groups, and the silences that hold them back.

Alerts and raw payloads carry no simple-history: monitoring resends the same alerts
every few minutes and a repeat must cost one update, not a history row; the raw payloads
are the alerts' own record. Everything a person configures (sources, rules, silences)
and every group an incident is opened for keeps its history."""

import functools
import re
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from incidents.models import Environment, Incident, IncidentType, Service, Severity

from .sources import kind_choices


class AlertSource(models.Model):
    """One integration (an Alertmanager, a Grafana, a script) with its own secret."""

    name = models.SlugField(
        max_length=50, unique=True, help_text="Names the source in URLs (heartbeats)."
    )
    kind = models.CharField(max_length=30, choices=kind_choices, help_text="Payload format.")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(
        default=True, help_text="A disabled source's payloads are refused (403)."
    )
    # The secret itself is never stored: it is derived from SECRET_KEY and this salt
    # (see alerts.secrets), so the database alone gives no one the right to post alerts.
    secret_salt = models.CharField(max_length=64, editable=False)
    secret_hint = models.CharField(max_length=12, editable=False, blank=True)
    signature_header = models.CharField(
        max_length=100,
        default="X-Grafana-Alerting-Signature",
        help_text="Header holding the hex HMAC-SHA256 of the body, for senders that sign.",
    )
    timestamp_header = models.CharField(
        max_length=100,
        default="X-Grafana-Alerting-Timestamp",
        blank=True,
        help_text='If this header is sent, the signature covers "<timestamp>:" + body.',
    )
    heartbeat_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Expect a payload or heartbeat at least this often; silence raises an alert.",
    )
    last_heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    quiet_since = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When its heartbeat was found missing."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords(excluded_fields=["last_heartbeat_at"])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class AlertPayload(models.Model):
    """A request body exactly as it arrived, kept whether it was taken or refused."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received, not yet processed"
        PROCESSED = "processed", "Processed"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed to process"

    source = models.ForeignKey(AlertSource, on_delete=models.PROTECT, related_name="payloads")
    received_at = models.DateTimeField(default=timezone.now)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    alert_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            # A source's latest payload (heartbeats) and its list in the admin.
            models.Index(fields=["source", "-received_at"], name="alerts_payload_source_recv"),
            # The sweeper reads only what is still waiting.
            models.Index(
                fields=["received_at"],
                condition=Q(status="received"),
                name="alerts_payload_waiting",
            ),
        ]

    def __str__(self):
        return f"{self.source} payload #{self.pk} ({self.get_status_display().lower()})"


class DetectionRule(models.Model):
    """What a matching alert means: open (or join) an incident, or ignore it as noise."""

    class Action(models.TextChoices):
        OPEN = "open", "Open or join an incident"
        IGNORE = "ignore", "Ignore (known noise)"

    class OpenAs(models.TextChoices):
        TRIAGE = "triage", "Triage candidate"
        DECLARED = "declared", "Declared incident"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    priority = models.PositiveIntegerField(
        default=100, help_text="Rules are tried from the lowest number; the first match wins."
    )
    enabled = models.BooleanField(default=True)
    source = models.ForeignKey(
        AlertSource,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text="Only alerts from this source (empty: any).",
    )
    firing_for = models.DurationField(
        null=True, blank=True, help_text="Match only once the alert has fired this long."
    )
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.OPEN)
    severity = models.ForeignKey(
        Severity,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Empty: from the alert's severity label (critical, high…), else the lowest.",
    )
    incident_type = models.ForeignKey(IncidentType, on_delete=models.PROTECT, null=True, blank=True)
    services = models.ManyToManyField(Service, blank=True, related_name="+")
    service_label = models.CharField(
        max_length=100,
        blank=True,
        default="service",
        help_text="Also take the affected service from this label (its slug or name).",
    )
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.PRODUCTION
    )
    title_template = models.CharField(
        max_length=300,
        default="{alertname}",
        help_text="Incident title; {name} is a label or annotation, e.g. {alertname} on {service}.",
    )
    group_by = models.CharField(
        max_length=300,
        default="{alertname}",
        help_text="Alerts whose key renders the same join one open incident, e.g. "
        "{service}/{alertname}.",
    )
    open_as = models.CharField(max_length=10, choices=OpenAs.choices, default=OpenAs.TRIAGE)
    monitor_when_resolved = models.BooleanField(
        default=False,
        help_text="When every alert of the incident has resolved, move it to Monitoring.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(m2m_fields=[services])

    class Meta:
        ordering = ["priority", "pk"]

    def __str__(self):
        return self.name


class Operator(models.TextChoices):
    """How a condition compares: on labels (text) or on metric values (numbers)."""

    EQUALS = "equals", "="
    NOT_EQUALS = "not_equals", "≠"
    MATCHES = "matches", "matches regex"
    EXISTS = "exists", "exists"
    GT = "gt", ">"
    GTE = "gte", "≥"
    LT = "lt", "<"
    LTE = "lte", "≤"
    EQ = "eq", "== (number)"
    NE = "ne", "!= (number)"


LABEL_OPERATORS = (Operator.EQUALS, Operator.NOT_EQUALS, Operator.MATCHES, Operator.EXISTS)
METRIC_OPERATORS = (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE, Operator.EQ, Operator.NE)


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


class Condition(models.Model):
    """One test on an alert's labels or metric values; a rule's conditions must all hold."""

    class Subject(models.TextChoices):
        LABEL = "label", "Label"
        METRIC = "metric", "Metric value"

    subject = models.CharField(max_length=10, choices=Subject.choices, default=Subject.LABEL)
    key = models.CharField(max_length=100, help_text="Label or metric name.")
    operator = models.CharField(max_length=12, choices=Operator.choices)
    value = models.CharField(
        max_length=300, blank=True, help_text="Text, regular expression or number."
    )

    class Meta:
        abstract = True

    def __str__(self):
        if self.operator == Operator.EXISTS:
            return f"{self.key} exists"
        return f"{self.key} {self.get_operator_display()} {self.value}"

    def failure(self, labels: dict, metrics: dict) -> str | None:
        """Return None when the condition holds, else why it does not."""
        if self.subject == self.Subject.METRIC:
            if self.key not in metrics:
                return f"no metric value {self.key}"
            actual, threshold = metrics[self.key], float(self.value)
            holds = {
                Operator.GT: actual > threshold,
                Operator.GTE: actual >= threshold,
                Operator.LT: actual < threshold,
                Operator.LTE: actual <= threshold,
                Operator.EQ: actual == threshold,
                Operator.NE: actual != threshold,
            }[self.operator]
            return None if holds else f"{self.key} is {actual:g}, so not {self}"
        actual = labels.get(self.key)
        if self.operator == Operator.EXISTS:
            return None if actual is not None else f"no label {self.key}"
        if self.operator == Operator.NOT_EQUALS:
            return None if actual != self.value else f"{self.key} is {self.value!r}"
        if actual is None:
            return f"no label {self.key}"
        if self.operator == Operator.EQUALS:
            return None if actual == self.value else f"{self.key} is {actual!r}, not {self.value!r}"
        # Anchored, as Prometheus and Alertmanager match label regexes.
        if compiled(self.value).fullmatch(actual):
            return None
        return f"{self.key} {actual!r} does not match /{self.value}/"


class RuleCondition(Condition):
    rule = models.ForeignKey(DetectionRule, on_delete=models.CASCADE, related_name="conditions")

    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]


class Silence(models.Model):
    """A window (maintenance, known noise) in which matching alerts are kept but open
    nothing: for some services, for alerts matching label conditions, or both."""

    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    comment = models.CharField(max_length=300, help_text="Why: a maintenance, a known issue.")
    services = models.ManyToManyField(Service, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords(m2m_fields=[services])

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="alerts_silence_window")]

    def __str__(self):
        return f"{self.comment} (until {timezone.localtime(self.ends_at):%Y-%m-%d %H:%M})"

    def is_active(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.starts_at <= at < self.ends_at


class SilenceMatcher(Condition):
    silence = models.ForeignKey(Silence, on_delete=models.CASCADE, related_name="matchers")

    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]


class AlertGroup(models.Model):
    """The alerts one open incident holds, by the key its rule's `group_by` renders."""

    key = models.CharField(max_length=400)
    rule = models.ForeignKey(DetectionRule, on_delete=models.SET_NULL, null=True, blank=True)
    # Null only inside the transaction that claims the key and then opens the incident.
    incident = models.OneToOneField(
        Incident, on_delete=models.CASCADE, null=True, related_name="alert_group"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    all_resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # Never two incidents for one problem: a concurrent second insert of the key
            # fails, and its writer joins the first's incident (services.claim_group).
            models.UniqueConstraint(
                fields=["key"], condition=Q(closed_at__isnull=True), name="one_open_group_per_key"
            )
        ]

    def __str__(self):
        return self.key


class Alert(models.Model):
    """One alert as monitoring knows it, by fingerprint: repeats update it, a resolution
    ends it, and a firing after that is a new row."""

    class Status(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    source = models.ForeignKey(AlertSource, on_delete=models.PROTECT, related_name="alerts")
    fingerprint = models.CharField(max_length=128)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FIRING)
    title = models.CharField(max_length=300)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    generator_url = models.CharField(max_length=1000, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    times_received = models.PositiveIntegerField(default=1)
    rule = models.ForeignKey(
        DetectionRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    group = models.ForeignKey(
        AlertGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    silenced_by = models.ForeignKey(
        Silence, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    disposition = models.CharField(
        max_length=300, blank=True, help_text="What the rules made of it, in words."
    )
    # When a firing alert without an incident is looked at again: a rule's "firing for"
    # time is up, or the silence holding it ends.
    evaluate_at = models.DateTimeField(null=True, blank=True)
    last_payload = models.ForeignKey(
        AlertPayload, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            # One firing alert per fingerprint: two requests carrying the same new alert
            # at once make one row (the second insert fails and updates the first's).
            models.UniqueConstraint(
                fields=["source", "fingerprint"],
                condition=Q(status="firing"),
                name="one_firing_alert_per_fingerprint",
            )
        ]
        indexes = [
            models.Index(fields=["-last_seen_at"], name="alerts_alert_last_seen"),
            models.Index(fields=["fingerprint", "-last_seen_at"], name="alerts_alert_fingerprint"),
            models.Index(
                fields=["evaluate_at"],
                condition=Q(evaluate_at__isnull=False),
                name="alerts_alert_evaluate_due",
            ),
        ]

    def __str__(self):
        return f"{self.title} [{self.fingerprint[:12]}]"
