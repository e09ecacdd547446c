"""Thin views over remediation.services; visibility and figures from remediation.queries."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.api.errors import ErrorResponse409Serializer, ErrorResponse422Serializer
from incidents.api.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from incidents.api.views import ServiceBackedViewSet
from incidents.models import Source
from postmortems.models import PostMortem

from .. import services
from ..models import ActionItem
from ..queries import action_item_list_visible_to, remediation_report, report_filters_from
from . import serializers as s

CONFLICT = {409: ErrorResponse409Serializer}


class ActionItemFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ActionItem.Status.choices)
    priority = django_filters.MultipleChoiceFilter(choices=ActionItem.Priority.choices)
    category = django_filters.ChoiceFilter(choices=ActionItem.Category.choices)
    owner = django_filters.CharFilter(method="filter_owner", help_text='Username, or "me".')
    team = django_filters.CharFilter()
    incident = django_filters.CharFilter(field_name="incident__reference")
    postmortem = django_filters.CharFilter(
        field_name="postmortem__incident__reference",
        help_text="Incident reference of the post-mortem that asked for the items.",
    )
    overdue = django_filters.BooleanFilter(
        method="filter_overdue", help_text="true: unfinished and past the due date."
    )

    class Meta:
        model = ActionItem
        fields = []

    def filter_owner(self, queryset, name, value):
        if value == "me":
            return queryset.filter(owner=self.request.user)
        return queryset.filter(owner__username=value)

    def filter_overdue(self, queryset, name, value):
        overdue = queryset.overdue()
        return overdue if value else queryset.exclude(pk__in=overdue.values("pk"))


@extend_validation_errors(["invalid"], field_name="Idempotency-Key", actions=["create"])
@extend_validation_errors(
    ["invalid"], field_name="postmortem", actions=["create"], methods=["post"]
)
@extend_validation_errors(["invalid"], field_name="owner", actions=["create", "partial_update"])
@extend_validation_errors(["invalid"], field_name="title", actions=["create", "partial_update"])
@extend_validation_errors(
    ["invalid"], field_name="tracker_url", actions=["create", "partial_update"]
)
@extend_validation_errors(["invalid"], field_name="note", actions=["updates"], methods=["post"])
@extend_schema_view(
    list=extend_schema(summary="List the action items you may see"),
    retrieve=extend_schema(summary="One action item"),
    create=extend_schema(
        summary="Record follow-up work for an incident or its post-mortem",
        request=s.ActionItemCreateSerializer,
        responses={201: s.ActionItemSerializer, 422: ErrorResponse422Serializer, **CONFLICT},
        parameters=[IDEMPOTENCY_PARAMETER],
    ),
    partial_update=extend_schema(
        summary="Change title, owner, due date, priority, tracker…",
        request=s.ActionItemPatchSerializer,
        responses={200: s.ActionItemSerializer},
    ),
)
class ActionItemViewSet(ServiceBackedViewSet):
    """Action items: the follow-up work of incidents and their reviews, tracked to done."""

    serializer_class = s.ActionItemSerializer
    queryset = ActionItem.objects.all()
    filterset_class = ActionItemFilter
    search_fields = ["title", "incident__reference", "tracker_key"]
    ordering_fields = ["due_on", "priority", "created_at", "updated_at"]

    def get_queryset(self):
        queryset = ActionItem.objects.select_related("incident", "owner", "completed_by")
        return action_item_list_visible_to(self.request.user, queryset)

    def _respond(self, item, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=item.pk)
        return Response(s.ActionItemSerializer(fresh).data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        def record():
            data = self.valid_input(s.ActionItemCreateSerializer)
            reviewed = data.pop("postmortem", None)
            postmortem = None
            if reviewed is not None:
                postmortem = PostMortem.objects.filter(incident=reviewed).first()
                if postmortem is None:
                    raise exceptions.ValidationError(
                        {"postmortem": [f"{reviewed.reference} has no post-mortem."]}
                    )
            item = services.action_item_create(
                postmortem=postmortem, actor=request.user, source=Source.API, **data
            )
            location = self.reverse_action("detail", kwargs={"pk": item.pk})
            return self._respond(item, status.HTTP_201_CREATED, {"Location": location})

        return idempotent(request, record)

    def partial_update(self, request, *args, **kwargs):
        item = self.get_object()
        data = self.valid_input(s.ActionItemPatchSerializer)
        item = services.action_item_update(item=item, actor=request.user, source=Source.API, **data)
        return self._respond(item)

    @extend_schema(
        methods=["GET"],
        summary="Progress: status changes and notes, oldest first",
        request=None,
        responses={200: s.ActionItemUpdateSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a progress note, or move the item (with the note as reason)",
        request=s.ProgressSerializer,
        responses={201: s.ActionItemSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filter_backends=[])
    def updates(self, request, pk=None):
        item = self.get_object()
        if request.method == "GET":
            updates = item.updates.select_related("author")
            return Response(s.ActionItemUpdateSerializer(updates, many=True).data)
        data = self.valid_input(s.ProgressSerializer)
        if data.get("status"):
            item = services.action_item_transition(
                item=item,
                to_status=data["status"],
                note=data["note"],
                actor=request.user,
                source=Source.API,
            )
        else:
            services.action_item_note(
                item=item, note=data["note"], actor=request.user, source=Source.API
            )
        return self._respond(item, status.HTTP_201_CREATED)


class ReportPermission(permissions.BasePermission):
    """The same permission as the report's admin page."""

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user and user.is_authenticated and user.has_perm("remediation.view_remediationreport")
        )


@extend_validation_errors(["invalid"], field_name="created_from", methods=["get"])
@extend_validation_errors(["invalid"], field_name="created_to", methods=["get"])
@extend_validation_errors(["invalid"], field_name="service", methods=["get"])
@extend_validation_errors(["invalid"], field_name="severity", methods=["get"])
class RemediationReportView(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(
        summary="The remediation report: counts, completion, blockers, overdue",
        parameters=[
            OpenApiParameter("created_from", OpenApiTypes.DATE),
            OpenApiParameter("created_to", OpenApiTypes.DATE),
            OpenApiParameter("service", str, description="Service slug."),
            OpenApiParameter("team", str),
            OpenApiParameter("severity", str, description="Severity key, e.g. SEV1."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        # A refused filter is a 400 naming the field (the domain error's mapping).
        filters = report_filters_from(request.query_params)
        report = remediation_report(request.user, filters)
        return Response(report_as_json(report))


def report_as_json(report: dict) -> dict:
    def item(row, extra):
        entry = row["item"]
        return {
            "id": entry.pk,
            "title": entry.title,
            "incident": entry.incident.reference,
            "owner": entry.owner.get_username() if entry.owner else None,
            "priority": entry.priority,
            "due_on": entry.due_on,
            **{key: row[key] for key in extra},
        }

    return {
        "generated_at": report["generated_at"],
        "summary": report["summary"],
        "median_days_to_complete": report["median_days_to_complete"],
        "by_status": report["by_status"],
        "by_priority": report["by_priority"],
        "by_category": report["by_category"],
        "by_team": report["by_team"],
        "by_service": report["by_service"],
        "blockers": [
            {**item(row, ["blocked_days", "stale"]), "blocked_reason": row["item"].blocked_reason}
            for row in report["blockers"]
        ],
        "overdue": [item(row, ["days_overdue"]) for row in report["overdue"]],
    }
