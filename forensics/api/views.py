"""Thin views over forensics.services; visibility from forensics.queries (an incident or
item you may not see is a 404, as everywhere in the API)."""

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, generics, parsers, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.api.errors import ErrorResponse409Serializer
from incidents.api.pagination import StandardPagination
from incidents.api.parsers import BoundedJSONParser
from incidents.api.permissions import ModelPermissions
from incidents.models import Source
from incidents.queries import incident_list_visible_to

from .. import services
from ..export import register_csv, with_custody
from ..models import BreachAssessment, EvidenceItem
from ..queries import breach_list_visible_to, evidence_list_visible_to
from ..views import file_response
from . import serializers as s

TAGS = ["forensics"]
CONFLICT = {409: ErrorResponse409Serializer}
# Room for a multipart envelope around the file (boundaries, the other fields).
ENVELOPE = 1024 * 1024


class UploadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        limit = settings.EVIDENCE_MAX_UPLOAD_BYTES
        super().__init__(f"The file is larger than the limit of {limit:,} bytes.")


def visible_incident(request, reference: str):
    incident = incident_list_visible_to(request.user).filter(reference=reference).first()
    if incident is None:
        raise exceptions.NotFound("No such incident, or not visible to you.")
    return incident


class AnyAcceptable:
    """Answer a client that asks only for a file (Accept: application/octet-stream or
    text/csv) with the file, and its errors in JSON, instead of a 406."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class MayReadCustody(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.user.has_perm("forensics.view_custodyrecord")


class MayChangeAssessments(ModelPermissions):
    """Recording a notification changes the assessment: `change`, not `add`."""

    perms_map = {**ModelPermissions.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


# --- evidence ---------------------------------------------------------------------------


@extend_validation_errors(["invalid"], field_name="page_size", methods=["get"])
# The schema's one request body has both `file` and `external_location` optional; each
# request's own serializer requires one of them, and the services refuse more.
@extend_validation_errors(["required", "invalid"], field_name="file", methods=["post"])
@extend_validation_errors(["required", "invalid"], field_name="external_location", methods=["post"])
@extend_validation_errors(["invalid"], field_name="incident", methods=["post"])
@extend_validation_errors(["invalid"], field_name="kind", methods=["post"])
@extend_validation_errors(["invalid"], field_name="description", methods=["post"])
@extend_validation_errors(["invalid"], field_name="sha256", methods=["post"])
@extend_validation_errors(["invalid"], field_name="size", methods=["post"])
@extend_validation_errors(["invalid"], field_name="collected_by", methods=["post"])
@extend_validation_errors(["invalid"], field_name="collected_at", methods=["post"])
class IncidentEvidenceView(generics.ListAPIView):
    """An incident's evidence register; add to it by upload (multipart) or by saying where
    an item is held (JSON)."""

    queryset = EvidenceItem.objects.all()
    serializer_class = s.EvidenceItemSerializer
    pagination_class = StandardPagination
    parser_classes = [parsers.MultiPartParser, BoundedJSONParser]
    filter_backends = []

    def get_queryset(self):
        incident = visible_incident(self.request, self.kwargs["reference"])
        return incident.evidence.select_related("incident", "collected_by", "created_by").order_by(
            "collected_at", "id"
        )

    @extend_schema(
        summary="An incident's evidence register",
        description="Listing is not a custody event (it shows what was collected, not the "
        "evidence); a record's detail, a download and an export are.",
        tags=TAGS,
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Add evidence: upload a file, or say where an item is held",
        description="multipart/form-data with `file`: stored in the locker, its size and "
        "SHA-256 computed as it is written (over EVIDENCE_MAX_UPLOAD_MB: 413). JSON with "
        "`external_location`: an item held elsewhere. Either writes the first custody record.",
        request=s.EvidenceCreateSerializer,
        responses={201: s.EvidenceItemSerializer},
        tags=TAGS,
    )
    def post(self, request, reference):
        uploading = (request.content_type or "").startswith("multipart/")
        if uploading:
            # Refused before the body is read (and spooled to disk) when it cannot fit.
            declared = request.META.get("CONTENT_LENGTH") or "0"
            if declared.isdigit() and int(declared) > settings.EVIDENCE_MAX_UPLOAD_BYTES + ENVELOPE:
                raise UploadTooLarge()
        incident = visible_incident(request, reference)
        serializer_class = s.EvidenceUploadSerializer if uploading else s.EvidenceRegisterSerializer
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        common = {
            "incident": incident,
            "actor": request.user,
            "source": Source.API,
            "address": services.address_of(request),
        }
        if uploading:
            try:
                item = services.evidence_upload(
                    **common, expected_sha256=data.pop("sha256", ""), **data
                )
            except services.EvidenceTooLarge:
                raise UploadTooLarge() from None
        else:
            item = services.evidence_register(**common, **data)
        item = EvidenceItem.objects.select_related("incident", "collected_by", "created_by").get(
            pk=item.pk
        )
        location = reverse("forensics-api:evidence-detail", kwargs={"pk": item.pk})
        return Response(
            s.EvidenceItemSerializer(item).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class EvidenceItemView(generics.GenericAPIView):
    queryset = EvidenceItem.objects.all()
    filter_backends = []

    def get_queryset(self):
        return evidence_list_visible_to(self.request.user).select_related(
            "incident", "collected_by", "created_by"
        )


class EvidenceDetailView(EvidenceItemView):
    serializer_class = s.EvidenceItemSerializer

    @extend_schema(
        summary="One evidence item (the view is recorded in its custody log)",
        responses={200: s.EvidenceItemSerializer},
        tags=TAGS,
    )
    def get(self, request, pk):
        item = self.get_object()
        services.evidence_record_view(
            item=item,
            actor=request.user,
            source=Source.API,
            address=services.address_of(request),
            detail="API detail",
        )
        return Response(s.EvidenceItemSerializer(item).data)


class EvidenceDownloadView(AnyAcceptable, EvidenceItemView):
    http_method_names = ["get", "options"]

    @extend_schema(
        summary="Download the file (recorded in its custody log first)",
        description="Streamed as application/octet-stream with the uploaded file's name. "
        "409 for an item held elsewhere, or one whose file is gone from the locker.",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            **CONFLICT,
        },
        tags=TAGS,
    )
    def get(self, request, pk):
        item = self.get_object()
        handle = services.evidence_open(
            item=item, actor=request.user, source=Source.API, address=services.address_of(request)
        )
        return file_response(item, handle)


@extend_validation_errors(["invalid"], field_name="page_size", methods=["get"])
class EvidenceCustodyView(EvidenceItemView, generics.ListAPIView):
    """The chain of custody of one item, oldest first."""

    serializer_class = s.CustodyRecordSerializer
    pagination_class = StandardPagination
    permission_classes = [ModelPermissions, MayReadCustody]
    filter_backends = []

    def get_queryset(self):
        item = generics.get_object_or_404(super().get_queryset(), pk=self.kwargs["pk"])
        return item.custody.order_by("at", "id")

    @extend_schema(summary="The chain of custody of one evidence item", tags=TAGS)
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class IncidentEvidenceExportView(AnyAcceptable, APIView):
    queryset = EvidenceItem.objects.all()
    http_method_names = ["get", "options"]

    @extend_schema(
        summary="Export an incident's evidence register and custody log (CSV)",
        description="A row per item, then a row per custody record of it; each item exported "
        "gets an `exported` custody record (shown in the export).",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
        tags=TAGS,
    )
    def get(self, request, reference):
        incident = visible_incident(request, reference)
        items = list(incident.evidence.all())
        services.evidence_export(
            items=items,
            actor=request.user,
            source=Source.API,
            address=services.address_of(request),
            what="register export (API)",
        )
        body = register_csv(with_custody(incident.evidence.order_by("collected_at", "id")))
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        stamp = f"{timezone.now():%Y%m%d-%H%M%S}"
        response["Content-Disposition"] = (
            f'attachment; filename="{incident.reference}-evidence-{stamp}.csv"'
        )
        response["Cache-Control"] = "private, no-store"
        return response


# --- breach notification clock ------------------------------------------------------------


def _assessment_response(incident, status_code=status.HTTP_200_OK):
    assessment = (
        BreachAssessment.objects.select_related("incident", "assessed_by")
        .filter(incident=incident)
        .first()
    )
    return Response(s.BreachAssessmentSerializer(assessment).data, status=status_code)


@extend_validation_errors(["invalid"], field_name="incident", methods=["patch"])
@extend_validation_errors(["invalid"], field_name="clock_started_at", methods=["patch"])
@extend_validation_errors(["invalid"], field_name="assessment_notes", methods=["patch"])
class IncidentBreachView(APIView):
    queryset = BreachAssessment.objects.all()
    http_method_names = ["get", "patch", "options"]

    @extend_schema(
        summary="The breach assessment and its regulator deadline",
        description="404 while the incident has none (one starts when a security or data "
        "incident is declared, or with the first PATCH).",
        responses={200: s.BreachAssessmentSerializer},
        tags=TAGS,
    )
    def get(self, request, reference):
        incident = visible_incident(request, reference)
        if not breach_list_visible_to(request.user).filter(incident=incident).exists():
            raise exceptions.NotFound(f"{incident.reference} has no breach assessment.")
        return _assessment_response(incident)

    @extend_schema(
        summary="Record the assessment: personal data affected, regulator notification needed",
        description="Fields left out stay as they are; null means not known yet (the clock "
        "keeps running). Starts the assessment if the incident has none.",
        request=s.BreachAssessSerializer,
        responses={200: s.BreachAssessmentSerializer},
        tags=TAGS,
    )
    def patch(self, request, reference):
        incident = visible_incident(request, reference)
        serializer = s.BreachAssessSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.breach_assess(
            incident=incident, actor=request.user, source=Source.API, **serializer.validated_data
        )
        return _assessment_response(incident)


@extend_validation_errors(["invalid"], field_name="incident", methods=["post"])
@extend_validation_errors(["invalid"], field_name="notified_at", methods=["post"])
@extend_validation_errors(["invalid"], field_name="regulator_reference", methods=["post"])
@extend_validation_errors(["invalid"], field_name="data_subjects_reference", methods=["post"])
@extend_validation_errors(["invalid"], field_name="regulator_notes", methods=["post"])
@extend_validation_errors(["invalid"], field_name="data_subjects_notes", methods=["post"])
class BreachNotifiedView(APIView):
    """Record that the regulator, or the data subjects, were notified."""

    queryset = BreachAssessment.objects.all()
    permission_classes = [MayChangeAssessments]
    http_method_names = ["post", "options"]
    record = None  # the service that records it (each subclass's)

    def post(self, request, reference):
        incident = visible_incident(request, reference)
        serializer = s.NotifiedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.record(
            incident=incident, actor=request.user, source=Source.API, **serializer.validated_data
        )
        return _assessment_response(incident)


class RegulatorNotifiedView(BreachNotifiedView):
    record = staticmethod(services.breach_record_regulator_notified)

    @extend_schema(
        summary="Record that the regulator was notified (the clock stops)",
        request=s.NotifiedSerializer,
        responses={200: s.BreachAssessmentSerializer},
        tags=TAGS,
    )
    def post(self, request, reference):
        return super().post(request, reference)


class DataSubjectsNotifiedView(BreachNotifiedView):
    record = staticmethod(services.breach_record_subjects_notified)

    @extend_schema(
        summary="Record that the people whose data was affected were notified",
        request=s.NotifiedSerializer,
        responses={200: s.BreachAssessmentSerializer},
        tags=TAGS,
    )
    def post(self, request, reference):
        return super().post(request, reference)
