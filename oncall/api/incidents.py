"""Paging by hand through the API: POST /api/v1/incidents/{reference}/page/ with a level of
the incident's escalation policy or a person. Thin: oncall.services.escalation pages."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.api.errors import ErrorResponse409Serializer
from incidents.models import Source
from incidents.queries import active_users, incident_list_visible_to
from incidents.services import NOTE_TEXT

from ..services.escalation import page_manually
from .pages import PageSerializer


class PageRequestSerializer(serializers.Serializer):
    level = serializers.IntegerField(
        required=False, min_value=1, max_value=32767, help_text="Page this level now…"
    )
    user = serializers.SlugRelatedField(
        slug_field="username",
        queryset=active_users(),
        required=False,
        help_text="…or this person (a username).",
    )
    message = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=NOTE_TEXT
    )

    def validate(self, data):
        if ("level" in data) == ("user" in data):
            raise serializers.ValidationError("Give a level or a user to page (one of the two).")
        return data


class PagedSerializer(serializers.Serializer):
    pages = PageSerializer(many=True, help_text="The pages started.")
    unreachable = serializers.ListField(
        child=serializers.CharField(), help_text="Who could not be paged (no contact method)."
    )
    already_paged = serializers.ListField(
        child=serializers.CharField(), help_text="Who is being paged already (not again)."
    )
    channels = serializers.ListField(
        child=serializers.CharField(), help_text="The level's channels that were told."
    )


class MayChangeIncidents(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(
            request.user
            and request.user.is_authenticated
            and request.user.has_perm("incidents.change_incident")
        )


class IncidentPageView(APIView):
    permission_classes = [MayChangeIncidents]

    @extend_schema(
        summary="Page a level of the escalation policy, or a person, now",
        description="Exactly one of `level` and `user`. The pages start at once and go on "
        "the incident's timeline; a level or person that reaches nobody is said there too "
        "and the incident's lead is told. 404 for an incident you may not see; 409 if it "
        "is closed or cancelled, or the person is already being paged by hand.",
        request=PageRequestSerializer,
        responses={201: PagedSerializer, 409: ErrorResponse409Serializer},
        tags=["incidents"],
    )
    def post(self, request, reference):
        incident = incident_list_visible_to(request.user).filter(reference=reference).first()
        if incident is None:
            raise exceptions.NotFound("No such incident, or not visible to you.")
        serializer = PageRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = page_manually(
            incident=incident,
            level=data.get("level"),
            user=data.get("user"),
            message=data["message"],
            actor=request.user,
            source=Source.API,
        )
        body = {
            "pages": PageSerializer(outcome.pages, many=True).data,
            "unreachable": [user.get_username() for user in outcome.unreachable],
            "already_paged": [user.get_username() for user in outcome.already_paged],
            "channels": [target.name for target in outcome.targets],
        }
        return Response(body, status=status.HTTP_201_CREATED)


urlpatterns = [
    path(
        "incidents/<str:reference>/page/",
        IncidentPageView.as_view(),
        name="oncall-incident-page",
    ),
]
