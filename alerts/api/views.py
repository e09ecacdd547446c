"""Thin views over alerts.services: alerts (read), detection rules, silences and alert
sources. Visibility of alerts comes from alerts.queries, as in the admin."""

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import Prefetch
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from incidents.api.pagination import BoundedPageSize
from incidents.api.permissions import ModelPermissions
from incidents.api.views import ServiceBackedViewSet
from incidents.errors import DomainError

from .. import services
from ..models import Alert, AlertSource, DetectionRule, RuleCondition, Silence, SilenceMatcher
from ..queries import alert_list_visible_to
from ..rules import Book, Subject
from ..sources import FORMATS, PayloadError
from . import serializers as s

# At most 18 digits: a larger number is no row, and would overflow the database's integer.
NUMERIC_ID = r"\d{1,18}"
MAX_ID = 10**18 - 1


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number in range, or a 400 naming the parameter."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


# --- alerts -----------------------------------------------------------------------------


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Alert.Status.choices)
    source = django_filters.CharFilter(field_name="source__name", help_text="Source name.")
    fingerprint = django_filters.CharFilter()
    incident = django_filters.CharFilter(
        field_name="incident__reference", help_text="Incident reference (INC-2026-0001)."
    )
    rule = IdFilter(field_name="rule_id", help_text="Detection rule id.")
    silenced = django_filters.BooleanFilter(
        method="filter_silenced", help_text="true: held back by a silence."
    )

    class Meta:
        model = Alert
        fields = []

    def filter_silenced(self, queryset, name, value):
        return queryset.filter(silenced_by__isnull=not value)


class AlertPagination(BoundedPageSize, CursorPagination):
    # Alerts are many: no COUNT(*), and the order the alerts_alert_last_seen index serves.
    ordering = ("-last_seen_at", "-id")
    page_size = 50
    max_page_size = 200


@extend_validation_errors(["invalid"], field_name="page_size", actions=["list"], methods=["get"])
@extend_schema_view(
    list=extend_schema(summary="List the alerts you may see, latest seen first"),
    retrieve=extend_schema(summary="One alert"),
)
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts as monitoring sent them, deduplicated by fingerprint, with what the rules
    made of them. An alert of a confidential incident is as hidden as the incident."""

    serializer_class = s.AlertSerializer
    queryset = Alert.objects.all()
    lookup_value_regex = NUMERIC_ID
    filterset_class = AlertFilter
    # No search and no free ordering: either would scan a table this large.
    filter_backends = [DjangoFilterBackend]
    pagination_class = AlertPagination

    def get_queryset(self):
        queryset = Alert.objects.select_related("source", "rule", "incident")
        return alert_list_visible_to(self.request.user, queryset)

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action == "list" else queryset


# --- detection rules --------------------------------------------------------------------


class TryPermission(ModelPermissions):
    """Trying rules writes nothing: whoever may read the rules may try them."""

    perms_map = {**ModelPermissions.perms_map, "POST": ["%(app_label)s.view_%(model_name)s"]}


class RuleFilter(django_filters.FilterSet):
    enabled = django_filters.BooleanFilter()
    action = django_filters.ChoiceFilter(choices=DetectionRule.Action.choices)
    source = django_filters.CharFilter(field_name="source__name", help_text="Source name.")

    class Meta:
        model = DetectionRule
        fields = []


# Fields the services name in a refusal beyond those a serializer field documents.
RULE_WRITES = ["create", "partial_update"]


def _rule_errors(cls):
    for field in ("name", "description", "title_template", "group_by", "service_label"):
        cls = extend_validation_errors(["invalid"], field_name=field, actions=RULE_WRITES)(cls)
    for field in ("action", "open_as", "environment", "incident_type", "firing_for"):
        cls = extend_validation_errors(["invalid"], field_name=field, actions=RULE_WRITES)(cls)
    cls = extend_validation_errors(["invalid"], field_name="conditions", actions=RULE_WRITES)(cls)
    return extend_validation_errors(["invalid"], field_name="payload", actions=["try_rules"])(cls)


@_rule_errors
@extend_validation_errors(["invalid"], field_name="page_size", actions=["list"], methods=["get"])
@extend_schema_view(
    list=extend_schema(summary="List detection rules, in the order they are tried"),
    retrieve=extend_schema(summary="One detection rule"),
    create=extend_schema(
        summary="Add a detection rule",
        description="`firing_for` is in seconds. A refused condition (an operator of the "
        "wrong subject, a bad regular expression, a threshold that is not a number) is a "
        "400 naming `conditions`, and nothing is saved.",
        request=s.DetectionRuleCreateSerializer,
        responses={201: s.DetectionRuleSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a detection rule",
        description="Fields left out stay as they are; `conditions` and `services`, when "
        "given, replace the rule's.",
        request=s.DetectionRuleUpdateSerializer,
        responses={200: s.DetectionRuleSerializer},
    ),
    destroy=extend_schema(summary="Remove a detection rule"),
)
class DetectionRuleViewSet(mixins.DestroyModelMixin, ServiceBackedViewSet):
    """Detection rules: what a matching alert means (open or join an incident, or ignore
    it as noise), tried in priority order; the first whose conditions hold wins."""

    serializer_class = s.DetectionRuleSerializer
    queryset = DetectionRule.objects.all()
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_value_regex = NUMERIC_ID
    filterset_class = RuleFilter
    search_fields = ["name", "description"]
    ordering_fields = ["priority", "name", "updated_at"]

    def get_queryset(self):
        return DetectionRule.objects.select_related(
            "source", "severity", "incident_type"
        ).prefetch_related(
            Prefetch("conditions", queryset=RuleCondition.objects.order_by("pk")), "services"
        )

    def _respond(self, rule, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=rule.pk)
        data = s.DetectionRuleSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    @staticmethod
    def _fields(data: dict) -> dict:
        if data.get("firing_for") is not None:
            data["firing_for"] = timedelta(seconds=data["firing_for"])
        return data

    def create(self, request, *args, **kwargs):
        data = self._fields(self.valid_input(s.DetectionRuleCreateSerializer))
        rule = services.rule_save(
            conditions=data.pop("conditions", []),
            services=data.pop("services", None),
            actor=request.user,
            **data,
        )
        location = self.reverse_action("detail", kwargs={"pk": rule.pk})
        return self._respond(rule, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        data = self._fields(self.valid_input(s.DetectionRuleUpdateSerializer))
        rule = services.rule_save(
            rule=rule,
            conditions=data.pop("conditions", None),
            services=data.pop("services", None),
            actor=request.user,
            **data,
        )
        return self._respond(rule)

    def perform_destroy(self, instance):
        services.rule_delete(rule=instance, actor=self.request.user)

    @extend_schema(
        summary="Try the rules on a payload (writes nothing)",
        description="Parses `payload` as the `kind` of source would post it and judges "
        f"each of its alerts (at most {s.MAX_TRY_ALERTS}) against every rule, enabled or "
        "not, in the order they are tried: whether it matches, why not, or until when it "
        "waits for the alert to have fired long enough; and the winner, the first rule "
        "whose conditions hold, with what it would open and the silence that would hold it.",
        request=s.RuleTrySerializer,
        responses={200: s.RuleTryResultSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="try",
        url_name="try",
        permission_classes=[TryPermission],
        pagination_class=None,
        filter_backends=[],
    )
    def try_rules(self, request):
        data = self.valid_input(s.RuleTrySerializer)
        source = data.get("source")
        kind = data["kind"]
        if source is not None and source.kind != kind:
            raise exceptions.ValidationError(
                {"source": [f"{source.name} sends {source.kind} payloads, not {kind}."]}
            )
        try:
            parsed = FORMATS[kind].parse(data["payload"])
        except PayloadError as error:
            raise exceptions.ValidationError({"payload": [error.message]}) from None
        if len(parsed) > s.MAX_TRY_ALERTS:
            raise exceptions.ValidationError(
                {"payload": [f"It holds {len(parsed):,} alerts; try at most {s.MAX_TRY_ALERTS}."]}
            )
        now = timezone.now()
        book = Book.load(now, rules=DetectionRule.objects.all())
        return Response({"alerts": [_tried(book, alert, source, now) for alert in parsed]})


def _rule_ref(rule) -> dict:
    return {"id": rule.pk, "name": rule.name}


def _tried(book: Book, alert, source, now) -> dict:
    subject = Subject(
        source_id=source.pk if source is not None else None,
        labels=alert.labels,
        annotations=alert.annotations,
        metrics=alert.metrics,
        starts_at=alert.starts_at or now,
        title=alert.title,
    )
    verdicts = book.verdicts(subject, now)
    winner = next((verdict for verdict in verdicts if verdict.holds), None)
    return {
        "title": alert.title,
        "status": alert.status,
        "fingerprint": alert.fingerprint,
        "labels": alert.labels,
        "metrics": alert.metrics,
        "verdicts": [
            {
                "rule": _rule_ref(verdict.rule),
                "matched": verdict.matched,
                "reasons": verdict.reasons,
                "waiting_until": verdict.waiting_until,
            }
            for verdict in verdicts
        ],
        "winner": _winner(book, winner, subject, now) if winner else None,
    }


def _winner(book: Book, verdict, subject: Subject, now) -> dict:
    rule = verdict.rule
    opens = rule.action == DetectionRule.Action.OPEN
    chosen = book.services_for(rule, subject)
    silence = book.silence_for(subject, chosen, now) if opens else None
    return {
        "rule": _rule_ref(rule),
        "action": rule.action,
        "waiting_until": verdict.waiting_until,
        "severity": book.severity_for(rule, subject).key if opens else None,
        "services": [service.slug for service in chosen],
        "incident_title": book.title_for(rule, subject),
        "group_key": book.group_key(rule, subject),
        "silenced_by": silence.pk if silence is not None else None,
    }


# --- silences ---------------------------------------------------------------------------


class SilenceFilter(django_filters.FilterSet):
    active = django_filters.BooleanFilter(
        method="filter_active", help_text="true: holding alerts back now."
    )

    class Meta:
        model = Silence
        fields = []

    def filter_active(self, queryset, name, value):
        now = timezone.now()
        active = queryset.filter(starts_at__lte=now, ends_at__gt=now)
        return active if value else queryset.exclude(pk__in=active.values("pk"))


SILENCE_WRITES = ["create", "partial_update"]


@extend_validation_errors(["invalid"], field_name="comment", actions=SILENCE_WRITES)
@extend_validation_errors(["invalid"], field_name="starts_at", actions=SILENCE_WRITES)
@extend_validation_errors(["invalid"], field_name="ends_at", actions=SILENCE_WRITES)
@extend_validation_errors(["invalid"], field_name="matchers", actions=SILENCE_WRITES)
@extend_validation_errors(
    ["invalid"], field_name="non_field_errors", actions=["expire"], methods=["post"]
)
@extend_validation_errors(["invalid"], field_name="page_size", actions=["list"], methods=["get"])
@extend_schema_view(
    list=extend_schema(summary="List silences, latest starting first"),
    retrieve=extend_schema(summary="One silence"),
    create=extend_schema(
        summary="Silence alerts for a while (a maintenance, known noise)",
        description="Matching alerts are kept but open no incident. Name services, label "
        "matchers or both; at most 90 days.",
        request=s.SilenceCreateSerializer,
        responses={201: s.SilenceSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a silence",
        description="Fields left out stay as they are; `services` and `matchers`, when "
        "given, replace the silence's.",
        request=s.SilenceUpdateSerializer,
        responses={200: s.SilenceSerializer},
    ),
    destroy=extend_schema(summary="Remove a silence (the alerts it held are judged again)"),
)
class SilenceViewSet(mixins.DestroyModelMixin, ServiceBackedViewSet):
    """Silences: windows in which matching alerts are stored but open nothing."""

    serializer_class = s.SilenceSerializer
    queryset = Silence.objects.all()
    http_method_names = [*ServiceBackedViewSet.http_method_names, "delete"]
    lookup_value_regex = NUMERIC_ID
    filterset_class = SilenceFilter
    search_fields = ["comment"]
    ordering_fields = ["starts_at", "ends_at"]

    def get_queryset(self):
        return Silence.objects.select_related("created_by").prefetch_related(
            Prefetch("matchers", queryset=SilenceMatcher.objects.order_by("pk")), "services"
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def _respond(self, silence, status_code=status.HTTP_200_OK, headers=None):
        fresh = self.get_queryset().get(pk=silence.pk)
        data = s.SilenceSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        data = self.valid_input(s.SilenceCreateSerializer)
        silence = _save_silence(actor=request.user, **data)
        location = self.reverse_action("detail", kwargs={"pk": silence.pk})
        return self._respond(silence, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        silence = self.get_object()
        data = self.valid_input(s.SilenceUpdateSerializer)
        # The service takes the whole silence: what was left out stays as it is.
        current = {
            "starts_at": silence.starts_at,
            "ends_at": silence.ends_at,
            "comment": silence.comment,
            "services": list(silence.services.all()),
            "matchers": [
                {"key": row.key, "operator": row.operator, "value": row.value}
                for row in silence.matchers.all()
            ],
        }
        silence = _save_silence(silence=silence, actor=request.user, **{**current, **data})
        return self._respond(silence)

    def perform_destroy(self, instance):
        services.silence_delete(silence=instance, actor=self.request.user)

    @extend_schema(
        summary="End a silence now",
        description="The alerts it held are judged again by the next round. 400 if it has "
        "ended already.",
        request=None,
        responses={200: s.SilenceSerializer},
    )
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        silence = services.silence_expire(silence=self.get_object(), actor=request.user)
        return self._respond(silence)


def _save_silence(**arguments) -> Silence:
    try:
        return services.silence_save(**arguments)
    except DomainError as error:
        # The condition checks are shared with rules and name `conditions`; here they
        # are the silence's `matchers`.
        if error.field == "conditions":
            raise DomainError(error.message, field="matchers") from None
        raise


# --- alert sources ----------------------------------------------------------------------


SOURCE_WRITES = ["create", "partial_update"]


def _no_store(response: Response) -> Response:
    # The secret is shown once: no cache or proxy may keep the answer that holds it.
    response["Cache-Control"] = "no-store"
    return response


@extend_validation_errors(["invalid"], field_name="name", actions=["create"])
@extend_validation_errors(["invalid"], field_name="description", actions=SOURCE_WRITES)
@extend_validation_errors(["invalid"], field_name="signature_header", actions=SOURCE_WRITES)
@extend_validation_errors(["invalid"], field_name="timestamp_header", actions=SOURCE_WRITES)
@extend_validation_errors(["invalid"], field_name="heartbeat_minutes", actions=SOURCE_WRITES)
@extend_validation_errors(["invalid"], field_name="page_size", actions=["list"], methods=["get"])
@extend_schema_view(
    list=extend_schema(summary="List alert sources (never their secrets)"),
    retrieve=extend_schema(summary="One alert source, by name"),
    create=extend_schema(
        summary="Add an alert source; its secret is in this answer only",
        description="The `secret` is shown once and not stored: configure the monitoring "
        "system with it (`Authorization: Bearer <secret>`, or as the HMAC key) now.",
        request=s.AlertSourceCreateSerializer,
        responses={201: s.AlertSourceWithSecretSerializer},
    ),
    partial_update=extend_schema(
        summary="Change an alert source (enable, disable, headers, heartbeat)",
        request=s.AlertSourceUpdateSerializer,
        responses={200: s.AlertSourceSerializer},
    ),
)
class AlertSourceViewSet(ServiceBackedViewSet):
    """Alert sources: the integrations that post alerts, each with its own secret."""

    serializer_class = s.AlertSourceSerializer
    queryset = AlertSource.objects.all()
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]{1,50}"
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    def _respond(self, source, status_code=status.HTTP_200_OK, headers=None):
        data = s.AlertSourceSerializer(source, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers=headers)

    def _with_secret(self, source, secret, status_code, headers=None):
        context = {**self.get_serializer_context(), "secret": secret}
        data = s.AlertSourceWithSecretSerializer(source, context=context).data
        return _no_store(Response(data, status=status_code, headers=headers))

    def create(self, request, *args, **kwargs):
        data = self.valid_input(s.AlertSourceCreateSerializer)
        source, secret = services.source_create(actor=request.user, **data)
        location = self.reverse_action("detail", kwargs={"name": source.name})
        return self._with_secret(source, secret, status.HTTP_201_CREATED, {"Location": location})

    def partial_update(self, request, *args, **kwargs):
        source = self.get_object()
        data = self.valid_input(s.AlertSourceUpdateSerializer)
        source = services.source_update(source=source, actor=request.user, **data)
        return self._respond(source)

    @extend_schema(
        summary="Give the source a new secret (the old one stops working at once)",
        description="The new `secret` is in this answer only.",
        request=None,
        responses={200: s.AlertSourceWithSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret", url_name="rotate-secret")
    def rotate_secret(self, request, name=None):
        source = self.get_object()
        secret = services.source_rotate_secret(source=source, actor=request.user)
        source.refresh_from_db()
        return self._with_secret(source, secret, status.HTTP_200_OK)
