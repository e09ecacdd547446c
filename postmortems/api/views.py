"""Thin views over postmortems.services; visibility from postmortems.queries."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from incidents.api.errors import ErrorResponse409Serializer, ErrorResponse422Serializer
from incidents.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from incidents.api.views import ServiceBackedViewSet
from incidents.models import Service, Severity, Source

from .. import services
from ..models import PostMortem
from ..queries import postmortem_list_visible_to, with_visible_related
from . import serializers as s

CONFLICT = {409: ErrorResponse409Serializer}


class PostMortemFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=PostMortem.Status.choices)
    severity = django_filters.ModelChoiceFilter(
        field_name="incident__severity", to_field_name="key", queryset=Severity.objects.all()
    )
    service = django_filters.ModelChoiceFilter(
        field_name="incident__services", to_field_name="slug", queryset=Service.objects.all()
    )
    owner = django_filters.CharFilter(field_name="owner__username")
    overdue = django_filters.BooleanFilter(
        method="filter_overdue", help_text="true: unpublished and past its due time."
    )

    class Meta:
        model = PostMortem
        fields = []

    def filter_overdue(self, queryset, name, value):
        overdue = queryset.overdue()
        return overdue if value else queryset.exclude(pk__in=overdue.values("pk"))


# Refusals raised by the services rather than by serializers, so the schema lists them.
@extend_validation_errors(["invalid"], field_name="Idempotency-Key", actions=["create"])
@extend_validation_errors(["invalid"], field_name="incident", actions=["create"])
@extend_validation_errors(["invalid"], field_name="owner", actions=["create", "partial_update"])
@extend_validation_errors(
    ["invalid"],
    field_name="reviewers",
    actions=["partial_update", "submit"],
)
@extend_validation_errors(["invalid"], field_name="status", actions=["submit"], methods=["post"])
@extend_validation_errors(["invalid"], field_name="owner", actions=["submit"], methods=["post"])
# The remediation app's publish guard: "no action needed" must say why.
@extend_validation_errors(
    ["invalid"], field_name="no_action_reason", actions=["publish"], methods=["post"]
)
@extend_validation_errors(["invalid"], field_name="timeline", actions=["partial_update"])
@extend_validation_errors(
    ["invalid"], field_name="contributing_factors", actions=["partial_update"]
)
@extend_validation_errors(["invalid"], field_name="due_at", actions=["partial_update"])
@extend_validation_errors(["invalid"], field_name="review_meeting_at", actions=["partial_update"])
@extend_validation_errors(["invalid"], field_name="comment", actions=["request_changes"])
@extend_validation_errors(["invalid"], field_name="reason", actions=["reopen"])
@extend_schema_view(
    list=extend_schema(summary="List the post-mortems you may read"),
    retrieve=extend_schema(summary="One post-mortem, by incident reference"),
    create=extend_schema(
        summary="Start the post-mortem of an incident (filled in from its record)",
        request=s.PostMortemCreateSerializer,
        responses={201: s.PostMortemSerializer, 422: ErrorResponse422Serializer, **CONFLICT},
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
    partial_update=extend_schema(
        summary="Edit sections, people, dates, factors and timeline marks",
        request=s.PostMortemUpdateSerializer,
        responses={200: s.PostMortemSerializer, **CONFLICT},
    ),
)
class PostMortemViewSet(ServiceBackedViewSet):
    """Post-mortems: start, write, review, publish and reopen blameless reviews."""

    serializer_class = s.PostMortemSerializer
    queryset = PostMortem.objects.all()
    lookup_field = "incident__reference"
    lookup_url_kwarg = "reference"
    lookup_value_regex = r"INC-\d{4}-\d{4,}"
    filterset_class = PostMortemFilter
    search_fields = ["incident__reference", "incident__title", "executive_summary"]
    ordering_fields = ["created_at", "due_at", "published_at"]

    def get_queryset(self):
        queryset = PostMortem.objects.select_related(
            "incident__severity", "owner", "published_by"
        ).prefetch_related(
            "reviewers",
            "participants",
            "contributing_factors",
            "timeline",
            "decisions__reviewer",
        )
        user = self.request.user
        return with_visible_related(user, postmortem_list_visible_to(user, queryset))

    def _respond(self, postmortem, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=postmortem.pk)
        data = s.PostMortemSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        def start():
            data = self.valid_input(s.PostMortemCreateSerializer)
            postmortem = services.postmortem_create(
                incident=data["incident"],
                owner=data.get("owner"),
                actor=request.user,
                source=Source.API,
            )
            location = self.reverse_action(
                "detail", kwargs={"reference": postmortem.incident.reference}
            )
            return self._respond(postmortem, status.HTTP_201_CREATED, {"Location": location})

        return idempotent(request, start)

    def partial_update(self, request, *args, **kwargs):
        postmortem = self.get_object()
        data = self.valid_input(s.PostMortemUpdateSerializer)
        if "contributing_factors" in data:
            data["contributing_factors"] = [
                (factor["category"], factor["description"])
                for factor in data["contributing_factors"]
            ]
        if "timeline" in data:
            data["timeline_marks"] = {
                mark["id"]: (mark["is_key"], mark.get("commentary"))
                for mark in data.pop("timeline")
            }
        postmortem = services.postmortem_update(
            postmortem=postmortem, actor=request.user, source=Source.API, **data
        )
        return self._respond(postmortem)

    # --- the review workflow --------------------------------------------------------

    @extend_schema(
        summary="Bring in what the incident recorded since (keeps the writer's edits)",
        request=None,
        responses={200: s.PostMortemSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, reference=None):
        postmortem = self.get_object()
        services.postmortem_sync(postmortem=postmortem, actor=request.user, source=Source.API)
        return self._respond(postmortem)

    @extend_schema(
        summary="Submit the draft to its reviewers",
        request=None,
        responses={200: s.PostMortemSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, reference=None):
        postmortem = self.get_object()
        services.postmortem_submit(postmortem=postmortem, actor=request.user, source=Source.API)
        return self._respond(postmortem)

    @extend_schema(
        summary="Approve the submission (named reviewers only)",
        request=s.CommentSerializer,
        responses={200: s.PostMortemSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, reference=None):
        postmortem = self.get_object()
        data = self.valid_input(s.CommentSerializer)
        services.postmortem_approve(
            postmortem=postmortem, actor=request.user, comment=data["comment"], source=Source.API
        )
        return self._respond(postmortem)

    @extend_schema(
        summary="Send it back to the owner as a draft, saying what to change",
        request=s.RequiredCommentSerializer,
        responses={200: s.PostMortemSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request, reference=None):
        postmortem = self.get_object()
        data = self.valid_input(s.RequiredCommentSerializer)
        services.postmortem_request_changes(
            postmortem=postmortem, actor=request.user, comment=data["comment"], source=Source.API
        )
        return self._respond(postmortem)

    @extend_schema(
        summary="Publish to stakeholders (every named reviewer approved)",
        request=None,
        responses={200: s.PostMortemSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, reference=None):
        postmortem = self.get_object()
        services.postmortem_publish(postmortem=postmortem, actor=request.user, source=Source.API)
        return self._respond(postmortem)

    @extend_schema(
        summary="Reopen a published review as a draft (with a reason)",
        request=s.ReasonSerializer,
        responses={200: s.PostMortemSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request, reference=None):
        postmortem = self.get_object()
        data = self.valid_input(s.ReasonSerializer)
        services.postmortem_reopen(
            postmortem=postmortem, actor=request.user, reason=data["reason"], source=Source.API
        )
        return self._respond(postmortem)
