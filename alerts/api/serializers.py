"""Shapes of the alerts API: output serializers describe, input serializers validate
what the services then check again (the services are the rules; these give a 400 that
names the field before a service is even called)."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from incidents.api.serializers import (
    BoundedListField,
    SeverityField,
    SlugField,
    service_slugs,
)
from incidents.models import Environment, IncidentType

from ..models import (
    LABEL_OPERATORS,
    Alert,
    AlertSource,
    Condition,
    DetectionRule,
    Operator,
    Silence,
)
from ..sources import FORMATS

MAX_CONDITIONS = 20
# A rule waits at most a week for an alert to have fired long enough (rule_save's bound).
MAX_FIRING_FOR = 7 * 24 * 3600
MAX_PRIORITY = 2**31 - 1  # PositiveIntegerField: a PostgreSQL integer
# The try endpoint judges every alert against every rule: a page of alerts, not a flood.
MAX_TRY_ALERTS = 100

KIND_CHOICES = [(kind, fmt.label) for kind, fmt in FORMATS.items()]


def _text(model, name: str, **kwargs):
    return serializers.CharField(max_length=model._meta.get_field(name).max_length, **kwargs)


class RuleRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = DetectionRule
        fields = ["id", "name"]
        read_only_fields = fields


# --- alerts -----------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name", help_text="The alert source's name.")
    rule = RuleRefSerializer(
        allow_null=True, help_text="The detection rule that took it, if one did."
    )
    incident = serializers.CharField(
        source="incident.reference",
        default=None,
        allow_null=True,
        help_text="Reference of the incident it opened or joined.",
    )
    silenced_by = serializers.IntegerField(
        source="silenced_by_id",
        allow_null=True,
        help_text="Id of the silence holding it back (see /api/v1/silences/).",
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "source",
            "fingerprint",
            "status",
            "title",
            "labels",
            "annotations",
            "metrics",
            "generator_url",
            "starts_at",
            "ends_at",
            "first_seen_at",
            "last_seen_at",
            "resolved_at",
            "times_received",
            "rule",
            "incident",
            "silenced_by",
            "disposition",
        ]
        read_only_fields = fields

    # The JSON fields' shapes, for the schema (a mapping of names to texts or numbers).
    labels = serializers.DictField(child=serializers.CharField(), read_only=True)
    annotations = serializers.DictField(child=serializers.CharField(), read_only=True)
    metrics = serializers.DictField(child=serializers.FloatField(), read_only=True)


# --- conditions -------------------------------------------------------------------------


class ConditionSerializer(serializers.Serializer):
    """One test on a label or a metric value."""

    subject = serializers.ChoiceField(
        choices=Condition.Subject.choices, default=Condition.Subject.LABEL
    )
    key = serializers.CharField(max_length=100, help_text="Label or metric name.")
    operator = serializers.ChoiceField(
        choices=Operator.choices,
        help_text="Labels: equals, not_equals, matches (anchored regex), exists. "
        "Metrics: gt, gte, lt, lte, eq, ne.",
    )
    value = serializers.CharField(
        max_length=300,
        allow_blank=True,
        default="",
        help_text="Text, regular expression, or the threshold (a number, also as text).",
    )


class MatcherSerializer(serializers.Serializer):
    """One test on a label (silences match labels only)."""

    key = serializers.CharField(max_length=100, help_text="Label name.")
    operator = serializers.ChoiceField(
        choices=[(op.value, op.label) for op in LABEL_OPERATORS],
        help_text="equals, not_equals, matches (anchored regex) or exists.",
    )
    value = serializers.CharField(max_length=300, allow_blank=True, default="")


def conditions_of(rows) -> list[dict]:
    return [
        {"subject": row.subject, "key": row.key, "operator": row.operator, "value": row.value}
        for row in rows
    ]


@extend_schema_field(OpenApiTypes.INT)
class SecondsField(serializers.Field):
    """A duration shown as whole seconds."""

    def to_representation(self, value):
        return int(value.total_seconds())


# --- detection rules --------------------------------------------------------------------


class DetectionRuleSerializer(serializers.ModelSerializer):
    source = serializers.CharField(
        source="source.name",
        default=None,
        allow_null=True,
        help_text="Only alerts from this source (null: any).",
    )
    firing_for = SecondsField(
        allow_null=True,
        read_only=True,
        help_text="Seconds the alert must have fired before the rule matches (null: at once).",
    )
    severity = serializers.CharField(
        source="severity.key",
        default=None,
        allow_null=True,
        help_text="Null: from the alert's severity label, else the lowest.",
    )
    incident_type = serializers.CharField(
        source="incident_type.slug", default=None, allow_null=True
    )
    services = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    conditions = ConditionSerializer(many=True, read_only=True)

    class Meta:
        model = DetectionRule
        fields = [
            "id",
            "name",
            "description",
            "priority",
            "enabled",
            "source",
            "conditions",
            "firing_for",
            "action",
            "severity",
            "incident_type",
            "services",
            "service_label",
            "environment",
            "title_template",
            "group_by",
            "open_as",
            "monitor_when_resolved",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DetectionRuleUpdateSerializer(serializers.Serializer):
    """What PATCH may change; what is left out stays as it is."""

    name = _text(DetectionRule, "name", required=False)
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    priority = serializers.IntegerField(
        min_value=0,
        max_value=MAX_PRIORITY,
        required=False,
        help_text="Rules are tried from the lowest number; the first match wins.",
    )
    enabled = serializers.BooleanField(required=False)
    source = SlugField(
        slug_field="name",
        queryset=AlertSource.objects.all(),
        allow_null=True,
        required=False,
        help_text="Name of the only source whose alerts it takes (null: any).",
    )
    conditions = BoundedListField(
        child=ConditionSerializer(),
        max_length=MAX_CONDITIONS,
        required=False,
        help_text=f"All must hold; at most {MAX_CONDITIONS}. Given, they replace the rule's.",
    )
    firing_for = serializers.IntegerField(
        min_value=0,
        max_value=MAX_FIRING_FOR,
        allow_null=True,
        required=False,
        help_text="Seconds the alert must have fired before the rule matches (null: at once); "
        "at most 604800 (7 days).",
    )
    action = serializers.ChoiceField(choices=DetectionRule.Action.choices, required=False)
    severity = SeverityField(
        allow_null=True,
        required=False,
        help_text="Key (SEV1) or alias (critical…); null: from the alert's severity label.",
    )
    incident_type = SlugField(
        slug_field="slug",
        queryset=IncidentType.objects.all(),
        allow_null=True,
        required=False,
        help_text="Slug; required when the action is open.",
    )
    services = service_slugs(required=False)
    service_label = serializers.CharField(max_length=100, allow_blank=True, required=False)
    environment = serializers.ChoiceField(choices=Environment.choices, required=False)
    title_template = serializers.CharField(
        max_length=300,
        required=False,
        help_text="Incident title; {name} is a label or annotation, e.g. {alertname} on {service}.",
    )
    group_by = serializers.CharField(
        max_length=300,
        required=False,
        help_text="Alerts whose key renders the same join one open incident.",
    )
    open_as = serializers.ChoiceField(choices=DetectionRule.OpenAs.choices, required=False)
    monitor_when_resolved = serializers.BooleanField(required=False)


class DetectionRuleCreateSerializer(DetectionRuleUpdateSerializer):
    name = _text(DetectionRule, "name")


class TryPayloadField(serializers.JSONField):
    pass


extend_schema_field(
    {
        "oneOf": [{"type": "object", "additionalProperties": {}}, {"type": "array", "items": {}}],
        "description": "The body as the monitoring system would post it.",
    }
)(TryPayloadField)


class RuleTrySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES, help_text="The payload's format.")
    payload = TryPayloadField()
    source = SlugField(
        slug_field="name",
        queryset=AlertSource.objects.all(),
        required=False,
        help_text="Judge as if the payload came from this source (rules limited to a "
        "source match only its alerts).",
    )

    def validate_payload(self, value):
        if not isinstance(value, dict | list):
            raise serializers.ValidationError("Give the payload as a JSON object or list.")
        return value


class VerdictSerializer(serializers.Serializer):
    rule = RuleRefSerializer()
    matched = serializers.BooleanField(help_text="The rule takes the alert now.")
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why it does not match (empty if it does)."
    )
    waiting_until = serializers.DateTimeField(
        allow_null=True, help_text="Conditions hold; it matches once the alert has fired this long."
    )


class TryWinnerSerializer(serializers.Serializer):
    rule = RuleRefSerializer()
    action = serializers.ChoiceField(choices=DetectionRule.Action.choices)
    waiting_until = serializers.DateTimeField(allow_null=True)
    severity = serializers.CharField(allow_null=True, help_text="Of the incident it would open.")
    services = serializers.ListField(child=serializers.CharField())
    incident_title = serializers.CharField()
    group_key = serializers.CharField(help_text="Alerts with the same key join one incident.")
    silenced_by = serializers.IntegerField(
        allow_null=True, help_text="Id of the active silence that would hold it back."
    )


class TriedAlertSerializer(serializers.Serializer):
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Alert.Status.choices)
    fingerprint = serializers.CharField()
    labels = serializers.DictField(child=serializers.CharField())
    metrics = serializers.DictField(child=serializers.FloatField())
    verdicts = VerdictSerializer(many=True, help_text="Every rule, in the order they are tried.")
    winner = TryWinnerSerializer(
        allow_null=True, help_text="The first rule whose conditions hold (null: none)."
    )


class RuleTryResultSerializer(serializers.Serializer):
    alerts = TriedAlertSerializer(many=True)


# --- silences ---------------------------------------------------------------------------


class SilenceSerializer(serializers.ModelSerializer):
    services = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    matchers = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    active = serializers.SerializerMethodField(help_text="Holding alerts back now.")

    class Meta:
        model = Silence
        fields = [
            "id",
            "starts_at",
            "ends_at",
            "comment",
            "services",
            "matchers",
            "created_by",
            "created_at",
            "active",
        ]
        read_only_fields = fields

    @extend_schema_field(MatcherSerializer(many=True))
    def get_matchers(self, silence) -> list[dict]:
        return [
            {"key": row.key, "operator": row.operator, "value": row.value}
            for row in silence.matchers.all()
        ]

    def get_active(self, silence) -> bool:
        return silence.is_active(self.context.get("now"))


class SilenceUpdateSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField(required=False, help_text="Default (on create): now.")
    ends_at = serializers.DateTimeField(required=False)
    comment = _text(Silence, "comment", required=False)
    services = service_slugs(required=False)
    matchers = BoundedListField(
        child=MatcherSerializer(),
        max_length=MAX_CONDITIONS,
        required=False,
        help_text=f"Label matchers that must all hold; at most {MAX_CONDITIONS}.",
    )


class SilenceCreateSerializer(SilenceUpdateSerializer):
    ends_at = serializers.DateTimeField(help_text="At most 90 days after it starts.")
    comment = _text(Silence, "comment", help_text="Why: a maintenance, a known issue.")
    services = service_slugs(required=False, default=list)
    matchers = BoundedListField(
        child=MatcherSerializer(),
        max_length=MAX_CONDITIONS,
        required=False,
        default=list,
        help_text=f"Label matchers that must all hold; at most {MAX_CONDITIONS}. Name "
        "services, matchers or both.",
    )


# --- sources ----------------------------------------------------------------------------


class AlertSourceSerializer(serializers.ModelSerializer):
    intake_url = serializers.SerializerMethodField(help_text="Where it posts its payloads.")
    heartbeat_url = serializers.SerializerMethodField(help_text="Where it posts heartbeats.")

    class Meta:
        model = AlertSource
        fields = [
            "name",
            "kind",
            "description",
            "enabled",
            "secret_hint",
            "signature_header",
            "timestamp_header",
            "heartbeat_minutes",
            "last_heartbeat_at",
            "quiet_since",
            "created_at",
            "intake_url",
            "heartbeat_url",
        ]
        read_only_fields = fields

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_intake_url(self, source) -> str:
        return self._absolute(reverse(f"alerts-api:intake-{source.kind}"))

    def get_heartbeat_url(self, source) -> str:
        return self._absolute(reverse("alerts-api:heartbeat", kwargs={"source": source.name}))


class AlertSourceWithSecretSerializer(AlertSourceSerializer):
    secret = serializers.SerializerMethodField(
        help_text="Shown this once: it is not stored and cannot be read again (rotate it "
        "to get a new one). Send it as `Authorization: Bearer <secret>`."
    )

    class Meta(AlertSourceSerializer.Meta):
        fields = [*AlertSourceSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, source) -> str:
        return self.context["secret"]


class AlertSourceUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    enabled = serializers.BooleanField(
        required=False, help_text="A disabled source's payloads are refused (403)."
    )
    signature_header = serializers.CharField(
        max_length=100,
        allow_blank=True,
        required=False,
        help_text="Header holding the hex HMAC-SHA256 of the body, for senders that sign.",
    )
    timestamp_header = serializers.CharField(
        max_length=100,
        allow_blank=True,
        required=False,
        help_text='If this header is sent, the signature covers "<timestamp>:" + body.',
    )
    heartbeat_minutes = serializers.IntegerField(
        min_value=1,
        max_value=10080,
        allow_null=True,
        required=False,
        help_text="Expect a payload or heartbeat at least this often (null: no heartbeat).",
    )


class AlertSourceCreateSerializer(AlertSourceUpdateSerializer):
    name = serializers.CharField(
        max_length=50, help_text="Lowercase letters, digits and dashes: it is part of URLs."
    )
    kind = serializers.ChoiceField(choices=KIND_CHOICES, help_text="Payload format.")
