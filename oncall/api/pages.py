"""Pages (read, and acknowledge) and the caller's own contact methods and paging rules.
Thin: reads through oncall.queries (a page of a confidential incident is as hidden as
the incident), writes through oncall.services."""

from datetime import timedelta

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.api.errors import ErrorResponse409Serializer
from incidents.api.pagination import BoundedPageSize
from incidents.api.permissions import ModelPermissions
from incidents.api.views import ServiceBackedViewSet
from incidents.models import Source

from ..models import ContactMethod, Page, PagingRule, Urgency
from ..queries import page_list_visible_to, user_may_acknowledge_page
from ..services import contacts, paging

# At most 18 digits: a larger number is no row, and would overflow the database's integer.
NUMERIC_ID = r"\d{1,18}"
CONFLICT = {409: ErrorResponse409Serializer}
DAY = 24 * 3600

# --- serializers ----------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class SecondsField(serializers.Field):
    """A duration shown as whole seconds."""

    def to_representation(self, value):
        return int(value.total_seconds())


class PageSerializer(serializers.ModelSerializer):
    incident = serializers.CharField(source="incident.reference", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    state = serializers.SerializerMethodField(help_text="open, acknowledged or stopped.")
    plan = serializers.SerializerMethodField(
        help_text='The steps: [{"after": seconds after created_at, "channel", "address"}]; '
        "the addresses only on your own pages, or with the permission to change pages.",
    )

    class Meta:
        model = Page
        fields = [
            "id",
            "incident",
            "user",
            "reason",
            "urgency",
            "role",
            "level",
            "message",
            "plan",
            "steps_sent",
            "next_step_at",
            "created_at",
            "created_by",
            "state",
            "acknowledged_at",
            "acknowledged_via",
            "stopped_at",
            "stopped_because",
        ]
        read_only_fields = fields

    def get_state(self, page) -> str:
        return page.state

    def get_plan(self, page) -> list[dict]:
        # Someone's phone number and private webhook are theirs: others see the channels.
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is not None and (user.pk == page.user_id or user.has_perm("oncall.change_page")):
            return page.plan
        return [{"after": step["after"], "channel": step["channel"]} for step in page.plan]


class ContactMethodSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactMethod
        fields = ["id", "kind", "address", "label", "verified_at", "verification_sent_at"]
        read_only_fields = fields


KIND_CHOICES = ContactMethod._meta.get_field("kind").choices


class ContactMethodUpdateSerializer(serializers.Serializer):
    """What PATCH may change; a new kind or address is unverified again."""

    kind = serializers.ChoiceField(choices=KIND_CHOICES, required=False)
    address = serializers.CharField(max_length=contacts.ADDRESS_LENGTH, required=False)
    label = serializers.CharField(
        max_length=contacts.LABEL_LENGTH, allow_blank=True, required=False
    )


class ContactMethodCreateSerializer(ContactMethodUpdateSerializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)
    address = serializers.CharField(
        max_length=contacts.ADDRESS_LENGTH,
        help_text="An email address, an E.164 phone number (+442071234567) for sms and "
        "voice, or the http(s) URL of a Slack incoming webhook or a webhook.",
    )


class PagingRuleSerializer(serializers.ModelSerializer):
    contact_method = serializers.PrimaryKeyRelatedField(read_only=True)
    delay = SecondsField(read_only=True, help_text="Seconds after the page starts.")
    repeat_every = SecondsField(allow_null=True, read_only=True, help_text="Seconds, or null.")

    class Meta:
        model = PagingRule
        fields = ["id", "urgency", "contact_method", "delay", "repeat_every", "repeat_times"]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class OwnMethodField(serializers.PrimaryKeyRelatedField):
    """One of the caller's own contact methods, by id (anyone else's is no such id)."""

    def get_queryset(self):
        return ContactMethod.objects.filter(user=self.context["request"].user)


class PagingRuleUpdateSerializer(serializers.Serializer):
    """What PATCH may change; what is left out stays as it is."""

    urgency = serializers.ChoiceField(choices=Urgency.choices, required=False)
    contact_method = OwnMethodField(required=False, help_text="The id of one of yours.")
    delay = serializers.IntegerField(
        min_value=0, max_value=DAY, required=False, help_text="Seconds after the page starts."
    )
    repeat_every = serializers.IntegerField(
        min_value=60,
        max_value=DAY,
        allow_null=True,
        required=False,
        help_text="Seconds between repeats (null: no repeats).",
    )
    repeat_times = serializers.IntegerField(
        min_value=0, max_value=contacts.MAX_REPEAT_TIMES, required=False
    )


class PagingRuleCreateSerializer(PagingRuleUpdateSerializer):
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    contact_method = OwnMethodField(help_text="The id of one of yours.")


# --- pages ----------------------------------------------------------------------------


class PageFilter(django_filters.FilterSet):
    incident = django_filters.CharFilter(
        field_name="incident__reference", help_text="Incident reference (INC-2026-0001)."
    )
    user = django_filters.CharFilter(field_name="user__username", help_text="Username paged.")
    open = django_filters.BooleanFilter(
        method="filter_open", help_text="true: still paging (neither acknowledged nor stopped)."
    )
    acknowledged = django_filters.BooleanFilter(
        field_name="acknowledged_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = Page
        fields = []

    def filter_open(self, queryset, name, value):
        still = {"acknowledged_at__isnull": True, "stopped_at__isnull": True}
        return queryset.filter(**still) if value else queryset.exclude(**still)


class PagePagination(BoundedPageSize, CursorPagination):
    # Pages pile up over the years: no COUNT(*), newest first.
    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 200


class MayReadPages(ModelPermissions):
    """Acknowledging needs only read access to pages: the view then lets the person paged
    (or a commander, or the change_page permission) do it."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("oncall.view_page"))


@extend_validation_errors(["invalid"], field_name="page_size", actions=["list"], methods=["get"])
@extend_schema_view(
    list=extend_schema(summary="List the pages of incidents you may see, newest first"),
    retrieve=extend_schema(summary="One page: its plan, the steps sent, its answer"),
)
class PageViewSet(viewsets.ReadOnlyModelViewSet):
    """Pages: one person paged about one incident, step by step, until they acknowledge."""

    serializer_class = PageSerializer
    queryset = Page.objects.all()
    lookup_value_regex = NUMERIC_ID
    filterset_class = PageFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = PagePagination

    def get_queryset(self):
        queryset = Page.objects.select_related("incident", "user", "created_by")
        return page_list_visible_to(self.request.user, queryset)

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(
        summary="Acknowledge a page (its steps stop)",
        description="For the person paged, the incident's commander, or anyone with the "
        "change_page permission. A declared incident not yet acknowledged is acknowledged "
        "too, by the person paged. 409 if the page was already acknowledged.",
        request=None,
        responses={200: PageSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"], permission_classes=[MayReadPages])
    def acknowledge(self, request, pk=None):
        page = self.get_object()
        if not user_may_acknowledge_page(request.user, page):
            raise exceptions.PermissionDenied(
                f"This page is {page.user.get_username()}'s: only they, the incident's "
                "commander or someone with the change_page permission may acknowledge it."
            )
        paging.page_acknowledge(page=page, actor=request.user, via="api", source=Source.API)
        fresh = self.get_queryset().get(pk=page.pk)
        return Response(PageSerializer(fresh, context=self.get_serializer_context()).data)


# --- the caller's contact methods and paging rules ------------------------------------


class OwnRecords(permissions.IsAuthenticated):
    """Everyone signed in manages their own contact methods and rules (the querysets
    hold only theirs), whatever their model permissions."""


METHOD_WRITES = ["create", "partial_update"]


@extend_validation_errors(["invalid"], field_name="kind", actions=METHOD_WRITES)
@extend_validation_errors(["invalid"], field_name="address", actions=METHOD_WRITES)
@extend_validation_errors(["invalid"], field_name="label", actions=METHOD_WRITES)
@extend_schema_view(
    list=extend_schema(summary="List your contact methods"),
    retrieve=extend_schema(summary="One of your contact methods"),
    create=extend_schema(
        summary="Add a contact method (unverified until its test message's link is followed)",
        request=ContactMethodCreateSerializer,
        responses={201: ContactMethodSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a contact method",
        description="A new kind or address is unverified again, and the links already sent "
        "stop working.",
        request=ContactMethodUpdateSerializer,
        responses={200: ContactMethodSerializer},
    ),
    destroy=extend_schema(summary="Remove a contact method and the paging rules using it"),
)
class ContactMethodViewSet(mixins.DestroyModelMixin, ServiceBackedViewSet):
    """Your contact methods: where you can be paged. Pages use only verified ones."""

    serializer_class = ContactMethodSerializer
    queryset = ContactMethod.objects.all()
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_value_regex = NUMERIC_ID
    permission_classes = [OwnRecords]
    filter_backends = []

    def get_queryset(self):
        return ContactMethod.objects.filter(user=self.request.user).order_by("kind", "address")

    def _respond(self, method, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=method.pk)
        data = ContactMethodSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        data = self.valid_input(ContactMethodCreateSerializer)
        method = contacts.contact_method_create(
            user=request.user, actor=request.user, source=Source.API, **data
        )
        location = self.reverse_action("detail", kwargs={"pk": method.pk})
        return self._respond(method, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        method = self.get_object()
        data = self.valid_input(ContactMethodUpdateSerializer)
        method = contacts.contact_method_update(
            method=method, actor=request.user, source=Source.API, **data
        )
        return self._respond(method)

    def perform_destroy(self, instance):
        contacts.contact_method_delete(method=instance, actor=self.request.user, source=Source.API)

    @extend_schema(
        summary="Send a test message with the link that verifies the method",
        description="The message goes through the outbox like a page. 409 if one was sent "
        "less than a minute ago.",
        request=None,
        responses={200: ContactMethodSerializer, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        method = contacts.contact_method_send_test(method=self.get_object(), actor=request.user)
        return self._respond(method)


RULE_WRITES = ["create", "partial_update"]


def _rule_errors(cls):
    # The service's refusals beyond the serializer's own (a repeat with no interval).
    for field in ("urgency", "contact_method", "delay", "repeat_every", "repeat_times"):
        cls = extend_validation_errors(["invalid"], field_name=field, actions=RULE_WRITES)(cls)
    return cls


@_rule_errors
@extend_schema_view(
    list=extend_schema(summary="List your paging rules"),
    retrieve=extend_schema(summary="One of your paging rules"),
    create=extend_schema(
        summary="Add a paging rule",
        description="By this contact method, `delay` seconds after the page starts, then "
        "`repeat_times` more times every `repeat_every` seconds, until you acknowledge.",
        request=PagingRuleCreateSerializer,
        responses={201: PagingRuleSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a paging rule (pages already started keep their plan)",
        request=PagingRuleUpdateSerializer,
        responses={200: PagingRuleSerializer},
    ),
    destroy=extend_schema(summary="Remove a paging rule"),
)
class PagingRuleViewSet(mixins.DestroyModelMixin, ServiceBackedViewSet):
    """Your paging rules: how a page reaches you, step by step, at each urgency."""

    serializer_class = PagingRuleSerializer
    queryset = PagingRule.objects.all()
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_value_regex = NUMERIC_ID
    permission_classes = [OwnRecords]
    filter_backends = []

    def get_queryset(self):
        return PagingRule.objects.filter(user=self.request.user).order_by("urgency", "delay", "pk")

    def _respond(self, rule, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=rule.pk)
        data = PagingRuleSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    @staticmethod
    def _durations(data: dict) -> dict:
        if data.get("delay") is not None:
            data["delay"] = timedelta(seconds=data["delay"])
        if data.get("repeat_every") is not None:
            data["repeat_every"] = timedelta(seconds=data["repeat_every"])
        return data

    def create(self, request, *args, **kwargs):
        data = self._durations(self.valid_input(PagingRuleCreateSerializer))
        rule = contacts.paging_rule_save(
            user=request.user, actor=request.user, source=Source.API, **data
        )
        location = self.reverse_action("detail", kwargs={"pk": rule.pk})
        return self._respond(rule, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        data = self._durations(self.valid_input(PagingRuleUpdateSerializer))
        # The service takes the whole rule: what was left out stays as it is.
        current = {
            "urgency": rule.urgency,
            "contact_method": rule.contact_method,
            "delay": rule.delay,
            "repeat_every": rule.repeat_every,
            "repeat_times": rule.repeat_times,
        }
        rule = contacts.paging_rule_save(
            rule=rule,
            user=request.user,
            actor=request.user,
            source=Source.API,
            **{**current, **data},
        )
        return self._respond(rule)

    def perform_destroy(self, instance):
        contacts.paging_rule_delete(rule=instance, actor=self.request.user, source=Source.API)


router = SimpleRouter()
router.register("pages", PageViewSet, basename="oncall-page")
router.register("oncall/contact-methods", ContactMethodViewSet, basename="oncall-contact-method")
router.register("oncall/paging-rules", PagingRuleViewSet, basename="oncall-paging-rule")

urlpatterns = router.urls
