"""Shapes of the forensics API: input serializers validate, output ones describe."""

from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from incidents.api.serializers import username_field
from incidents.services import LONG_TEXT

from ..models import BreachAssessment, CustodyRecord, EvidenceItem

LOCATION_LIMIT = EvidenceItem._meta.get_field("external_location").max_length
REFERENCE_LIMIT = BreachAssessment._meta.get_field("regulator_reference").max_length
# The largest size PositiveBigIntegerField holds.
MAX_SIZE = 2**63 - 1


class EvidenceItemSerializer(serializers.ModelSerializer):
    incident = serializers.CharField(source="incident.reference")
    stored = serializers.BooleanField(
        source="is_stored", help_text="True: the file is in Sitrep's locker; false: held elsewhere."
    )
    file_name = serializers.CharField(
        source="original_filename", help_text="The uploaded file's name (the download's name)."
    )
    collected_by = serializers.CharField(
        source="collected_by.username", default=None, allow_null=True
    )
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    download = serializers.SerializerMethodField(help_text="Where to download the file, if stored.")

    class Meta:
        model = EvidenceItem
        fields = [
            "id",
            "incident",
            "kind",
            "description",
            "stored",
            "file_name",
            "external_location",
            "size",
            "sha256",
            "integrity",
            "last_verified_at",
            "collected_by",
            "collected_at",
            "created_by",
            "created_at",
            "download",
        ]
        read_only_fields = fields

    def get_download(self, item) -> str | None:
        if not item.is_stored:
            return None
        return reverse("forensics-api:evidence-download", kwargs={"pk": item.pk})


class _Collected(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EvidenceItem.Kind.choices)
    description = serializers.CharField(max_length=LONG_TEXT)
    collected_by = username_field(
        required=False, allow_null=True, help_text="Username; default: you."
    )
    collected_at = serializers.DateTimeField(required=False, help_text="Default: now.")


class EvidenceUploadSerializer(_Collected):
    file = serializers.FileField(
        allow_empty_file=True,
        use_url=False,
        help_text="Stored in the locker; its size and SHA-256 are computed as it is written.",
    )
    sha256 = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The collector's SHA-256 (hex): a file that hashes otherwise is refused.",
    )


class EvidenceRegisterSerializer(_Collected):
    external_location = serializers.CharField(
        max_length=LOCATION_LIMIT, help_text="Where the item is held (a bucket, a vault, a bag)."
    )
    sha256 = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Its SHA-256 as its collector computed it (recorded, not checked).",
    )
    size = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_SIZE, help_text="In bytes."
    )


class CustodyRecordSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor_name", help_text="The username then; empty for Sitrep itself."
    )

    class Meta:
        model = CustodyRecord
        fields = ["id", "action", "actor", "at", "address", "source", "detail"]
        read_only_fields = fields


class BreachAssessmentSerializer(serializers.ModelSerializer):
    incident = serializers.CharField(source="incident.reference")
    assessed_by = serializers.CharField(
        source="assessed_by.username", default=None, allow_null=True
    )
    state = serializers.SerializerMethodField(
        help_text="notified, not_required, overdue or due (the clock is running)."
    )
    seconds_left = serializers.SerializerMethodField(
        help_text="Until the deadline (negative once passed); null once it no longer runs."
    )

    class Meta:
        model = BreachAssessment
        fields = [
            "incident",
            "personal_data_affected",
            "regulator_notification_required",
            "assessment_notes",
            "assessed_by",
            "assessed_at",
            "clock_started_at",
            "deadline_at",
            "state",
            "seconds_left",
            "regulator_notified_at",
            "regulator_reference",
            "regulator_notes",
            "data_subjects_notified_at",
            "data_subjects_reference",
            "data_subjects_notes",
            "warned_24h_at",
            "warned_6h_at",
            "missed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_state(self, assessment) -> str:
        return assessment.countdown(self._now()).state

    def get_seconds_left(self, assessment) -> int | None:
        clock = assessment.countdown(self._now())
        if clock.state in ("notified", "not_required"):
            return None
        return int(clock.left.total_seconds())

    def _now(self):
        if "now" not in self.context:
            self.context["now"] = timezone.now()
        return self.context["now"]


class BreachAssessSerializer(serializers.Serializer):
    personal_data_affected = serializers.BooleanField(
        required=False, allow_null=True, help_text="null: not known yet."
    )
    regulator_notification_required = serializers.BooleanField(
        required=False, allow_null=True, help_text="null: not known yet (the clock runs)."
    )
    assessment_notes = serializers.CharField(required=False, allow_blank=True, max_length=LONG_TEXT)
    clock_started_at = serializers.DateTimeField(
        required=False,
        help_text="When we became aware of the breach (default: detection); the deadline "
        "follows it.",
    )


class NotifiedSerializer(serializers.Serializer):
    notified_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    reference = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=REFERENCE_LIMIT
    )
    notes = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=LONG_TEXT
    )


class EvidenceCreateSerializer(EvidenceRegisterSerializer, EvidenceUploadSerializer):
    """What a POST takes, for the schema: `file` as multipart/form-data (an upload), or
    `external_location` as JSON (an item held elsewhere). Each is checked by its own
    serializer above."""

    file = serializers.FileField(
        required=False,
        allow_empty_file=True,
        use_url=False,
        help_text="An upload (multipart/form-data): stored in the locker, its size and "
        "SHA-256 computed as it is written.",
    )
    external_location = serializers.CharField(
        required=False,
        max_length=LOCATION_LIMIT,
        help_text="An item held elsewhere (JSON): where it is (a bucket, a vault, a bag).",
    )
    sha256 = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The collector's SHA-256: an upload that hashes otherwise is refused; of an "
        "item held elsewhere it is recorded as stated.",
    )
