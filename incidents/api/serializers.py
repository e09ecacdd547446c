"""Shapes of the API: input serializers validate, output serializers describe."""

import copy

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from incidents.metrics import MILESTONE_FIELDS
from incidents.models import (
    MANUAL_TIMELINE_KINDS,
    Audience,
    DetectionSource,
    Environment,
    Incident,
    IncidentType,
    Role,
    RoleAssignment,
    Service,
    Severity,
    Status,
    StatusUpdate,
    TimelineEvent,
)
from incidents.queries import active_users
from incidents.services import LONG_TEXT, NOTE_TEXT

# Generous, but bounded: a body is a message, not a file upload.
MAX_USERS_AFFECTED = 2_000_000_000
# Every list a client sends is capped: 10,000 services once held a worker for 5 s.
MAX_SERVICES = 50


@extend_schema_field(OpenApiTypes.STR)
class SeverityField(serializers.Field):
    """A severity by key (`SEV1`) or alias (`critical`); shown as its key."""

    default_error_messages = {"unknown": "Unknown severity {value!r}; use one of {valid}."}

    def to_internal_value(self, data):
        severities = Severity.objects.all()
        severity = severities.resolve(str(data)) if isinstance(data, str | int) else None
        if severity is None:
            self.fail("unknown", value=data, valid=", ".join(severities.names()))
        return severity

    def to_representation(self, value):
        return value.key


class SlugField(serializers.SlugRelatedField):
    """SlugRelatedField that refuses NUL characters before PostgreSQL does (with a 500)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class BoundedListField(serializers.ListField):
    """A list of at most `max_length` items, refused as a whole before any item is looked
    at (DRF's ListField validates every item first and counts them last). Every list
    input of the API is one of these: `max_length` is required.

    A bad item is reported on the list itself, its position and field in the message:
    the schema can name the list's fields but not a position ("factors.3.category")."""

    default_error_messages = {"invalid": "Item {item}: {message}"}

    def __init__(self, *, max_length: int, **kwargs):
        super().__init__(max_length=max_length, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict):
                raise
            self.fail("invalid", **_first_item_error(error.detail))


def _first_item_error(detail: dict) -> dict:
    """Return the first error of a list's items as {"item": "3 (category)", "message": …}."""
    index, detail = next(iter(detail.items()))
    fields = []
    while isinstance(detail, dict | list):
        if isinstance(detail, list):
            detail = detail[0]
            continue
        name, detail = next(iter(detail.items()))
        if name != api_settings.NON_FIELD_ERRORS_KEY:
            fields.append(str(name))
    item = f"{index} ({'.'.join(fields)})" if fields else str(index)
    return {"item": item, "message": str(detail)}


class SlugListField(BoundedListField):
    """Up to `max_length` rows of `queryset` named by their `slug_field`, found with one
    query for the whole list (SlugRelatedField(many=True) runs one per item). The error
    names every unknown value; a value given twice counts once; the order is kept."""

    default_error_messages = {"does_not_exist": "No such {kind}: {values}."}

    def __init__(self, *, queryset, slug_field, max_length, **kwargs):
        self.queryset = queryset
        self.slug_field = slug_field
        longest = queryset.model._meta.get_field(slug_field).max_length
        child = serializers.CharField(max_length=longest)
        super().__init__(child=child, max_length=max_length, **kwargs)

    def get_queryset(self):
        return self.queryset.all()

    def to_internal_value(self, data):
        values = list(dict.fromkeys(super().to_internal_value(data)))
        rows = self.get_queryset().filter(**{f"{self.slug_field}__in": values})
        found = {getattr(row, self.slug_field): row for row in rows}
        unknown = [value for value in values if value not in found]
        if unknown:
            kind = self.queryset.model._meta.verbose_name
            self.fail("does_not_exist", kind=kind, values=", ".join(map(repr, unknown)))
        return [found[value] for value in values]

    def to_representation(self, value):
        return [getattr(row, self.slug_field) for row in value]


def username_field(**kwargs):
    return SlugField(slug_field="username", queryset=active_users(), **kwargs)


def service_slugs(**kwargs):
    return SlugListField(
        slug_field="slug",
        queryset=Service.objects.all(),
        max_length=MAX_SERVICES,
        help_text=f"Service slugs, at most {MAX_SERVICES}.",
        **kwargs,
    )


# --- catalogue ------------------------------------------------------------------------


class ServiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["slug", "name", "description", "owning_team", "tier"]


class SeveritySerializer(serializers.ModelSerializer):
    class Meta:
        model = Severity
        fields = [
            "key",
            "label",
            "rank",
            "aliases",
            "description",
            "acknowledge_within",
            "update_every",
            "escalate_after",
            "response_in_business_hours",
            "postmortem_required",
            "postmortem_due_days",
        ]


class IncidentTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentType
        fields = ["slug", "name", "description", "confidential_by_default"]


# --- incidents: output ----------------------------------------------------------------


class FieldsBuiltOnce:
    """A ModelSerializer that builds its fields from the model once per process, not
    once per response: DRF inspects every model field again (labels, help texts,
    validators) for each serializer it makes, about a third of a list response's time.
    Each serializer still gets its own copies, bound to it."""

    def get_fields(self):
        cls = type(self)
        if "_built_fields" not in cls.__dict__:
            cls._built_fields = super().get_fields()
        return copy.deepcopy(cls._built_fields)


class ServiceSlugsField(serializers.ListField):
    """The incident's service slugs. A list reads them from `listed_services`, a plain
    list prefetched once for the page (see `incidents.queries.with_listed_services`):
    a related manager per row costs more than the rest of the row."""

    child = serializers.CharField()

    def get_attribute(self, instance):
        services = getattr(instance, "listed_services", None)
        if services is None:
            services = instance.services.all()
        return [service.slug for service in services]


class IncidentSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name="api:incident-detail", lookup_field="reference"
    )
    severity = serializers.CharField(source="severity.key")
    type = serializers.CharField(source="incident_type.slug")
    services = ServiceSlugsField(read_only=True)
    declared_by = serializers.CharField(
        source="declared_by.username", default=None, allow_null=True
    )
    commander = serializers.CharField(
        source="commander_username",
        default=None,
        allow_null=True,
        help_text="Current incident commander.",
    )
    ack_due_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the policy wants it acknowledged."
    )

    class Meta:
        model = Incident
        fields = [
            "reference",
            "url",
            "title",
            "public_title",
            "summary",
            "status",
            "severity",
            "type",
            "environment",
            "services",
            "customer_impact",
            "estimated_users_affected",
            "detection_source",
            "confidential",
            "declared_by",
            "commander",
            *MILESTONE_FIELDS,
            "ack_due_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, incident):
        """The declared fields, written out: DRF's field-by-field walk was half the time
        of a page of 50. The declarations above stay the schema; a test holds the two
        equal (tests/incidents/test_api.py::test_incident_representation_is_drfs)."""
        if not hasattr(self, "_url_around"):
            self._url_around = _detail_url_around(self.context.get("request"))
        zone = timezone.get_current_timezone()

        def when(value):  # DRF's DateTimeField in ISO 8601, once per value, not per field
            if value is None:
                return None
            text = value.astimezone(zone).isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text

        services = getattr(incident, "listed_services", None)
        if services is None:
            services = incident.services.all()
        declared_by = incident.declared_by
        data = {
            "reference": incident.reference,
            "url": incident.reference.join(self._url_around),
            "title": incident.title,
            "public_title": incident.public_title,
            "summary": incident.summary,
            "status": incident.status,
            "severity": incident.severity.key,
            "type": incident.incident_type.slug,
            "environment": incident.environment,
            "services": [service.slug for service in services],
            "customer_impact": incident.customer_impact,
            "estimated_users_affected": incident.estimated_users_affected,
            "detection_source": incident.detection_source,
            "confidential": incident.confidential,
            "declared_by": declared_by.username if declared_by else None,
            "commander": getattr(incident, "commander_username", None),
        }
        for name in MILESTONE_FIELDS:
            data[name] = when(getattr(incident, name))
        data["ack_due_at"] = when(incident.ack_due_at)
        data["created_at"] = when(incident.created_at)
        data["updated_at"] = when(incident.updated_at)
        return data


_REFERENCE_SLOT = "INC-0000-0000"


def _detail_url_around(request) -> tuple[str, str]:
    """The incident's API address before and after its reference: reversed once a
    response, not once a row."""
    path = reverse("api:incident-detail", kwargs={"reference": _REFERENCE_SLOT})
    url = request.build_absolute_uri(path) if request is not None else path
    before, after = url.split(_REFERENCE_SLOT)
    return before, after


class RoleAssignmentSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    assigned_by = serializers.CharField(
        source="assigned_by.username", default=None, allow_null=True
    )

    class Meta:
        model = RoleAssignment
        fields = ["id", "role", "user", "assigned_at", "relieved_at", "assigned_by"]
        read_only_fields = fields


class TimelineEventSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, allow_null=True)

    class Meta:
        model = TimelineEvent
        fields = [
            "id",
            "occurred_at",
            "created_at",
            "kind",
            "author",
            "summary",
            "details",
            "source",
        ]
        read_only_fields = fields


# --- incidents: input -----------------------------------------------------------------


class IncidentCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=Incident._meta.get_field("title").max_length)
    severity = SeverityField(help_text="Key (SEV1) or alias (critical, high, medium, low).")
    type = SlugField(slug_field="slug", queryset=IncidentType.objects.all())
    environment = serializers.ChoiceField(
        choices=Environment.choices, default=Environment.PRODUCTION
    )
    summary = serializers.CharField(max_length=LONG_TEXT, allow_blank=True, default="")
    services = service_slugs(required=False, default=list)
    customer_impact = serializers.CharField(max_length=LONG_TEXT, allow_blank=True, default="")
    estimated_users_affected = serializers.IntegerField(
        min_value=0, max_value=MAX_USERS_AFFECTED, required=False, allow_null=True
    )
    detection_source = serializers.ChoiceField(choices=DetectionSource.choices, required=False)
    started_at = serializers.DateTimeField(required=False, help_text="When impact began.")
    detected_at = serializers.DateTimeField(required=False, help_text="When it was noticed.")
    confidential = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Default: the type's default."
    )
    commander = username_field(required=False, help_text="Username to make commander.")


class IncidentUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(
        max_length=Incident._meta.get_field("title").max_length, required=False
    )
    public_title = serializers.CharField(
        max_length=Incident._meta.get_field("public_title").max_length,
        allow_blank=True,
        required=False,
        help_text="The title on the public status page; empty keeps the incident off it "
        "until a public update is posted.",
    )
    summary = serializers.CharField(max_length=LONG_TEXT, allow_blank=True, required=False)
    customer_impact = serializers.CharField(max_length=LONG_TEXT, allow_blank=True, required=False)
    estimated_users_affected = serializers.IntegerField(
        min_value=0, max_value=MAX_USERS_AFFECTED, required=False, allow_null=True
    )
    detection_source = serializers.ChoiceField(choices=DetectionSource.choices, required=False)
    services = service_slugs(required=False)


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    note = serializers.CharField(max_length=NOTE_TEXT, allow_blank=True, default="")
    occurred_at = serializers.DateTimeField(required=False, help_text="Default: now.")


class SeverityChangeSerializer(serializers.Serializer):
    severity = SeverityField(help_text="Key (SEV1) or alias (critical, high, medium, low).")
    reason = serializers.CharField(max_length=NOTE_TEXT)


class TriageAcceptSerializer(serializers.Serializer):
    severity = SeverityField(
        required=False,
        help_text="Re-rate on acceptance, before stakeholders are told: key (SEV1) or alias.",
    )
    reason = serializers.CharField(
        max_length=NOTE_TEXT,
        allow_blank=True,
        default="",
        help_text="On the timeline (and as the severity change's reason).",
    )


class TriageDeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=NOTE_TEXT, help_text="Why it is a false positive; on the timeline."
    )


class RoleAssignSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    user = username_field(help_text="Username of the new holder.")


class TimelineEntrySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=MANUAL_TIMELINE_KINDS,
        default=TimelineEvent.Kind.NOTE,
    )
    summary = serializers.CharField(max_length=NOTE_TEXT)
    occurred_at = serializers.DateTimeField(required=False, help_text="Default: now.")


class StatusUpdateSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, allow_null=True)

    class Meta:
        model = StatusUpdate
        fields = [
            "number",
            "audience",
            "status",
            "summary",
            "next_update_at",
            "author",
            "published_at",
        ]
        read_only_fields = fields


class StatusUpdatePostSerializer(serializers.Serializer):
    audience = serializers.ChoiceField(choices=Audience.choices)
    summary = serializers.CharField(max_length=NOTE_TEXT)
    next_update_at = serializers.DateTimeField(
        required=False, help_text="Default: now plus the severity's update cadence."
    )
