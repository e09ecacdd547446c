"""Thin views: validate, call a service, serialize. Visibility comes from queries.py."""

from datetime import UTC

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.fields import DateTimeField
from rest_framework.response import Response

from incidents import services
from incidents.models import (
    Environment,
    Incident,
    IncidentType,
    RoleAssignment,
    Service,
    Severity,
    Source,
    Status,
)
from incidents.queries import incident_list_visible_to, with_commander, with_listed_services

from . import serializers as s
from .errors import ErrorResponse409Serializer, ErrorResponse422Serializer
from .idempotency import IDEMPOTENCY_PARAMETER, idempotent
from .pagination import StandardPagination, TimelinePagination


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 bound, refused with a 400 when it cannot be expressed in UTC
    (year 1 at +05:00): the databases would otherwise fail on it."""

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:
                raise exceptions.ValidationError(
                    {self.field_name_in_api: ["Out of the supported date range."]}, code="invalid"
                ) from None
        return super().filter(qs, value)

    def __init__(self, *args, field_name_in_api, **kwargs):
        self.field_name_in_api = field_name_in_api
        super().__init__(*args, **kwargs)


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    severity = django_filters.CharFilter(
        method="filter_severity", help_text="Key (SEV1) or alias (critical…)."
    )
    type = django_filters.ModelChoiceFilter(
        field_name="incident_type", to_field_name="slug", queryset=IncidentType.objects.all()
    )
    environment = django_filters.ChoiceFilter(choices=Environment.choices)
    service = django_filters.ModelChoiceFilter(
        field_name="services", to_field_name="slug", queryset=Service.objects.all()
    )
    open = django_filters.BooleanFilter(method="filter_open", help_text="true: not yet resolved.")
    declared_after = UTCDateTimeFilter(
        field_name="declared_at", lookup_expr="gte", field_name_in_api="declared_after"
    )
    declared_before = UTCDateTimeFilter(
        field_name="declared_at", lookup_expr="lt", field_name_in_api="declared_before"
    )

    class Meta:
        model = Incident
        fields = []

    def filter_severity(self, queryset, name, value):
        severities = Severity.objects.all()
        severity = severities.resolve(value)
        if severity is None:
            valid = ", ".join(severities.names())
            raise exceptions.ValidationError(
                {"severity": [f"Unknown severity; use one of {valid}."]}
            )
        return queryset.filter(severity=severity)

    def filter_open(self, queryset, name, value):
        return queryset.open() if value else queryset.closed()


@extend_validation_errors(["invalid"], field_name="page_size", actions=["list"], methods=["get"])
class ServiceBackedViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A resource read through querysets and written through services: list, read,
    create and PATCH (no PUT, no DELETE: records are closed, not removed)."""

    http_method_names = ["get", "post", "patch", "head", "options"]
    pagination_class = StandardPagination

    def filter_queryset(self, queryset):
        # Filters, search and ordering are for the list; a detail lookup ignores them.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def valid_input(self, serializer_class) -> dict:
        """Validate the request with an input serializer; return the data for the service."""
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


CONFLICT = {409: ErrorResponse409Serializer}
IDEMPOTENT = {"parameters": [IDEMPOTENCY_PARAMETER]}
CREATING = ["create", "roles", "timeline", "updates"]


# Errors raised outside serializers, so the schema can list them too.
@extend_validation_errors(
    ["invalid"], field_name="Idempotency-Key", actions=CREATING, methods=["post"]
)
@extend_validation_errors(["invalid", "overflow"], field_name="after", actions=["timeline"])
@extend_validation_errors(
    ["invalid"], field_name="page_size", actions=["timeline"], methods=["get"]
)
@extend_validation_errors(["invalid"], field_name="audience", actions=["updates"], methods=["post"])
@extend_validation_errors(
    ["invalid"], field_name="next_update_at", actions=["updates"], methods=["post"]
)
@extend_validation_errors(["invalid"], field_name="severity", actions=["list", "severity"])
@extend_validation_errors(
    ["invalid"], field_name="declared_after", actions=["list"], methods=["get"]
)
@extend_validation_errors(
    ["invalid"], field_name="declared_before", actions=["list"], methods=["get"]
)
@extend_schema_view(
    list=extend_schema(summary="List incidents you may see"),
    retrieve=extend_schema(summary="One incident, by reference"),
    create=extend_schema(
        summary="Declare an incident",
        request=s.IncidentCreateSerializer,
        responses={201: s.IncidentSerializer, 422: ErrorResponse422Serializer},
        **IDEMPOTENT,
    ),
    partial_update=extend_schema(
        summary="Edit title, summary, impact or services",
        request=s.IncidentUpdateSerializer,
        responses={200: s.IncidentSerializer},
    ),
)
class IncidentViewSet(ServiceBackedViewSet):
    """Incidents: declare, read, edit and run them through their lifecycle."""

    serializer_class = s.IncidentSerializer
    queryset = Incident.objects.all()
    # DELETE only for roles/{id}/ (standing down): incidents themselves are never deleted.
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_field = "reference"
    lookup_value_regex = r"INC-\d{4}-\d{4,}"
    filterset_class = IncidentFilter
    search_fields = ["reference", "title", "summary"]
    ordering_fields = ["declared_at", "updated_at", "reference", "status", "severity__rank"]

    def get_queryset(self):
        queryset = with_listed_services(
            Incident.objects.select_related("severity", "incident_type", "declared_by")
        )
        return with_commander(incident_list_visible_to(self.request.user, queryset))

    def _incident_response(
        self, incident, status_code=status.HTTP_200_OK, headers=None, *, services_=None
    ):
        """Answer with the incident as the list shows it. Given its `services_`, the
        instance is shown as it is: a declaration's incident holds everything else the
        serializer reads (its commander_username too), and no subscriber of `declared`
        changes the incident row; else it is read again (two queries)."""
        if services_ is None:
            incident = self.get_queryset().get(pk=incident.pk)
        else:
            # In the list's order (incidents.queries.with_listed_services: by name).
            incident.listed_services = sorted(services_, key=lambda service: service.name)
        data = s.IncidentSerializer(incident, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        def declare():
            data = self.valid_input(s.IncidentCreateSerializer)
            incident = services.incident_declare(
                title=data["title"],
                severity=data["severity"],
                incident_type=data["type"],
                environment=data["environment"],
                summary=data["summary"],
                services=data["services"],
                customer_impact=data["customer_impact"],
                estimated_users_affected=data.get("estimated_users_affected"),
                detection_source=data.get("detection_source"),
                started_at=data.get("started_at"),
                detected_at=data.get("detected_at"),
                confidential=data["confidential"],
                commander=data.get("commander"),
                actor=request.user,
                source=Source.API,
            )
            location = self.reverse_action("detail", kwargs={"reference": incident.reference})
            return self._incident_response(
                incident,
                status.HTTP_201_CREATED,
                {"Location": location},
                services_=data["services"],
            )

        return idempotent(request, declare)

    def partial_update(self, request, *args, **kwargs):
        incident = self.get_object()
        data = self.valid_input(s.IncidentUpdateSerializer)
        services_ = data.pop("services", None)
        incident = services.incident_update_details(
            incident=incident, actor=request.user, source=Source.API, services=services_, **data
        )
        return self._incident_response(incident)

    # --- lifecycle ------------------------------------------------------------------

    @extend_schema(
        summary="Acknowledge (declared → investigating)",
        request=None,
        responses={200: s.IncidentSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, reference=None):
        incident = services.incident_acknowledge(
            incident=self.get_object(), actor=request.user, source=Source.API
        )
        return self._incident_response(incident)

    @extend_schema(
        summary="Accept a triage candidate (triage → declared)",
        description="Declares the candidate an alert raised: the stakeholders are told now, "
        "at `severity` if given (re-rated first, with `reason` or a default one). "
        "409 if it is not in triage.",
        request=s.TriageAcceptSerializer,
        responses={200: s.IncidentSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, reference=None):
        incident = self.get_object()
        data = self.valid_input(s.TriageAcceptSerializer)
        incident = services.incident_accept(
            incident=incident,
            severity=data.get("severity"),
            reason=data["reason"],
            actor=request.user,
            source=Source.API,
        )
        return self._incident_response(incident)

    @extend_schema(
        summary="Decline a triage candidate as a false positive (triage → cancelled)",
        description="The reason goes on the timeline; nobody is notified, since it was never "
        "declared. 409 if it is not in triage.",
        request=s.TriageDeclineSerializer,
        responses={200: s.IncidentSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def decline(self, request, reference=None):
        incident = self.get_object()
        data = self.valid_input(s.TriageDeclineSerializer)
        incident = services.incident_decline(
            incident=incident, reason=data["reason"], actor=request.user, source=Source.API
        )
        return self._incident_response(incident)

    @extend_schema(
        summary="Move to another status",
        description="An illegal move answers 409 naming the statuses allowed from here.",
        request=s.TransitionSerializer,
        responses={200: s.IncidentSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, reference=None):
        incident = self.get_object()
        data = self.valid_input(s.TransitionSerializer)
        incident = services.incident_transition(
            incident=incident,
            to_status=data["status"],
            note=data["note"],
            occurred_at=data.get("occurred_at"),
            actor=request.user,
            source=Source.API,
        )
        return self._incident_response(incident)

    @extend_schema(
        summary="Change severity (with a reason)",
        request=s.SeverityChangeSerializer,
        responses={200: s.IncidentSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def severity(self, request, reference=None):
        incident = self.get_object()
        data = self.valid_input(s.SeverityChangeSerializer)
        incident = services.incident_change_severity(
            incident=incident,
            severity=data["severity"],
            reason=data["reason"],
            actor=request.user,
            source=Source.API,
        )
        return self._incident_response(incident)

    @extend_schema(
        methods=["GET"],
        summary="Role assignments, current and past",
        request=None,
        responses={200: s.RoleAssignmentSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Assign a role (hands it over from the current holder)",
        request=s.RoleAssignSerializer,
        responses={201: s.RoleAssignmentSerializer, 422: ErrorResponse422Serializer, **CONFLICT},
        **IDEMPOTENT,
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def roles(self, request, reference=None):
        incident = self.get_object()
        if request.method == "GET":
            assignments = incident.roles.select_related("user", "assigned_by")
            return Response(s.RoleAssignmentSerializer(assignments, many=True).data)

        def assign():
            data = self.valid_input(s.RoleAssignSerializer)
            assignment = services.role_assign(
                incident=incident,
                role=data["role"],
                user=data["user"],
                actor=request.user,
                source=Source.API,
            )
            assignment = RoleAssignment.objects.select_related("user", "assigned_by").get(
                pk=assignment.pk
            )
            return Response(
                s.RoleAssignmentSerializer(assignment).data, status=status.HTTP_201_CREATED
            )

        return idempotent(request, assign)

    @extend_schema(
        summary="Stand down from a role (without naming a successor)",
        description="Ends the assignment now; it stays in the roles list with `relieved_at` "
        "and the timeline says who stood down. 404 if the incident has no assignment with "
        "this `id`; 409 if it already ended. To hand a role over, POST to `roles/` instead.",
        parameters=[
            OpenApiParameter(
                "id",
                OpenApiTypes.INT,
                OpenApiParameter.PATH,
                description="The assignment's `id`, as the roles list gives it.",
            )
        ],
        request=None,
        responses={204: None, **CONFLICT},
    )
    # At most 18 digits: a larger number is no row, and would overflow the database's integer.
    @action(detail=True, methods=["delete"], url_path=r"roles/(?P<id>\d{1,18})", url_name="role")
    def stand_down(self, request, reference=None, id=None):
        assignment = self.get_object().roles.filter(pk=id).first()
        if assignment is None:
            raise exceptions.NotFound("No such role assignment on this incident.")
        services.role_relieve(assignment=assignment, actor=request.user, source=Source.API)
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- status updates ---------------------------------------------------------------

    @extend_schema(
        methods=["GET"],
        summary="Status updates, in order",
        request=None,
        responses={200: s.StatusUpdateSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Post a status update (internal, or public for the status page)",
        request=s.StatusUpdatePostSerializer,
        responses={201: s.StatusUpdateSerializer, 422: ErrorResponse422Serializer},
        **IDEMPOTENT,
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def updates(self, request, reference=None):
        incident = self.get_object()
        if request.method == "GET":
            updates = incident.updates.select_related("author")
            return Response(s.StatusUpdateSerializer(updates, many=True).data)

        def post():
            data = self.valid_input(s.StatusUpdatePostSerializer)
            update = services.status_update_post(
                incident=incident,
                audience=data["audience"],
                summary=data["summary"],
                next_update_at=data.get("next_update_at"),
                actor=request.user,
                source=Source.API,
            )
            return Response(s.StatusUpdateSerializer(update).data, status=status.HTTP_201_CREATED)

        return idempotent(request, post)

    # --- timeline -------------------------------------------------------------------

    @extend_schema(
        methods=["GET"],
        summary="The timeline, oldest first",
        parameters=[
            OpenApiParameter(
                "after",
                OpenApiTypes.DATETIME,
                description="Only events that happened after this ISO 8601 time.",
            ),
        ],
        request=None,
        responses={200: s.TimelineEventSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a note, action, decision or communication",
        request=s.TimelineEntrySerializer,
        responses={201: s.TimelineEventSerializer, 422: ErrorResponse422Serializer},
        **IDEMPOTENT,
    )
    @action(
        detail=True,
        methods=["get", "post"],
        filter_backends=[],
        pagination_class=TimelinePagination,
    )
    def timeline(self, request, reference=None):
        incident = self.get_object()
        if request.method == "POST":
            return idempotent(request, lambda: self._add_timeline_entry(incident))

        events = incident.timeline.select_related("author")
        after = request.query_params.get("after")
        if after:
            try:
                events = events.filter(occurred_at__gt=DateTimeField().to_internal_value(after))
            except exceptions.ValidationError as error:
                raise exceptions.ValidationError({"after": error.detail}) from None
        page = self.paginate_queryset(events)
        return self.get_paginated_response(s.TimelineEventSerializer(page, many=True).data)

    def _add_timeline_entry(self, incident):
        data = self.valid_input(s.TimelineEntrySerializer)
        event = services.timeline_add_entry(
            incident=incident,
            kind=data["kind"],
            summary=data["summary"],
            occurred_at=data.get("occurred_at"),
            actor=self.request.user,
            source=Source.API,
        )
        return Response(s.TimelineEventSerializer(event).data, status=status.HTTP_201_CREATED)


# Catalogue keys never hold "/" or NUL; PostgreSQL would fail on a NUL with a 500.
CATALOGUE_KEY = r"[^/\x00]+"


class ServiceViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Service.objects.all()
    serializer_class = s.ServiceSerializer
    lookup_field = "slug"
    lookup_value_regex = CATALOGUE_KEY
    search_fields = ["name", "slug", "owning_team"]
    ordering_fields = ["name", "tier"]


class SeverityViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Severity.objects.all()
    serializer_class = s.SeveritySerializer
    lookup_field = "key"
    lookup_value_regex = CATALOGUE_KEY
    pagination_class = None
    filter_backends = []


class IncidentTypeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = IncidentType.objects.all()
    serializer_class = s.IncidentTypeSerializer
    lookup_field = "slug"
    lookup_value_regex = CATALOGUE_KEY
    pagination_class = None
    filter_backends = []
