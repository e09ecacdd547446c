"""The inbound endpoints monitoring posts to: one per payload format, and heartbeats.

A 2xx means the payload is stored: 200 when its alerts were taken in (the counts say
what they did), 202 when taking them in failed and the sweeper will retry."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_standardized_errors.openapi_serializers import ErrorResponse403Serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.api.errors import RequestTooLarge

from .. import services
from ..sources import FORMATS, PayloadError
from .authentication import AlertSourceAuthentication

OUTCOME = inline_serializer(
    "AlertIntakeOutcome",
    {
        "payload": serializers.IntegerField(),
        "alerts": serializers.IntegerField(),
        "new": serializers.IntegerField(),
        "repeated": serializers.IntegerField(),
        "resolved": serializers.IntegerField(),
        "resolved_unknown": serializers.IntegerField(),
        "incidents_opened": serializers.ListField(child=serializers.CharField()),
        "incidents_joined": serializers.ListField(child=serializers.CharField()),
    },
)


class PayloadTooLarge(RequestTooLarge):
    def __init__(self, detail: str | None = None):
        exceptions.APIException.__init__(
            self,
            detail
            or f"The body is larger than the limit of {settings.ALERTS_MAX_BODY_BYTES:,} bytes.",
        )


class SourceView(APIView):
    """Authenticated by the source's secret, not an API key; never throttled (monitoring
    resends what it could not deliver: refusing it would only delay the alert)."""

    authentication_classes = [AlertSourceAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = []
    # The views read request.body (kept and signed as it arrived), never request.data;
    # the parsers only tell the API schema the body is JSON.

    def initial(self, request, *args, **kwargs):
        # Before anything reads the body: refuse what is too large without reading it.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.ALERTS_MAX_BODY_BYTES:
            raise PayloadTooLarge()
        super().initial(request, *args, **kwargs)


def _documented_body(kind: str):
    """The request body as the docs show it (the format module is what checks it)."""
    if kind == "generic":
        fields = {
            "title": serializers.CharField(),
            "status": serializers.ChoiceField(["firing", "resolved"], required=False),
            "source": serializers.CharField(required=False),
            "fingerprint": serializers.CharField(required=False),
            "labels": serializers.DictField(child=serializers.CharField(), required=False),
            "annotations": serializers.DictField(child=serializers.CharField(), required=False),
            "metrics": serializers.DictField(child=serializers.FloatField(), required=False),
            "starts_at": serializers.DateTimeField(required=False),
            "ends_at": serializers.DateTimeField(required=False),
        }
    else:
        fields = {
            "version": serializers.CharField(required=False),
            "status": serializers.CharField(),
            "receiver": serializers.CharField(required=False),
            "groupKey": serializers.CharField(required=False),
            "alerts": serializers.ListField(child=serializers.DictField()),
        }
    return inline_serializer(f"{kind.capitalize()}AlertPayload", fields)


class IntakeView(SourceView):
    kind = ""  # intake_view() makes one per format, with its documented post()

    def take(self, request):
        source = request.auth
        if source.kind != self.kind:
            raise exceptions.ValidationError(
                {
                    "source": [
                        f"{source.name} sends {source.kind} payloads: post them to "
                        f"/api/v1/alerts/{source.kind}/."
                    ]
                }
            )
        body = request.body
        services.heartbeat_heard(source, ping=False)
        try:
            payload, outcome = services.payload_receive(
                source=source, body=body, content_type=request.content_type or ""
            )
        except services.TooManyAlerts as error:
            raise PayloadTooLarge(error.message) from None
        except PayloadError as error:
            raise exceptions.ValidationError({"payload": [error.message]}) from None
        answer = {"payload": payload.pk, "alerts": payload.alert_count}
        if outcome is None:
            return Response(
                {**answer, "detail": "Stored; processing failed and will be retried."},
                status=status.HTTP_202_ACCEPTED,
            )
        return Response({**answer, **outcome.as_dict()})


def intake_view(kind: str):
    label = FORMATS[kind].label

    @extend_schema(
        request=_documented_body(kind),
        responses={
            200: OUTCOME,
            202: OpenApiResponse(OUTCOME, description="Stored; processing will be retried."),
            403: ErrorResponse403Serializer,
        },
        tags=["alerts"],
        summary=f"Take in a {label} payload",
    )
    def post(self, request):
        return self.take(request)

    view = type(f"{kind.capitalize()}IntakeView", (IntakeView,), {"kind": kind, "post": post})
    view.__doc__ = f"Take in a {label} webhook payload; a 2xx means it is stored."
    return view.as_view()


class HeartbeatView(SourceView):
    """Say the source is alive; a source with a heartbeat interval that sends nothing
    for longer raises an alert."""

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "AlertHeartbeat",
                {"source": serializers.CharField(), "heard_at": serializers.DateTimeField()},
            ),
            403: ErrorResponse403Serializer,
        },
        tags=["alerts"],
    )
    def post(self, request, source):
        if request.auth.name != source:
            raise exceptions.PermissionDenied("This secret belongs to another source.")
        services.heartbeat_heard(request.auth, ping=True)
        request.auth.refresh_from_db(fields=["last_heartbeat_at"])
        return Response({"source": source, "heard_at": request.auth.last_heartbeat_at})
