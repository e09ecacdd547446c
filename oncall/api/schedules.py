"""The schedule over the API: teams, rotations and overrides (read and written through
oncall.services.schedules), and who is on call at an instant."""

import re
from datetime import UTC

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from incidents.api.serializers import SlugField, SlugListField, service_slugs, username_field
from incidents.api.views import ServiceBackedViewSet
from incidents.models import Source
from incidents.queries import active_users

from ..models import EscalationPolicy, OnCallRole, Override, Rotation, Team
from ..schedule import members_prefetch, on_call
from ..services import schedules as services

User = get_user_model()
NUMERIC_ID = r"\d{1,18}"
MAX_ID = 10**18 - 1
MAX_TEAM_MEMBERS = 500


# --- fields -----------------------------------------------------------------------------


class RowField(serializers.PrimaryKeyRelatedField):
    """A row by id. Anything but a whole number (or its digits) is the wrong type; a
    number out of range names no row, without reaching the database's integer. Only
    `incorrect_type` and `does_not_exist` come out, the codes the error schema lists
    for a related field (a `pk_field` would add its own, undocumented)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and re.fullmatch(NUMERIC_ID, data):
            data = int(data)
        # A bool is an int in Python; true is still not an id.
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


def _row(queryset, **kwargs):
    """A RowField; the schema shows the range of ids it takes."""
    return RowField(
        queryset=queryset,
        # Only describes the id in the schema: RowField checks the value itself.
        pk_field=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        **kwargs,
    )


class UTCDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its offset, refused when it cannot be expressed in UTC."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                given = parse_datetime(value.strip())
            except ValueError:
                given = None
            if given is not None and timezone.is_naive(given):
                # A naive time would be read in the server's zone: say which you mean.
                raise serializers.ValidationError(
                    "Give the time with its offset (Z or +01:00), so it is unambiguous."
                )
        parsed = super().to_internal_value(value)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise serializers.ValidationError("Out of the supported date range.") from None


class MemberOrderField(SlugListField):
    """Usernames in the order they take shifts; a name given twice is refused (the
    shared list field would quietly keep one)."""

    default_error_messages = {"twice": "{value} is in the order twice; each takes one place."}

    def to_internal_value(self, data):
        if isinstance(data, list):
            seen = set()
            for value in data:
                # Anything not text is refused item by item below; it cannot be twice.
                if not isinstance(value, str):
                    continue
                if value in seen:
                    self.fail("twice", value=value)
                seen.add(value)
        return super().to_internal_value(data)


def member_order(**kwargs):
    return MemberOrderField(
        slug_field="username",
        queryset=active_users(),
        max_length=services.MAX_MEMBERS,
        help_text=f"Usernames in the order they take shifts, at most {services.MAX_MEMBERS}.",
        **kwargs,
    )


def team_members(**kwargs):
    return SlugListField(
        slug_field="username",
        queryset=active_users(),
        max_length=MAX_TEAM_MEMBERS,
        help_text=f"Usernames, at most {MAX_TEAM_MEMBERS}.",
        **kwargs,
    )


# --- teams ------------------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    services = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = Team
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "members",
            "services",
            "escalation_policy",
            "is_default",
        ]
        read_only_fields = fields


class TeamUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    slug = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, trim_whitespace=False
    )
    members = team_members(required=False)
    services = service_slugs(required=False)
    escalation_policy = _row(
        EscalationPolicy.objects.all(),
        required=False,
        allow_null=True,
        help_text="Escalation policy id; null: the default policy.",
    )
    is_default = serializers.BooleanField(required=False)


class TeamCreateSerializer(TeamUpdateSerializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.CharField(
        max_length=100, required=False, help_text="Default: made from the name."
    )


TEAM_WRITES = ["create", "partial_update"]


@extend_validation_errors(["invalid"], field_name="name", actions=TEAM_WRITES)
@extend_validation_errors(["invalid"], field_name="slug", actions=TEAM_WRITES)
@extend_validation_errors(["invalid"], field_name="is_default", actions=TEAM_WRITES)
@extend_schema_view(
    list=extend_schema(summary="List on-call teams"),
    retrieve=extend_schema(summary="One team, by slug"),
    create=extend_schema(
        summary="Add a team",
        request=TeamCreateSerializer,
        responses={201: TeamSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a team",
        description="Fields left out stay as they are; `members` and `services`, when "
        "given, replace the team's.",
        request=TeamUpdateSerializer,
        responses={200: TeamSerializer},
    ),
    destroy=extend_schema(summary="Remove a team, with its rotations and their overrides"),
)
class TeamViewSet(mixins.DestroyModelMixin, ServiceBackedViewSet):
    """Teams: the people who own services and take turns on call for them."""

    serializer_class = TeamSerializer
    queryset = Team.objects.all()
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,100}"
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name"]

    def get_queryset(self):
        return Team.objects.prefetch_related(
            Prefetch("members", queryset=User.objects.order_by("username")),
            "services",
        ).order_by("name")

    def _respond(self, team, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=team.pk)
        data = TeamSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        data = self.valid_input(TeamCreateSerializer)
        team = services.team_create(actor=request.user, source=Source.API, **data)
        location = self.reverse_action("detail", kwargs={"slug": team.slug})
        return self._respond(team, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        team = self.get_object()
        data = self.valid_input(TeamUpdateSerializer)
        team = services.team_update(team=team, actor=request.user, source=Source.API, **data)
        return self._respond(team)

    def perform_destroy(self, instance):
        services.team_delete(team=instance, actor=self.request.user, source=Source.API)


# --- rotations --------------------------------------------------------------------------


class RotationSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    members = serializers.SerializerMethodField(help_text="Usernames in the order of turns.")

    class Meta:
        model = Rotation
        fields = [
            "id",
            "team",
            "role",
            "name",
            "time_zone",
            "starts_on",
            "handoff_time",
            "period",
            "period_days",
            "ends_on",
            "layer",
            "window_starts",
            "window_ends",
            "members",
        ]
        read_only_fields = fields

    def get_members(self, rotation) -> list[str]:
        return [member.user.username for member in rotation.members.all()]


class RotationUpdateSerializer(serializers.Serializer):
    team = SlugField(slug_field="slug", queryset=Team.objects.all(), required=False)
    role = serializers.ChoiceField(choices=OnCallRole.choices, required=False)
    name = serializers.CharField(max_length=100, required=False)
    time_zone = serializers.CharField(
        max_length=64, required=False, help_text="An IANA name, e.g. Europe/London."
    )
    starts_on = serializers.DateField(required=False)
    handoff_time = serializers.TimeField(required=False, help_text="Local time, HH:MM.")
    period = serializers.ChoiceField(choices=Rotation.Period.choices, required=False)
    period_days = serializers.IntegerField(
        min_value=1, max_value=services.MAX_PERIOD_DAYS, required=False, allow_null=True
    )
    ends_on = serializers.DateField(required=False, allow_null=True)
    layer = serializers.IntegerField(min_value=1, max_value=services.MAX_LAYER, required=False)
    window_starts = serializers.TimeField(required=False, allow_null=True)
    window_ends = serializers.TimeField(required=False, allow_null=True)
    members = member_order(required=False)


class RotationCreateSerializer(RotationUpdateSerializer):
    team = SlugField(slug_field="slug", queryset=Team.objects.all(), help_text="Team slug.")
    role = serializers.ChoiceField(choices=OnCallRole.choices)
    name = serializers.CharField(max_length=100)
    starts_on = serializers.DateField(help_text="The day of the first handover.")
    handoff_time = serializers.TimeField(help_text="Local time of every handover, HH:MM.")
    members = member_order(required=False, default=list)


class RotationFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug.")
    role = django_filters.ChoiceFilter(choices=OnCallRole.choices)

    class Meta:
        model = Rotation
        fields = []


ROTATION_WRITES = ["create", "partial_update"]


def _rotation_errors(cls):
    for field in ("name", "time_zone", "period_days", "ends_on", "window_starts", "window_ends"):
        cls = extend_validation_errors(["invalid"], field_name=field, actions=ROTATION_WRITES)(cls)
    return extend_validation_errors(["invalid"], field_name="members", actions=ROTATION_WRITES)(cls)


@_rotation_errors
@extend_schema_view(
    list=extend_schema(summary="List rotations"),
    retrieve=extend_schema(summary="One rotation"),
    create=extend_schema(
        summary="Add a rotation",
        description="Shift k starts at `handoff_time` (local to `time_zone`) on "
        "`starts_on` + k × the period; members take shifts in the order given. It stops at "
        "the handover time on `ends_on`. A daily window limits it to those local hours.",
        request=RotationCreateSerializer,
        responses={201: RotationSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a rotation",
        description="Fields left out stay as they are; `members`, when given, is the new order.",
        request=RotationUpdateSerializer,
        responses={200: RotationSerializer},
    ),
    destroy=extend_schema(summary="Remove a rotation and its overrides"),
)
class RotationViewSet(mixins.DestroyModelMixin, ServiceBackedViewSet):
    """Rotations: members of a team who take one role in turn."""

    serializer_class = RotationSerializer
    queryset = Rotation.objects.all()
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_value_regex = NUMERIC_ID
    filterset_class = RotationFilter
    search_fields = ["name"]
    ordering_fields = ["name", "layer"]

    def get_queryset(self):
        return (
            Rotation.objects.select_related("team")
            .prefetch_related(members_prefetch())
            .order_by("team__name", "role", "-layer", "name")
        )

    def _respond(self, rotation, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=rotation.pk)
        data = RotationSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        data = self.valid_input(RotationCreateSerializer)
        rotation = services.rotation_create(actor=request.user, source=Source.API, **data)
        location = self.reverse_action("detail", kwargs={"pk": rotation.pk})
        return self._respond(rotation, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        rotation = self.get_object()
        data = self.valid_input(RotationUpdateSerializer)
        rotation = services.rotation_update(
            rotation=rotation, actor=request.user, source=Source.API, **data
        )
        return self._respond(rotation)

    def perform_destroy(self, instance):
        services.rotation_delete(rotation=instance, actor=self.request.user, source=Source.API)


# --- overrides --------------------------------------------------------------------------


class OverrideSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="rotation.team.slug", read_only=True)
    user = serializers.CharField(source="user.username")
    covers = serializers.CharField(source="covers.username", default=None, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Override
        fields = [
            "id",
            "rotation",
            "team",
            "user",
            "covers",
            "starts_at",
            "ends_at",
            "reason",
            "created_by",
        ]
        read_only_fields = fields


class OverrideUpdateSerializer(serializers.Serializer):
    user = username_field(required=False, help_text="Username of who is on call instead.")
    covers = username_field(
        required=False,
        allow_null=True,
        help_text="Username whose shifts it takes (a swap); null: whoever is on call.",
    )
    starts_at = UTCDateTimeField(required=False)
    ends_at = UTCDateTimeField(required=False)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True)


class OverrideCreateSerializer(OverrideUpdateSerializer):
    rotation = _row(Rotation.objects.all(), help_text="Rotation id.")
    user = username_field(help_text="Username of who is on call instead.")
    starts_at = UTCDateTimeField()
    ends_at = UTCDateTimeField()


class OverrideFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="rotation__team__slug", help_text="Team slug.")
    rotation = django_filters.NumberFilter(
        field_name="rotation_id", min_value=1, max_value=MAX_ID, help_text="Rotation id."
    )
    user = django_filters.CharFilter(field_name="user__username", help_text="Username.")
    upcoming = django_filters.BooleanFilter(
        method="filter_upcoming", help_text="true: not ended yet."
    )

    class Meta:
        model = Override
        fields = []

    def filter_upcoming(self, queryset, name, value):
        now = timezone.now()
        return queryset.filter(ends_at__gt=now) if value else queryset.filter(ends_at__lte=now)


OVERRIDE_WRITES = ["create", "partial_update"]


@extend_validation_errors(["invalid"], field_name="covers", actions=OVERRIDE_WRITES)
@extend_validation_errors(["invalid"], field_name="ends_at", actions=OVERRIDE_WRITES)
@extend_validation_errors(["invalid"], field_name="reason", actions=OVERRIDE_WRITES)
@extend_schema_view(
    list=extend_schema(summary="List overrides, latest starting first"),
    retrieve=extend_schema(summary="One override"),
    create=extend_schema(
        summary="Put someone on call instead, for a while",
        description="With `covers`, it takes only that member's shifts (a swap); without, "
        "whoever is on call. Overlapping overrides apply in the order they were made, so a "
        "later one can cover the cover.",
        request=OverrideCreateSerializer,
        responses={201: OverrideSerializer},
    ),
    partial_update=extend_schema(
        summary="Change an override",
        request=OverrideUpdateSerializer,
        responses={200: OverrideSerializer},
    ),
    destroy=extend_schema(summary="Remove an override"),
)
class OverrideViewSet(mixins.DestroyModelMixin, ServiceBackedViewSet):
    """Overrides: someone covering a rotation, or one member's shifts in it."""

    serializer_class = OverrideSerializer
    queryset = Override.objects.all()
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_value_regex = NUMERIC_ID
    filterset_class = OverrideFilter
    search_fields = ["reason"]
    ordering_fields = ["starts_at", "ends_at"]

    def get_queryset(self):
        return Override.objects.select_related(
            "rotation__team", "user", "covers", "created_by"
        ).order_by("-starts_at", "-pk")

    def _respond(self, override, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=override.pk)
        data = OverrideSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        data = self.valid_input(OverrideCreateSerializer)
        override = services.override_create(actor=request.user, source=Source.API, **data)
        location = self.reverse_action("detail", kwargs={"pk": override.pk})
        return self._respond(override, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        override = self.get_object()
        data = self.valid_input(OverrideUpdateSerializer)
        override = services.override_update(
            override=override, actor=request.user, source=Source.API, **data
        )
        return self._respond(override)

    def perform_destroy(self, instance):
        services.override_delete(override=instance, actor=self.request.user, source=Source.API)


# --- who is on call ---------------------------------------------------------------------


class OnCallRotationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    layer = serializers.IntegerField()


class OnCallSerializer(serializers.Serializer):
    team = serializers.CharField(source="team.slug")
    role = serializers.CharField()
    user = serializers.CharField(source="user.username")
    rotation = OnCallRotationSerializer()
    override = serializers.IntegerField(source="override.pk", default=None, allow_null=True)
    starts_at = serializers.DateTimeField(help_text="When this stretch began.")
    ends_at = serializers.DateTimeField(
        allow_null=True, help_text="The next handover, window end or override end."
    )


class OnCallAnswerSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    on_call = OnCallSerializer(many=True)


# A "+" in a query string reads as a space: "10:00:00 01:00" is "10:00:00+01:00".
SPACED_OFFSET = re.compile(r" (\d{2}(:?\d{2})?)$")


def _instant(value: str):
    text = SPACED_OFFSET.sub(r"+\1", value.strip())
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise exceptions.ValidationError(
            {"at": ["Give an ISO 8601 time, e.g. 2026-03-30T09:00:00Z."]}
        )
    if timezone.is_naive(parsed):
        raise exceptions.ValidationError(
            {"at": ["Give the time with its offset (Z or +01:00), so it is unambiguous."]}
        )
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:
        instant = None
    # The rota is worked out a shift either side of the instant: the years 1900-9000
    # leave room for that, as the roster page allows.
    if instant is None or not 1900 <= instant.year <= 9000:
        raise exceptions.ValidationError({"at": ["Give a time between the years 1900 and 9000."]})
    return instant


@extend_validation_errors(["invalid"], field_name="at", methods=["get"])
@extend_validation_errors(["invalid"], field_name="team", methods=["get"])
@extend_validation_errors(["invalid"], field_name="role", methods=["get"])
class OnCallNowView(APIView):
    """Who is on call: for one team or all, one role or all, now or at a given time."""

    # Reading the rota needs the permission to view rotations.
    queryset = Rotation.objects.none()

    @extend_schema(
        summary="Who is on call (now, or at a time)",
        description="Per team and role, the highest layer with someone on call, "
        "overrides applied; each with the stretch it is in.",
        parameters=[
            OpenApiParameter("team", OpenApiTypes.STR, description="Team slug. Default: all."),
            OpenApiParameter(
                "role",
                OpenApiTypes.STR,
                enum=OnCallRole.values,
                description="Default: every role.",
            ),
            OpenApiParameter(
                "at", OpenApiTypes.DATETIME, description="ISO 8601 with offset. Default: now."
            ),
        ],
        responses={200: OnCallAnswerSerializer},
    )
    def get(self, request):
        params = request.query_params
        at = _instant(params["at"]) if params.get("at") else timezone.now()
        role = params.get("role") or None
        if role is not None and role not in OnCallRole.values:
            raise exceptions.ValidationError(
                {"role": [f"Unknown role; use one of {', '.join(OnCallRole.values)}."]}
            )
        teams = None
        if params.get("team"):
            slug = params["team"]
            team = Team.objects.filter(slug=slug).first() if "\x00" not in slug else None
            if team is None:
                raise exceptions.ValidationError({"team": [f"No team with the slug {slug!r}."]})
            teams = [team]
        answers = on_call(teams=teams, role=role, at=at)
        data = OnCallAnswerSerializer({"at": at, "on_call": answers}).data
        return Response(data)


router = SimpleRouter()
router.register("oncall/teams", TeamViewSet, basename="oncall-team")
router.register("oncall/rotations", RotationViewSet, basename="oncall-rotation")
router.register("oncall/overrides", OverrideViewSet, basename="oncall-override")

urlpatterns = [
    path("oncall/now/", OnCallNowView.as_view(), name="oncall-now"),
    *router.urls,
]
