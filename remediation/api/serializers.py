"""Shapes of the action-item API: input serializers validate, output ones describe."""

from rest_framework import serializers

from incidents.api.serializers import LONG_TEXT, NOTE_TEXT, username_field
from postmortems.api.serializers import VisibleIncidentField

from ..models import ActionItem, ActionItemUpdate


class ActionItemUpdateSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, allow_null=True)

    class Meta:
        model = ActionItemUpdate
        fields = ["id", "kind", "from_status", "to_status", "note", "author", "created_at"]
        read_only_fields = fields


class OptionalURLField(serializers.URLField):
    """A link, or null where the model keeps "" for none: a `format: uri` string must
    not be sent as ""."""

    def to_representation(self, value):
        return value or None


class ActionItemSerializer(serializers.ModelSerializer):
    incident = serializers.CharField(source="incident.reference")
    tracker_url = OptionalURLField(allow_null=True, read_only=True)
    postmortem = serializers.SerializerMethodField(
        help_text="The incident reference of the review that asked for it, if any."
    )
    owner = serializers.CharField(source="owner.username", default=None, allow_null=True)
    completed_by = serializers.CharField(
        source="completed_by.username", default=None, allow_null=True
    )
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "incident",
            "postmortem",
            "title",
            "description",
            "category",
            "priority",
            "status",
            "owner",
            "team",
            "due_on",
            "overdue",
            "effort",
            "tracker_key",
            "tracker_url",
            "blocked_reason",
            "blocked_at",
            "wont_do_reason",
            "verification_note",
            "completed_at",
            "completed_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_postmortem(self, obj) -> str | None:
        return obj.incident.reference if obj.postmortem_id else None

    def get_overdue(self, obj) -> bool:
        return obj.is_overdue()


class _ItemFields(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=LONG_TEXT, allow_blank=True, required=False)
    category = serializers.ChoiceField(choices=ActionItem.Category.choices)
    priority = serializers.ChoiceField(choices=ActionItem.Priority.choices, required=False)
    owner = username_field(required=False, allow_null=True)
    team = serializers.CharField(max_length=100, allow_blank=True, required=False)
    due_on = serializers.DateField(required=False, help_text="Default: from the priority.")
    effort = serializers.ChoiceField(choices=ActionItem.Effort.choices, required=False)
    tracker_key = serializers.CharField(max_length=50, allow_blank=True, required=False)
    tracker_url = serializers.URLField(max_length=200, allow_blank=True, required=False)


class ActionItemCreateSerializer(_ItemFields):
    incident = VisibleIncidentField(required=False, help_text="Incident reference.")
    postmortem = VisibleIncidentField(
        required=False, help_text="Incident reference of the post-mortem that asks for it."
    )

    def validate(self, data):
        if "incident" not in data and "postmortem" not in data:
            raise serializers.ValidationError({"incident": ["Give incident or postmortem."]})
        return data


class ActionItemPatchSerializer(_ItemFields):
    verification_note = serializers.CharField(
        max_length=LONG_TEXT, allow_blank=True, required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class ProgressSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=ActionItem.Status.choices,
        required=False,
        help_text="Move to this status; the note is then the reason (blocked, won't do) or "
        "the verification (done).",
    )
    note = serializers.CharField(max_length=NOTE_TEXT, allow_blank=True, default="")
